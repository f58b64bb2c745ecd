"""Batch sources for ``train_step``: every call returns one step's data, ``[n_critic, B, ...]`` leaves.

Two kinds, told apart by whether the source has a ``batch_fn``:
* device sources compute a step's batch *inside* the jitted step from ``(device_data, step)``:
  ``ToyBatches`` samples the 2-D mixtures, ``jaxgan.data.device.DeviceBatches`` gathers from a dataset
  held on the device. No host traffic per step; resuming at step t draws exactly what an uninterrupted
  run drew.
* ``ImageBatches`` streams host batches from an image iterator (TFDS/grain) for datasets too large for
  the device, transferring them ahead of the step on a background thread; its position is
  checkpointed through the iterator's own state.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import threading
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.data.device import device_slice
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


@functools.partial(jax.jit, static_argnames=("dataset", "n_critic", "batch_size", "axis_name"))
def toy_batches(key: jax.Array, step: jax.Array, *, dataset: ToyMixture, n_critic: int,
                 batch_size: int, axis_name: str | None = None) -> Batch:
  """Real points of step ``step``: ``[n_critic, batch_size, 2]`` (this device's slice under pmap)."""
  step_key = jax.random.fold_in(jax.random.fold_in(key, KEY_DATA), step)
  x = dataset.sample(step_key, n_critic * batch_size).reshape(n_critic, batch_size, 2)
  return {"image": device_slice(x, 1, axis_name)}


@dataclasses.dataclass
class ToyBatches:
  """Real samples of a 2-D mixture, drawn on the device from ``fold_in(key, KEY_DATA), step``."""

  dataset: ToyMixture
  key: jax.Array
  batch_size: int
  n_critic: int
  num_classes: int | None = None
  example_shape: tuple[int, ...] = (2,)

  @property
  def device_data(self) -> dict[str, jax.Array]:
    return {"key": self.key}

  def batch_fn(self, data: dict[str, jax.Array], step: jax.Array, axis_name: str | None = None) -> Batch:
    """The global batch of ``step`` drawn from ``data["key"]``; this device's slice under pmap."""
    return toy_batches(data["key"], step, dataset=self.dataset, n_critic=self.n_critic,
                       batch_size=self.batch_size, axis_name=axis_name)

  def next(self, step: int) -> Batch:
    return self.batch_fn(self.device_data, jnp.int32(step))

  def get_state(self) -> dict[str, Any]:
    return {}  # a function of the step alone

  def set_state(self, state: dict[str, Any]) -> None:
    del state


class ImageBatches:
  """Stacks ``n_critic`` host batches of an image iterator and transfers them to the device ahead of use.

  A background thread keeps ``prefetch`` steps' batches in flight (read, stacked and ``device_put``),
  so reading and transfer overlap the device's work. ``get_state`` is the iterator position of the
  next batch the loop has *not* consumed, so a checkpoint resumes exactly, prefetching or not.
  """

  def __init__(self, data: Any, *, n_critic: int, conditional: bool, prefetch: int = 2):
    self._data = data
    self._n_critic = n_critic
    info = data.info
    self.num_classes = info.num_classes if conditional else None
    self.example_shape = (info.resolution, info.resolution, info.channels)
    self._prefetch = prefetch
    self._queue: collections.deque = collections.deque()
    self._lock = threading.Condition()
    self._thread: threading.Thread | None = None
    self._stop = False
    self._error: BaseException | None = None
    self._pending: dict[str, Any] | None = None  # position of the batch the thread is reading

  def _read_one(self) -> Batch:
    batches = [next(self._data) for _ in range(self._n_critic)]
    stacked = {"image": np.stack([b["image"] for b in batches])}
    if self.num_classes:
      stacked["label"] = np.stack([b["label"] for b in batches]).astype(np.int32)
    return jax.device_put(stacked)

  def _fill(self) -> None:
    try:
      while True:
        with self._lock:
          while len(self._queue) >= self._prefetch and not self._stop:
            self._lock.wait()
          if self._stop:
            return
          position = self._pending = self._data.get_state()
        batch = self._read_one()
        with self._lock:
          if self._stop:  # dropped: _pending keeps its position for get_state
            return
          self._pending = None
          self._queue.append((position, batch))
          self._lock.notify_all()
    except BaseException as e:  # noqa: BLE001 - re-raised in the loop's thread by next()
      with self._lock:
        self._error = e
        self._lock.notify_all()

  def next(self, step: int) -> Batch:
    del step  # the iterator's own position decides
    if self._prefetch < 1:
      return self._read_one()
    if self._stop:
      raise RuntimeError("This ImageBatches was closed; call set_state(get_state()) to continue reading")
    if self._thread is None:
      self._thread = threading.Thread(target=self._fill, name="jaxgan-prefetch", daemon=True)
      self._thread.start()
    with self._lock:
      while not self._queue and self._error is None:
        self._lock.wait()
      if self._error is not None and not self._queue:
        raise self._error
      _, batch = self._queue.popleft()
      self._lock.notify_all()
    return batch

  def close(self) -> None:
    """Stops the prefetch thread (the iterator position stays that of the next unconsumed batch)."""
    with self._lock:
      self._stop = True
      self._lock.notify_all()
    if self._thread is not None:
      self._thread.join()
      self._thread = None

  def get_state(self) -> dict[str, Any]:
    with self._lock:
      if self._queue:
        return {"iterator": self._queue[0][0]}
      if self._pending is not None:
        return {"iterator": self._pending}
      return {"iterator": self._data.get_state()}

  def set_state(self, state: dict[str, Any]) -> None:
    self.close()
    self._queue.clear()
    self._stop, self._pending = False, None
    self._data.set_state(state["iterator"])
