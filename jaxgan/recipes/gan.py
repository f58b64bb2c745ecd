"""The recipe of unconditional/conditional GANs with one G and one D: ``--arch=mlp|dcgan|resnet``.

The state is ``jaxgan.state.GANState`` and the step ``jaxgan.steps.train_step`` (n_critic D updates,
then one G update). Their defaults live in ``jaxgan.config`` (they predate recipes); ``DEFAULTS`` is
empty here.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from jaxgan import evaluate as eval_lib
from jaxgan import plots
from jaxgan.config import Config
from jaxgan.data.batches import BatchSource, ImageBatches, ToyBatches
from jaxgan.data.device import MAX_DEVICE_BYTES, DeviceBatches
from jaxgan.data.toy import TOY_DATASETS
from jaxgan.models import ModelSpec, build_models
from jaxgan.regularizers import pack as pack_inputs
from jaxgan.state import GANState, make_optimizer
from jaxgan.steps import StepConfig, train_step

DEFAULTS: dict[str, Any] = {}
RESOLUTIONS = (None, 28, 32, 64)

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def validate(config: Config) -> None:
  del config  # jaxgan.config validates every GAN field


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
      reuse_fake=bool(config.reuse_fake),
  )


def make_source(config: Config, *, shard_index: int = 0, shard_count: int = 1) -> BatchSource:
  """Toy mixtures sampled inside the step, or images (``make_image_source``)."""
  if not config.is_toy:
    return make_image_source(config, shard_index=shard_index, shard_count=shard_count,
                             conditional=config.conditional)
  # Every process draws the global batch from the same key and keeps its devices' slices, so a
  # multi-process run sees exactly the data of a one-process run with the same global batch.
  return ToyBatches(TOY_DATASETS[config.dataset], jax.random.PRNGKey(config.seed), config.batch_size,
                    config.n_critic)


def make_image_source(config: Config, *, shard_index: int = 0, shard_count: int = 1,
                      conditional: bool) -> DeviceBatches | ImageBatches:
  """``config.dataset``'s images, ``n_critic`` batches a step (every image recipe).

  On the device when it fits (``--data_on_device``, default: up to ``MAX_DEVICE_BYTES``): then every
  process holds the whole dataset and the batches are gathered inside the step. Otherwise this host's
  shard streamed through grain with prefetching.
  """
  if config.batch_size % shard_count:
    raise ValueError(f"--batch_size={config.batch_size} must be divisible by the {shard_count} processes")
  from jaxgan.data.images import load_image_arrays, make_image_iterator  # heavy imports: images only
  name = config.dataset if config.dataset != "digits" else None
  if config.data_on_device is not False:
    loaded = load_image_arrays(
        name, resolution=config.resolution, seed=config.seed, data_dir=config.data_dir,
        manual_dir=config.manual_dir, download=config.download,
        max_bytes=None if config.data_on_device else MAX_DEVICE_BYTES)
    if loaded is not None:
      images, labels, info = loaded
      arrays = {"image": images, **({"label": labels} if conditional else {})}
      return DeviceBatches(arrays, seed=config.seed, batch_size=config.batch_size,
                           draws_per_step=config.n_critic, streams={"examples": tuple(arrays)},
                           num_classes=info.num_classes if conditional else None,
                           example_shape=images.shape[1:])
    logging.info("%s is larger than %.1f GiB: streaming it from the host (--data_on_device=true forces "
                 "it onto the device).", config.dataset, MAX_DEVICE_BYTES / 1024**3)
  data = make_image_iterator(
      name, batch_size=config.batch_size // shard_count,
      resolution=config.resolution, seed=config.seed, data_dir=config.data_dir,
      manual_dir=config.manual_dir, download=config.download, shard_index=shard_index,
      shard_count=shard_count)
  return ImageBatches(data, n_critic=config.n_critic, conditional=conditional)


def create_state(config: Config, source: BatchSource, axis_name: str | None = None) -> GANState:
  """Models, optimizers and the initial GANState of a resolved config."""
  channels = source.example_shape[-1]
  spec = ModelSpec(latent_dim=config.latent_dim, width=config.width, resolution=config.resolution,
                   channels=channels, num_classes=source.num_classes,
                   spectral_norm=config.spectral_norm, axis_name=axis_name,
                   d_channels=channels * config.pack if source.example_shape[:-1] else None,
                   dtype=COMPUTE_DTYPES[config.precision])
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


def make_train_step(config: Config, source: BatchSource, axis_name: str | None = None):
  """``jaxgan.steps.train_step`` with this run's static structure bound."""
  return functools.partial(train_step, config=step_config(config, source.num_classes, axis_name))


def write_samples(state: GANState, config: Config, source: BatchSource, path: str) -> dict[str, float]:
  """Toy data: a scatter plot and the toy metrics; images: a grid of G(fixed z) (one class per row)."""
  use_ema = config.ema_decay > 0
  toy = TOY_DATASETS.get(config.dataset)
  if toy is not None:
    metrics, samples = eval_lib.evaluate_toy(state, toy, num_samples=config.num_eval_samples,
                                             latent_dim=config.latent_dim, use_ema=use_ema)
    real = np.asarray(toy.sample(jax.random.PRNGKey(0), 1000))
    plots.scatter_png(path, samples, real, means=toy.means,
                      title=f"step {int(state.step)}: {metrics['modes']} modes, hq {metrics['hq_fraction']:.2f}")
    return {f"eval/{k}": float(v) for k, v in metrics.items()}
  labels = state.fixed_labels if source.num_classes else None
  images = eval_lib.generate(state, state.fixed_z, labels, use_ema=use_ema)
  plots.save_image_grid(path, images, nrow=10 if source.num_classes else 8)
  return {}


def evaluate(state: GANState, config: Config, source: BatchSource) -> dict[str, Any]:
  """Toy metrics (PacGAN protocol) or the image metrics of ``jaxgan.eval_lib.evaluate_images``."""
  use_ema = config.ema_decay > 0
  result: dict[str, Any] = {"eval_params": "ema" if use_ema else "raw"}
  toy = TOY_DATASETS.get(config.dataset)
  if toy is not None:
    metrics, _ = eval_lib.evaluate_toy(state, toy, num_samples=config.num_eval_samples,
                                       latent_dim=config.latent_dim, use_ema=use_ema)
    result.update(metrics)
  else:
    result.update(eval_lib.evaluate_images(state, config, num_classes=source.num_classes,
                                           use_ema=use_ema))
  return result

