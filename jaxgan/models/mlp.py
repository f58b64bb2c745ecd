"""Multi-layer perceptrons for low-dimensional data (the 2-D toy mixtures)."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array


def _with_labels(x: Array, labels: Array | None, num_classes: int | None) -> Array:
  """Concatenates a one-hot label to the input of conditional models."""
  if not num_classes:
    return x
  if labels is None:
    raise ValueError("a conditional model (num_classes set) needs labels")
  return jnp.concatenate([x, jax.nn.one_hot(labels, num_classes, dtype=x.dtype)], axis=-1)


class MLPGenerator(nn.Module):
  """z -> ReLU MLP -> ``output_dim`` linear outputs (no tanh: toy data is not bounded to [-1, 1])."""

  output_dim: int = 2
  hidden: Sequence[int] = (128, 128, 128)
  num_classes: int | None = None

  @nn.compact
  def __call__(self, z: Array, labels: Array | None = None, *, train: bool) -> Array:
    del train  # no batch-dependent layers
    x = _with_labels(z, labels, self.num_classes)
    for width in self.hidden:
      x = nn.relu(nn.Dense(width)(x))
    return nn.Dense(self.output_dim)(x)


class MLPDiscriminator(nn.Module):
  """x -> LeakyReLU(0.2) MLP -> one output per example, shape [B] (a logit or a critic value)."""

  hidden: Sequence[int] = (128, 128, 128)
  num_classes: int | None = None

  @nn.compact
  def __call__(self, x: Array, labels: Array | None = None, *, train: bool) -> Array:
    del train
    x = _with_labels(x.reshape(x.shape[0], -1), labels, self.num_classes)
    for width in self.hidden:
      x = nn.leaky_relu(nn.Dense(width)(x), 0.2)
    return nn.Dense(1)(x)[:, 0]
