"""Many training steps per dispatch: a ``lax.scan`` wrapper around any pure one-step function.

The step functions (``jaxgan.steps``, each recipe's ``train_step``) stay one step at a time; this module
runs ``length`` of them inside one jitted call, so an accelerator is not left waiting for Python between
steps. Two data paths:

* device sources (``source.batch_fn``): the scan body gathers or samples its own batch from
  ``(device_data, state.step)``, so the host sends nothing per step;
* host sources: the loop stacks ``length`` host batches on a new leading axis and the scan walks it.

One call returns the state after ``length`` steps and the *last* step's metrics, which is what the loop
logs at a log step (``length`` divides the log interval). ``length == 1`` calls the step directly
without a scan: XLA:CPU runs convolutions inside loops several times slower than at top level.

``auto_steps_per_call`` is the ``--steps_per_call`` default: 1 on the CPU (measured faster there for
every architecture), else the largest divisor of the log/eval/checkpoint intervals up to ``MAX_AUTO_STEPS_PER_CALL``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
from jax import lax

State = Any
Batch = Any
Metrics = Any
StepFn = Callable[[State, Batch], tuple[State, Metrics]]
BatchFn = Callable[..., Batch]  # (device_data, step, axis_name) -> batch

# A dispatch of this many steps takes milliseconds even for the 2-D toy MLP on a GPU (~0.1 ms a step),
# while signals, logging and checkpoints stay responsive for the largest image models.
MAX_AUTO_STEPS_PER_CALL = 200
# Architectures for which a scan is faster than one step per call on XLA:CPU. None: besides convolutions
# (several times slower inside loops), even the toy MLP's default run was slower with 125 steps per call
# than with 1 (2-core CPU, 10k steps: 52.7 s vs 46.1 s wall, same final losses).
CPU_SCAN_ARCHS: tuple[str, ...] = ()


def _last(metrics: Metrics) -> Metrics:
  return jax.tree_util.tree_map(lambda m: m[-1], metrics)


def device_data_steps(step_fn: StepFn, batch_fn: BatchFn, length: int, axis_name: str | None = None
                      ) -> Callable[[State, Any], tuple[State, Metrics]]:
  """``(state, device_data) -> (state after `length` steps, last metrics)``; batches made in the body."""
  if length < 1:
    raise ValueError(f"length must be >= 1, got {length}")

  def run(state: State, device_data: Any) -> tuple[State, Metrics]:
    def one(state: State) -> tuple[State, Metrics]:
      return step_fn(state, batch_fn(device_data, state.step, axis_name))

    if length == 1:
      return one(state)
    state, metrics = lax.scan(lambda s, _: one(s), state, None, length=length)
    return state, _last(metrics)

  return run


def host_data_steps(step_fn: StepFn, length: int) -> Callable[[State, Batch], tuple[State, Metrics]]:
  """``(state, batches) -> (state after `length` steps, last metrics)``; ``batches`` leaves are
  ``[length, ...]`` (one step's batch per slice); with ``length == 1`` the batch has no extra axis."""
  if length < 1:
    raise ValueError(f"length must be >= 1, got {length}")

  def run(state: State, batches: Batch) -> tuple[State, Metrics]:
    if length == 1:
      return step_fn(state, batches)
    state, metrics = lax.scan(step_fn, state, batches)
    return state, _last(metrics)

  return run


def interval_gcd(log_every: int, eval_every: int, ckpt_every: int) -> int:
  """The largest number of steps per call that lands on every log, eval and checkpoint step."""
  return math.gcd(math.gcd(log_every, eval_every), ckpt_every)


def auto_steps_per_call(arch: str, platform: str, log_every: int, eval_every: int, ckpt_every: int) -> int:
  """The ``--steps_per_call`` default (see the module docstring)."""
  if platform == "cpu" and arch not in CPU_SCAN_ARCHS:
    return 1
  g = interval_gcd(log_every, eval_every, ckpt_every)
  return max(d for d in range(1, min(g, MAX_AUTO_STEPS_PER_CALL) + 1) if g % d == 0)


def chunk_length(step: int, total: int, steps_per_call: int) -> int:
  """Steps of the next call from ``step``: ``steps_per_call``, cut at the next multiple of it (a run
  resumed between multiples realigns) and at ``total`` (never overshoots ``--steps``)."""
  to_boundary = steps_per_call - step % steps_per_call
  return min(to_boundary, total - step)
