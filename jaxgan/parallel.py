"""Data parallelism over local devices with ``jax.pmap``: the only module that knows about pmap.

The steps themselves are device-agnostic: given ``StepConfig(axis_name=AXIS)`` they average gradients,
model statistics and metrics with ``lax.pmean`` and draw each device's slice of the *global* random batch
(see ``jaxgan.steps``); models given ``axis_name=AXIS`` compute BatchNorm statistics over the global batch.
So an n-device run with global batch B computes what a 1-device run with batch B computes.
``jax.pmap`` is a wrapper over ``shard_map`` in current JAX; keeping it here lets a sharded-``jit``
backend replace it without touching the steps.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxgan.steps import Steps, StepConfig, d_step, g_step, train_step

AXIS = "batch"


def local_devices(num_devices: int | None = None) -> list[jax.Device]:
  """The first ``num_devices`` local devices (all of them if None); a ValueError names what exists."""
  devices = jax.local_devices()
  if num_devices is None:
    return devices
  if not 1 <= num_devices <= len(devices):
    raise ValueError(f"--num_devices={num_devices}, but this process has {len(devices)} local device(s) "
                     f"({devices[0].platform}); choose 1..{len(devices)}")
  if jax.process_count() > 1 and num_devices != len(devices):
    raise ValueError("Multi-process runs use every local device; leave --num_devices unset")
  return devices[:num_devices]


def _global_devices(devices: Sequence[jax.Device]) -> list[jax.Device]:
  """The devices of the whole run: ``devices`` in one process, every process's devices in several."""
  return list(devices) if jax.process_count() == 1 else jax.devices()


def _sharding(devices: Sequence[jax.Device]) -> NamedSharding:
  return NamedSharding(Mesh(np.asarray(_global_devices(devices)), (AXIS,)), PartitionSpec(AXIS))


def _from_local(local: np.ndarray, devices: Sequence[jax.Device]) -> jax.Array:
  """A global array whose leading (device) axis holds this process's ``local`` rows on its devices."""
  sharding = _sharding(devices)
  global_shape = (len(_global_devices(devices)),) + local.shape[1:]
  return jax.make_array_from_process_local_data(sharding, local, global_shape)


def replicate(tree: Any, devices: Sequence[jax.Device]) -> Any:
  """One copy of every leaf per device (leading axis = device), placed on ``devices``."""
  n = len(devices)
  return jax.tree_util.tree_map(
      lambda x: _from_local(np.broadcast_to(np.asarray(x), (n,) + np.shape(x)), devices), tree)


def unreplicate(tree: Any) -> Any:
  """This process's first device copy of a replicated tree (all copies are equal after pmean)."""
  def first(x):
    # The first device's own buffer: indexing the sharded array (x[0]) would compile a program over
    # every device for each leaf.
    if isinstance(x, jax.Array) and len(x.addressable_shards) > 1:
      return x.addressable_shards[0].data[0]
    return x[0]
  return jax.tree_util.tree_map(first, tree)


def shard_batch(batch: Any, devices: Sequence[jax.Device], *, leading_axes: int = 1) -> Any:
  """Splits this process's batch axis (after ``leading_axes`` axes, e.g. n_critic) over its devices.

  ``[n_critic, B, ...] -> [n_devices, n_critic, B / n_devices, ...]``, consecutive examples per device.
  With several processes each passes its own shard of the global batch; process p's rows land on its
  devices, so the global batch is the processes' batches in process order.
  """
  n = len(devices)

  def split(x):
    # Batches already on a device (toy data is sampled there) are resharded on the device, without a
    # round trip through the host; host batches (and every multi-process batch) go through numpy.
    on_device = isinstance(x, jax.Array) and jax.process_count() == 1
    xp = jnp if on_device else np
    x = xp.asarray(x)
    lead, b = x.shape[:leading_axes], x.shape[leading_axes]
    if b % n:
      raise ValueError(f"Batch size {b} is not divisible by the {n} devices; choose a multiple of {n}")
    x = xp.moveaxis(x.reshape(lead + (n, b // n) + x.shape[leading_axes + 1:]), leading_axes, 0)
    return jax.device_put(x, _sharding(devices)) if on_device else _from_local(x, devices)

  return jax.tree_util.tree_map(split, batch)


def pmap_step(step_fn: Callable[[Any, Any], Any], devices: Sequence[jax.Device]) -> Callable[[Any, Any], Any]:
  """``step_fn(state, batch)`` pmapped over ``AXIS`` with the state donated (all processes' devices)."""
  return jax.pmap(step_fn, axis_name=AXIS, devices=_global_devices(devices), donate_argnums=0)


def make_pmap_steps(config: StepConfig, devices: Sequence[jax.Device]) -> Steps:
  """The three steps pmapped over ``devices`` with the state donated; ``config.axis_name`` must be AXIS."""
  if config.axis_name != AXIS:
    raise ValueError(f"StepConfig.axis_name must be {AXIS!r} for pmap, got {config.axis_name!r}")
  pmap = lambda fn: pmap_step(functools.partial(fn, config=config), devices)  # noqa: E731
  return Steps(d_step=pmap(d_step), g_step=pmap(g_step), train_step=pmap(train_step))
