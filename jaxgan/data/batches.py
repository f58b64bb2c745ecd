"""Batch sources for ``train_step``: every call returns one step's data, ``[n_critic, B, ...]`` leaves.

``ToyBatches`` samples the 2-D mixtures on the device from ``(key, step)``: no input pipeline, no host
traffic, and resuming at step t draws exactly the batches an uninterrupted run drew.
``ImageBatches`` stacks host batches from an image iterator (TFDS/grain or the embedded digits) and
puts them on the device; its position is checkpointed through the iterator's own state.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.data.toy import ToyMixture
from jaxgan.state import KEY_DATA

Batch = dict[str, jax.Array]


class BatchSource(Protocol):
  """What the training loop reads data from."""

  num_classes: int | None
  example_shape: tuple[int, ...]  # one example's shape, e.g. (2,) or (28, 28, 1)

  def next(self, step: int) -> Batch:
    """The batches of training step ``step``: leaves shaped [n_critic, B, ...]."""

  def get_state(self) -> dict[str, Any]:
    """JSON-serialisable position, saved with checkpoints."""

  def set_state(self, state: dict[str, Any]) -> None:
    """Continues from a position returned by ``get_state``."""


@functools.partial(jax.jit, static_argnames=("dataset", "n_critic", "batch_size"))
def toy_batches(key: jax.Array, step: jax.Array, *, dataset: ToyMixture, n_critic: int,
                 batch_size: int) -> Batch:
  step_key = jax.random.fold_in(jax.random.fold_in(key, KEY_DATA), step)
  x = dataset.sample(step_key, n_critic * batch_size)
  return {"image": x.reshape(n_critic, batch_size, 2)}


@dataclasses.dataclass
class ToyBatches:
  """Real samples of a 2-D mixture, drawn on the device from ``fold_in(key, KEY_DATA), step``."""

  dataset: ToyMixture
  key: jax.Array
  batch_size: int
  n_critic: int
  num_classes: int | None = None
  example_shape: tuple[int, ...] = (2,)

  def next(self, step: int) -> Batch:
    return toy_batches(self.key, jnp.int32(step), dataset=self.dataset, n_critic=self.n_critic,
                        batch_size=self.batch_size)

  def get_state(self) -> dict[str, Any]:
    return {}  # a function of the step alone

  def set_state(self, state: dict[str, Any]) -> None:
    del state


class ImageBatches:
  """Stacks ``n_critic`` host batches of an image iterator and transfers them to the device."""

  def __init__(self, data: Any, *, n_critic: int, conditional: bool):
    self._data = data
    self._n_critic = n_critic
    info = data.info
    self.num_classes = info.num_classes if conditional else None
    self.example_shape = (info.resolution, info.resolution, info.channels)

  def next(self, step: int) -> Batch:
    del step  # the iterator's own position decides
    batches = [next(self._data) for _ in range(self._n_critic)]
    stacked = {"image": np.stack([b["image"] for b in batches])}
    if self.num_classes:
      stacked["label"] = np.stack([b["label"] for b in batches]).astype(np.int32)
    return jax.device_put(stacked)

  def get_state(self) -> dict[str, Any]:
    return {"iterator": self._data.get_state()}

  def set_state(self, state: dict[str, Any]) -> None:
    self._data.set_state(state["iterator"])
