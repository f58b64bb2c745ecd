"""The training loop: data -> train_step -> periodic logging, samples, checkpoints -> eval.json.

One readable function, ``train(config)``, in banner sections. Everything that happens per step runs
on the device: ``--steps_per_call`` steps per jitted call (``jaxgan.multistep``), with the batches
gathered inside the call for device-resident data (toy mixtures, datasets that fit) or stacked from the
host for streamed ones. The host fetches metrics every ``log_every`` steps (where non-finite losses stop
the run); sample grids, metric rows and TensorBoard events are written on a background thread, and
checkpoints are saved asynchronously from a device copy of the state.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from PIL import Image

from jaxgan import evaluate, multistep, parallel
from jaxgan.checkpoint import Checkpointer
from jaxgan.config import Config, ConfigError, config_differences
from jaxgan.recipes import gan as gan_recipe
from jaxgan.steps import make_steps  # noqa: F401  (re-exported for users of jaxgan.train)
from jaxgan.writers import BackgroundWork, RunWriter


def quiet_library_logs() -> None:
  """Keeps orbax's per-save INFO lines out of the run log (warnings and errors still show)."""
  import logging as std_logging

  class _DropOrbaxInfo(std_logging.Filter):
    def filter(self, record):
      return record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname

  logging.get_absl_handler().addFilter(_DropOrbaxInfo())


class NonFiniteError(FloatingPointError):
  """A loss or parameter became NaN/Inf; the run stopped without overwriting good checkpoints."""


# --- building blocks (usable on their own) -----------------------------------------------------------

# The GAN recipe's pieces, kept importable from here (they were defined here before recipes existed).
step_config = gan_recipe.step_config
make_batch_source = gan_recipe.make_source
create_state = gan_recipe.create_state


