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
from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxgan.steps import Steps, StepConfig, d_step, g_step, train_step

AXIS = "batch"


def _sharding(devices: Sequence[jax.Device]) -> NamedSharding:
  return NamedSharding(Mesh(np.asarray(devices), (AXIS,)), PartitionSpec(AXIS))


def replicate(tree: Any, devices: Sequence[jax.Device]) -> Any:
  """One copy of every leaf per device (leading axis = device), placed on ``devices``."""
  n = len(devices)
  stacked = jax.tree_util.tree_map(lambda x: np.broadcast_to(np.asarray(x), (n,) + np.shape(x)), tree)
  return jax.device_put(stacked, _sharding(devices))


def unreplicate(tree: Any) -> Any:
  """The first device's copy of a replicated tree (all copies are equal after pmean)."""
  return jax.tree_util.tree_map(lambda x: x[0], tree)


def shard_batch(batch: Any, devices: Sequence[jax.Device], *, leading_axes: int = 1) -> Any:
  """Splits the batch axis (after ``leading_axes`` axes, e.g. n_critic) over devices.

  ``[n_critic, B, ...] -> [n_devices, n_critic, B / n_devices, ...]``, consecutive examples per device.
  """
  n = len(devices)

  def split(x):
    x = np.asarray(x)
    lead, b = x.shape[:leading_axes], x.shape[leading_axes]
    if b % n:
      raise ValueError(f"Batch size {b} is not divisible by the {n} devices; choose a multiple of {n}")
    x = x.reshape(lead + (n, b // n) + x.shape[leading_axes + 1:])
    return np.moveaxis(x, leading_axes, 0)

  return jax.device_put(jax.tree_util.tree_map(split, batch), _sharding(devices))


def make_pmap_steps(config: StepConfig, devices: Sequence[jax.Device]) -> Steps:
  """The three steps pmapped over ``devices`` with the state donated; ``config.axis_name`` must be AXIS."""
  if config.axis_name != AXIS:
    raise ValueError(f"StepConfig.axis_name must be {AXIS!r} for pmap, got {config.axis_name!r}")
  pmap = lambda fn: jax.pmap(functools.partial(fn, config=config), axis_name=AXIS,  # noqa: E731
                             devices=list(devices), donate_argnums=0)
  return Steps(d_step=pmap(d_step), g_step=pmap(g_step), train_step=pmap(train_step))
