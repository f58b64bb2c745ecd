"""Fixtures shared by several test modules."""

import socket

import pytest


@pytest.fixture
def no_network(monkeypatch):
  """Any connection attempt fails the test: the data tests must never touch the network."""

  def refuse(*args, **kwargs):
    raise AssertionError(f"network access attempted: {args}")

  monkeypatch.setattr(socket.socket, "connect", refuse)
  monkeypatch.setattr(socket, "getaddrinfo", refuse)