def prepare_workdir(config: Config) -> None:
  """Creates the workdir; refuses to resume a run of a different config unless ``overwrite``."""
  path = os.path.join(config.workdir, "config.json")
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      saved = json.load(f)
    diff = config_differences(saved, config)
    if diff and not config.overwrite:
      listed = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
      raise ConfigError(
          f"{config.workdir} holds a run with a different config ({listed}). Use another --workdir, "
          f"or --overwrite to delete that run and start over.")
    if config.overwrite:
      for name in ("checkpoints", "samples", "tb", "metrics.jsonl", "eval.json", "config.json"):
        target = os.path.join(config.workdir, name)
        if os.path.isdir(target):
          shutil.rmtree(target)
        elif os.path.exists(target):
          os.remove(target)
  os.makedirs(config.workdir, exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    f.write(config.to_json())


@jax.jit
def _finite(tree: Any) -> jax.Array:
  leaves = [x for x in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.bool_(True)


def _all_finite(tree: Any) -> bool:
  """Whether every float in ``tree`` (params, statistics, optimizer states, EMA) is finite."""
  return bool(jax.device_get(_finite(tree)))


@jax.jit
def _snapshot(tree: Any) -> Any:
  """A device copy of ``tree`` that outlives the donation of the original to the next step."""
  return jax.tree_util.tree_map(jnp.copy, tree)


def _dispatch(step_fn: Callable[[Any, Any], Any], source: Any, devices: list[jax.Device] | None,
              axis_name: str | None) -> tuple[Callable[[int], Callable], Callable[[int, int], Any], bool]:
  """The compiled multi-step calls and what feeds them.

  Returns ``(run_steps, feed, data_on_device)``: ``run_steps(length)`` is the jitted (state donated) or
  pmapped call of ``length`` steps, ``feed(step, length)`` its data argument (the device-resident data,
  or ``length`` host batches stacked), and whether the data lives on the device.
  """
  batch_fn = getattr(source, "batch_fn", None)
  compiled: dict[int, Callable] = {}

  def run_steps(length: int) -> Callable:
    if length not in compiled:
      fn = (multistep.device_data_steps(step_fn, batch_fn, length, axis_name) if batch_fn is not None
            else multistep.host_data_steps(step_fn, length))
      compiled[length] = (parallel.pmap_step(fn, devices) if devices is not None
                          else jax.jit(fn, donate_argnums=0))
    return compiled[length]

  if batch_fn is not None:
    data = source.device_data
    placed = parallel.replicate(data, devices) if devices is not None else jax.device_put(data)
    return run_steps, lambda step, length: placed, True

  def feed(step: int, length: int) -> Any:
    batches = [source.next(step + i) for i in range(length)]
    batch = batches[0] if length == 1 else jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *batches)
    if devices is None:
      return batch
    return parallel.shard_batch(batch, devices, leading_axes=1 if length == 1 else 2)

  return run_steps, feed, False


def _format_metrics(metrics: dict[str, float]) -> str:
  order = ["d_loss", "g_loss", "d_real", "d_fake"]
  names = {"d_real": "D(x)", "d_fake": "D(G(z))"}
  keys = order + sorted(k for k in metrics if k not in order and k != "steps_per_sec")
  return " ".join(f"{names.get(k, k)}={metrics[k]:.4f}" for k in keys if k in metrics)


class _StopRequest:
  """Turns SIGTERM/SIGINT into a flag the loop checks, so it can checkpoint before exiting."""

  def __init__(self):
    self.signal: int | None = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread (e.g. called from a worker): leave signals alone
        pass
    return self

  def _handle(self, signum, frame):
    del frame
    self.signal = signum

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


# --- the loop ----------------------------------------------------------------------------------------


def train(config: Config) -> dict[str, Any]:
  """Trains (or resumes) the run ``config`` describes; returns the final evaluation (also eval.json).

  The architecture's recipe (``jaxgan.recipes``) supplies data, state, step, samples and metrics; this
  loop owns what every run shares: devices, logging, checkpoints, resume, non-finite checks and signals.
  With several local devices the step is pmapped (``jaxgan.parallel``); with several processes
  (``jax.distributed``) each holds a device-resident dataset whole (devices gather their slices of the
  global batch) or reads its own shard of a streamed one, and only process 0 writes files.
  """
  config = config.resolve().with_backend(jax.default_backend())
  recipe = config.recipe
  is_writer = jax.process_index() == 0
  if is_writer:
    prepare_workdir(config)
  workdir = config.workdir
  devices = parallel.local_devices(config.num_devices)
  num_shards = len(devices) * jax.process_count()
  if config.batch_size % num_shards:
    raise ConfigError(f"--batch_size={config.batch_size} is not divisible by the {num_shards} devices "
                      f"({jax.process_count()} process(es) x {len(devices)}); choose a multiple of "
                      f"{num_shards} or set --num_devices")
  distributed = num_shards > 1
  axis_name = parallel.AXIS if distributed else None
  source = recipe.make_source(config, shard_index=jax.process_index(), shard_count=jax.process_count())
  state = recipe.create_state(config, source, axis_name)
  checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"))
  # Several processes save and restore host (numpy) copies: orbax writes those once, from process 0.
  as_saved = jax.device_get if jax.process_count() > 1 else (lambda s: s)
  restored = checkpointer.restore_latest(as_saved(state))
  ckpt_step = 0  # rows of metrics.jsonl after this step are from an interrupted attempt
  if restored is not None:
    ckpt_step, state, meta = restored
    source.set_state(meta["data"])
    logging.info("Resumed from checkpoint at step %d", ckpt_step)
  step_fn = recipe.make_train_step(config, source, axis_name)
  run_steps, feed, data_on_device = _dispatch(step_fn, source, devices if distributed else None, axis_name)
  if distributed:
    state = parallel.replicate(state, devices)
    host_state = parallel.unreplicate
  else:
    host_state = lambda s: s  # noqa: E731
  writer = RunWriter(workdir, enabled=is_writer, resume_step=ckpt_step)
  background = BackgroundWork()

  def write_samples(snapshot: Any, step: int) -> None:
    path = os.path.join(workdir, "samples", f"step_{step:07d}.png")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    scalars = recipe.write_samples(snapshot, config, source, path)
    if scalars:
      writer.scalars(step, scalars)
      logging.info("eval step %d: %s", step, scalars)
    with Image.open(path) as png:
      writer.image(step, "samples", np.asarray(png.convert("RGB")))
    shutil.copyfile(path, os.path.join(workdir, "samples", "latest.png"))

  def save_samples(step: int) -> None:
    """Sample grid / toy metrics of the current state, computed and written on a background thread."""
    if is_writer:  # a device copy: the loop donates `state` to the next call while the copy is read
      background.submit(write_samples, _snapshot(host_state(state)), step)

  def save_checkpoint(step: int) -> None:
    current = host_state(state)
    if not _all_finite(current):
      raise NonFiniteError(f"The training state is not finite at step {step}; the last good checkpoint "
                           f"({checkpointer.all_steps()[-1:] or 'none'}) is kept. Lower the learning "
                           f"rates or add a regularizer (e.g. --gp_weight).")
    background.wait()  # the rows up to this step are on disk before a checkpoint says the step is done
    checkpointer.save(step, as_saved(_snapshot(current)), {"data": source.get_state()}, blocking=False)

  def finish() -> None:
    """Waits for background writes and checkpoints (re-raising their errors) and closes the outputs."""
    try:
      background.shutdown()
    finally:
      writer.close()
      checkpointer.close()
      close_source = getattr(source, "close", None)
      if close_source is not None:
        close_source()

  step = int(host_state(state).step)
  # Compile the copy and the finiteness check now, not inside the first timed eval/checkpoint interval.
  jax.block_until_ready(_finite(_snapshot(host_state(state))))
  last_log_time, last_log_step = time.perf_counter(), step
  logging.info("Training %s/%s on %s for %d steps (from step %d) on %d device(s), %d step(s) per call, "
               "data %s, in %s", config.objective, config.arch, config.dataset, config.steps, step,
               num_shards, config.steps_per_call, "on the device" if data_on_device else "from the host",
               workdir)
  try:
    with _StopRequest() as stop:
      while step < config.steps:
        length = multistep.chunk_length(step, config.steps, config.steps_per_call)
        state, metrics = run_steps(length)(state, feed(step, length))
        step += length
        if step % config.log_every == 0 or step == config.steps:
          metrics = host_state(metrics) if distributed else metrics  # pmean-ed: every copy is equal
          values = {k: float(v) for k, v in jax.device_get(metrics).items()}
          now = time.perf_counter()
          values["steps_per_sec"] = (step - last_log_step) / max(now - last_log_time, 1e-9)
          last_log_time, last_log_step = now, step
          background.submit(writer.scalars, step, values)
          bad = sorted(k for k, v in values.items() if not np.isfinite(v))
          if bad:
            raise NonFiniteError(
                f"Non-finite {', '.join(f'{k}={values[k]}' for k in bad)} at step {step}. Stopped; the "
                f"last good checkpoint ({checkpointer.all_steps()[-1:] or 'none'}) is kept. Lower the "
                f"learning rates or add a regularizer (e.g. --gp_weight, --r1_gamma).")
          logging.info("step %d/%d | %s | %.1f steps/s", step, config.steps, _format_metrics(values),
                       values["steps_per_sec"])
        if step % config.eval_every == 0 and step < config.steps:
          save_samples(step)
        if step % config.ckpt_every == 0:
          save_checkpoint(step)
        if stop.signal is not None:
          save_checkpoint(step)
          logging.warning("Received signal %d: saved a checkpoint at step %d and stopped.", stop.signal,
                          step)
          finish()
          raise SystemExit(128 + stop.signal)
  except BaseException:
    if not isinstance(sys.exc_info()[1], SystemExit):
      try:
        finish()
      except Exception as e:  # noqa: BLE001 - the training error is the one to report
        logging.warning("While stopping: %s", e)
    raise

  # --- end of run: final samples, checkpoint, eval.json -------------------------------------------
  try:
    save_samples(step)
    save_checkpoint(step)
    background.wait()
    checkpointer.wait()  # the final checkpoint is on disk before eval.json says the run is finished
    final = host_state(state)
    result: dict[str, Any] = {"step": step, "num_samples": config.num_eval_samples,
                              "g_params_sha256": evaluate.params_sha256(final.g_params)}
    result.update(recipe.evaluate(final, config, source))
    if is_writer:
      with open(os.path.join(workdir, "eval.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, sort_keys=True)
  finally:
    finish()
  logging.info("Finished: %s", result)
  return result
