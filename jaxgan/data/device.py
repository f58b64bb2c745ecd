"""Datasets held on the device: batches are gathered inside the jitted step from ``(key, step)``.

A dataset that fits in device memory (the toy mixtures, the embedded digits, MNIST, Fashion-MNIST,
Stacked MNIST, the digit translation tasks, CIFAR-10) is transferred once; the training step then
computes its own batch, so the host feeds nothing per step and ``K`` steps can run inside one
``lax.scan`` (``jaxgan.multistep``).

Data semantics (what exactly resumes):
* Every stream (``"image"`` and ``"label"`` share one; CycleGAN's two domains have one each) walks
  through the dataset in epochs. Epoch ``e`` is ``permutation(fold_in(stream_key, e), N)``; it is cut
  into ``N // B`` batches of the *global* batch size ``B`` (the last partial batch is dropped, as
  grain's ``drop_remainder``), so every example is drawn once per epoch except at most ``B - 1``
  left over. Draw ``d = step * draws_per_step + i`` (``i`` the critic update) takes batch
  ``d mod (N // B)`` of epoch ``d // (N // B)``.
* So a batch is a pure function of ``(key, step)``: a resumed run draws exactly what an uninterrupted
  run drew, with no iterator state to save, and labels are gathered with the same indices as images.
* With ``axis_name`` (pmap), every device computes the global indices and gathers only its own slice:
  n devices see the batches of one device with the same global batch, whatever the device count, and
  every process of a multi-host run holds the whole dataset (they are small by construction).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxgan.state import KEY_DATA

Array = jax.Array
Batch = dict[str, Array]

# Auto placement keeps datasets up to this size on the device (CIFAR-10 at 32 px in float32: 0.6 GiB).
MAX_DEVICE_BYTES = 2 * 1024**3


def data_key(seed: int) -> Array:
  """The root of every data stream of a run: ``fold_in(PRNGKey(seed), KEY_DATA)``."""
  return jax.random.fold_in(jax.random.PRNGKey(seed), KEY_DATA)


def epoch_indices(key: Array, draw: Array, *, num_examples: int, batch_size: int) -> Array:
  """The ``batch_size`` example indices of draw number ``draw`` (epochs of permutations, see above)."""
  per_epoch = num_examples // batch_size
  draw = jnp.asarray(draw, jnp.int32)
  epoch, slot = draw // per_epoch, draw % per_epoch
  order = jax.random.permutation(jax.random.fold_in(key, epoch), num_examples)
  return lax.dynamic_slice_in_dim(order, slot * batch_size, batch_size)


def device_slice(x: Array, axis: int, axis_name: str | None) -> Array:
  """This device's equal slice of ``x`` along ``axis`` (all of it without ``axis_name``)."""
  if axis_name is None:
    return x
  n, i = lax.axis_size(axis_name), lax.axis_index(axis_name)
  size = x.shape[axis] // n
  return lax.dynamic_slice_in_dim(x, i * size, size, axis)


@dataclasses.dataclass(frozen=True)
class Streams:
  """Which arrays share indices: ``{stream name: (array names...)}`` (static, hashable)."""

  groups: tuple[tuple[str, tuple[str, ...]], ...]

  @classmethod
  def of(cls, mapping: Mapping[str, tuple[str, ...]]) -> "Streams":
    return cls(tuple((k, tuple(v)) for k, v in mapping.items()))


@functools.partial(jax.jit, static_argnames=("streams", "num_examples", "batch_size", "draws_per_step",
                                             "axis_name"))
def gather_batch(data: Mapping[str, Array], step: Array, *, streams: Streams,
                 num_examples: tuple[int, ...], batch_size: int, draws_per_step: int,
                 axis_name: str | None = None) -> Batch:
  """The batches of training step ``step``: leaves ``[draws_per_step, batch/devices, ...]``.

  ``data`` holds ``"key"`` (``data_key(seed)``) and the arrays; stream ``j`` (of ``streams``) has
  ``num_examples[j]`` examples and its own key ``fold_in(key, j)``.
  """
  batch: Batch = {}
  draws = jnp.asarray(step, jnp.int32) * draws_per_step + jnp.arange(draws_per_step, dtype=jnp.int32)
  for j, (_, names) in enumerate(streams.groups):
    key = jax.random.fold_in(data["key"], j)
    indices = jax.vmap(lambda d: epoch_indices(key, d, num_examples=num_examples[j],  # noqa: B023
                                               batch_size=batch_size))(draws)
    indices = device_slice(indices, 1, axis_name)  # [draws, local batch]
    for name in names:
      batch[name] = jnp.take(data[name], indices, axis=0)
  return batch


class DeviceBatches:
  """A batch source whose whole dataset lives on the device (see the module docstring).

  ``device_data`` is the (host) pytree the loop places on the device(s) once and passes into the jitted
  step;
  ``batch_fn(device_data, step, axis_name)`` gathers a step's batches inside it. ``next(step)`` gives
  the same batch outside a step (tests, evaluation, the one-step-per-call loop of host sources).
  """

  def __init__(self, arrays: Mapping[str, np.ndarray], *, seed: int, batch_size: int, draws_per_step: int,
               streams: Mapping[str, tuple[str, ...]], num_classes: int | None,
               example_shape: tuple[int, ...]):
    self._streams = Streams.of(streams)
    counts = []
    for stream, names in self._streams.groups:
      sizes = {len(arrays[n]) for n in names}
      if len(sizes) != 1:
        raise ValueError(f"Arrays of stream {stream!r} differ in length: "
                         f"{ {n: len(arrays[n]) for n in names} }")
      count = sizes.pop()
      if count < batch_size:
        raise ValueError(f"The dataset has {count} examples ({stream}), fewer than --batch_size="
                         f"{batch_size}; lower --batch_size")
      counts.append(count)
    self._num_examples = tuple(counts)
    self._batch_size = batch_size
    self._draws = draws_per_step
    self.num_classes = num_classes
    self.example_shape = tuple(example_shape)
    # Host arrays: the loop places them once (one device, or replicated under pmap), so no device holds
    # a second copy; ``next`` keeps its own device copy, made on first use.
    self.device_data: dict[str, Any] = {"key": np.asarray(data_key(seed)),
                                        **{k: np.asarray(v) for k, v in arrays.items()}}
    self._placed: dict[str, Any] | None = None
    self.keys = tuple(n for _, names in self._streams.groups for n in names)

  @property
  def num_examples(self) -> tuple[int, ...]:
    return self._num_examples

  def batch_fn(self, data: Mapping[str, Array], step: Array, axis_name: str | None = None) -> Batch:
    """The batches of ``step`` from ``data`` (this source's ``device_data``, or a member's in a sweep)."""
    return gather_batch(data, step, streams=self._streams, num_examples=self._num_examples,
                        batch_size=self._batch_size, draws_per_step=self._draws, axis_name=axis_name)

  def next(self, step: int) -> Batch:
    if self._placed is None:
      self._placed = jax.device_put(self.device_data)
    return self.batch_fn(self._placed, jnp.int32(step))

  def get_state(self) -> dict[str, Any]:
    return {}  # a function of (seed, step) alone

  def set_state(self, state: dict[str, Any]) -> None:
    del state


def nbytes(arrays: Mapping[str, np.ndarray]) -> int:
  return int(sum(np.asarray(a).nbytes for a in arrays.values()))
