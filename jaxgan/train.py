"""The training loop: data -> train_step -> periodic logging, samples, checkpoints -> eval.json.

One readable function, ``train(config)``, in banner sections. Everything that happens per step runs
on the device inside the jitted ``train_step``; the host only feeds batches (toy data is sampled on the
device) and fetches metrics every ``log_every`` steps, where non-finite losses stop the run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from PIL import Image

from jaxgan import evaluate, plots
from jaxgan.checkpoint import Checkpointer
from jaxgan.config import Config, ConfigError, config_differences
from jaxgan.data.batches import BatchSource, ImageBatches, ToyBatches
from jaxgan.data.toy import TOY_DATASETS
from jaxgan.models import ModelSpec, build_models
from jaxgan.objectives import OBJECTIVES
from jaxgan.regularizers import pack as pack_inputs
from jaxgan.state import GANState, make_optimizer
from jaxgan.steps import StepConfig, make_steps
from jaxgan.writers import RunWriter


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


def step_config(config: Config, num_classes: int | None, axis_name: str | None = None) -> StepConfig:
  """The static step structure a resolved Config asks for."""
  return StepConfig(
      objective=config.objective,
      latent_dim=config.latent_dim,
      num_classes=num_classes,
      n_critic=config.n_critic,
      pack=config.pack,
      gradient_penalty=config.gp_weight > 0,
      r1=config.r1_gamma > 0,
      dragan=config.dragan_weight > 0,
      weight_clipping=config.objective == "wgan",
      instance_noise_steps=config.instance_noise_steps if config.instance_noise > 0 else 0,
      ema=config.ema_decay > 0,
      axis_name=axis_name,
  )


def make_batch_source(config: Config, *, shard_index: int = 0, shard_count: int = 1) -> BatchSource:
  """Toy mixtures on the device, or an image iterator on the host."""
  if config.is_toy:
    key = jax.random.PRNGKey(config.seed)
    return ToyBatches(TOY_DATASETS[config.dataset], key, config.batch_size, config.n_critic)
  from jaxgan.data.images import make_image_iterator  # heavy imports only for image runs
  data = make_image_iterator(
      config.dataset if config.dataset != "digits" else None, batch_size=config.batch_size,
      resolution=config.resolution, seed=config.seed, data_dir=config.data_dir,
      manual_dir=config.manual_dir, download=config.download, shard_index=shard_index,
      shard_count=shard_count)
  return ImageBatches(data, n_critic=config.n_critic, conditional=config.conditional)


def create_state(config: Config, source: BatchSource, axis_name: str | None = None) -> GANState:
  """Models, optimizers and the initial GANState of a resolved config."""
  channels = source.example_shape[-1]
  spec = ModelSpec(latent_dim=config.latent_dim, width=config.width, resolution=config.resolution,
                   channels=channels, num_classes=source.num_classes,
                   spectral_norm=config.spectral_norm, axis_name=axis_name)
  generator, discriminator = build_models(config.arch, spec)
  opt = lambda lr: make_optimizer(config.optimizer, learning_rate=lr, beta1=config.beta1,  # noqa: E731
                                  beta2=config.beta2)
  d_input = pack_inputs(jnp.zeros((config.pack,) + source.example_shape, jnp.float32), config.pack)
  num_fixed = 10 * source.num_classes if source.num_classes else 64
  return GANState.create(
      generator=generator, discriminator=discriminator, g_tx=opt(config.lr_g), d_tx=opt(config.lr_d),
      key=jax.random.PRNGKey(config.seed), latent_dim=config.latent_dim, d_input=d_input,
      num_classes=source.num_classes, num_fixed_samples=num_fixed,
      hparams=dict(real_label=1.0 - config.label_smoothing, margin=config.margin,
                   gp_weight=config.gp_weight, r1_gamma=config.r1_gamma,
                   dragan_weight=config.dragan_weight, clip_value=config.clip_value,
                   noise_std=config.instance_noise, ema_decay=config.ema_decay))


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


def _all_finite(tree: Any) -> bool:
  leaves = jax.tree_util.tree_leaves(tree)
  return bool(jax.device_get(jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))))


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
  """Trains (or resumes) the run ``config`` describes; returns the final evaluation (also eval.json)."""
  config = config.resolve()
  prepare_workdir(config)
  workdir = config.workdir
  source = make_batch_source(config)
  state = create_state(config, source)
  sconfig = step_config(config, source.num_classes)
  checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"))
  restored = checkpointer.restore_latest(state)
  if restored is not None:
    ckpt_step, state, meta = restored
    source.set_state(meta["data"])
    logging.info("Resumed from checkpoint at step %d", ckpt_step)
  steps = make_steps(sconfig)
  writer = RunWriter(workdir, enabled=jax.process_index() == 0)
  use_ema = config.ema_decay > 0
  toy = TOY_DATASETS.get(config.dataset)

  def save_samples(step: int) -> None:
    if toy is not None:
      metrics, samples = evaluate.evaluate_toy(state, toy, num_samples=config.num_eval_samples,
                                               latent_dim=config.latent_dim, use_ema=use_ema)
      path = os.path.join(workdir, "samples", f"step_{step:07d}.png")
      real = np.asarray(toy.sample(jax.random.PRNGKey(0), 1000))
      plots.scatter_png(path, samples, real, means=toy.means,
                        title=f"step {step}: {metrics['modes']} modes, hq {metrics['hq_fraction']:.2f}")
      writer.scalars(step, {f"eval/{k}": v for k, v in metrics.items()})
      with Image.open(path) as png:
        writer.image(step, "samples", np.asarray(png.convert("RGB")))
      logging.info("eval step %d: %s", step, metrics)
    else:
      labels = state.fixed_labels if source.num_classes else None
      images = evaluate.generate(state, state.fixed_z, labels, use_ema=use_ema)
      path = os.path.join(workdir, "samples", f"step_{step:07d}.png")
      grid = plots.save_image_grid(path, images, nrow=10 if source.num_classes else 8)
      writer.image(step, "samples", grid if grid.shape[-1] == 3 else np.repeat(grid, 3, axis=-1))
    shutil.copyfile(path, os.path.join(workdir, "samples", "latest.png"))

  def save_checkpoint(step: int) -> None:
    if not _all_finite((state.g_params, state.d_params)):
      raise NonFiniteError(f"Parameters are not finite at step {step}; the last good checkpoint "
                           f"({checkpointer.all_steps()[-1:] or 'none'}) is kept. Lower the learning "
                           f"rates or add a regularizer (e.g. --gp_weight).")
    checkpointer.save(step, state, {"data": source.get_state()})

  step = int(state.step)
  last_log_time, last_log_step = time.perf_counter(), step
  logging.info("Training %s/%s on %s for %d steps (from step %d) in %s", config.objective, config.arch,
               config.dataset, config.steps, step, workdir)
  with _StopRequest() as stop:
    while step < config.steps:
      batch = source.next(step)
      state, metrics = steps.train_step(state, batch)
      step += 1
      if step % config.log_every == 0 or step == config.steps:
        values = {k: float(v) for k, v in jax.device_get(metrics).items()}
        now = time.perf_counter()
        values["steps_per_sec"] = (step - last_log_step) / max(now - last_log_time, 1e-9)
        last_log_time, last_log_step = now, step
        writer.scalars(step, values)
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
        logging.warning("Received signal %d: saved a checkpoint at step %d and stopped.", stop.signal, step)
        writer.close()
        checkpointer.close()
        raise SystemExit(128 + stop.signal)

  # --- end of run: final samples, checkpoint, eval.json -------------------------------------------
  save_samples(step)
  save_checkpoint(step)
  result: dict[str, Any] = {"step": step, "num_samples": config.num_eval_samples,
                            "g_params_sha256": evaluate.params_sha256(state.g_params),
                            "eval_params": "ema" if use_ema else "raw"}
  if toy is not None:
    metrics, _ = evaluate.evaluate_toy(state, toy, num_samples=config.num_eval_samples,
                                       latent_dim=config.latent_dim, use_ema=use_ema)
    result.update(metrics)
  if jax.process_index() == 0:
    with open(os.path.join(workdir, "eval.json"), "w", encoding="utf-8") as f:
      json.dump(result, f, indent=2, sort_keys=True)
  writer.close()
  checkpointer.close()
  logging.info("Finished: %s", result)
  return result
