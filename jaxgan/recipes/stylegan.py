"""The StyleGAN2 recipe (``--arch=stylegan``): mapping + synthesis G, residual D, lazy R1, style mixing,
EMA of G, truncation at sampling. Models in ``jaxgan.models.stylegan``.

Each step: ``n_critic`` D updates (1 for the default logistic non-saturating objective), then one G
update through D's updated parameters. Any registry objective works (WGAN's clipping and WGAN-GP's
penalty included). Details as StyleGAN2 (Karras et al. 2020):

* style mixing: with probability ``style_mixing`` an example's styles switch from w(z1) to w(z2) at a
  crossover layer drawn uniformly in [1, num_ws) (``mix_styles``), in both players' steps;
* lazy R1 (Sec. 3.1, "lazy regularization"): every ``r1_interval`` D updates, ``gamma/2 E||grad D(x)||^2``
  multiplied by ``r1_interval`` is added (a ``lax.cond``, so the other updates skip its cost), and D's
  Adam is corrected by ``c = interval / (interval + 1)`` (lr * c, beta^c);
* mean w tracked in the state (``w_avg = lerp(mean w, w_avg, 0.995)`` each G update) for truncation;
* EMA of G with decay ``min(ema_decay, (1 + t) / (10 + t))`` (ramped up so short runs are not
  dominated by the initialisation).

Randomness: D update n draws from ``fold_in(fold_in(key, KEY_D), n)``, the G update of step t from
``fold_in(fold_in(key, KEY_G), t)`` (latents, mixing, noise inputs); under pmap each device folds in its
index. Samples: ``fixed_z`` with noise from ``fold_in(key, KEY_SAMPLES)``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import chex
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from jaxgan import plots, regularizers
from jaxgan.config import Config, ConfigError
from jaxgan.data.batches import BatchSource
from jaxgan.models import stylegan as models
from jaxgan.objectives import get_objective
from jaxgan.recipes.gan import COMPUTE_DTYPES, make_image_source
from jaxgan.state import KEY_D, KEY_G, KEY_INIT, KEY_SAMPLES, make_optimizer, player_key

Array = jax.Array

# Small widths so a CPU run is feasible; optimizer settings of StyleGAN2 (Adam lr 0.0025, betas
# (0, 0.99)), here lr 0.002 for batch 32; lazy R1 on by default with gamma 0.1 (StyleGAN2's
# small-resolution range: 0.01-0.1); --r1_gamma=0 turns it off.
DEFAULTS: dict[str, Any] = dict(
    latent_dim=128, width=32, batch_size=32, steps=2000, lr_g=0.002, lr_d=0.002, beta1=0.0, beta2=0.99,
    optimizer="adam", ema_decay=0.995, style_mixing=0.9, truncation_psi=1.0, r1_interval=16,
    r1_gamma=0.1)
RESOLUTIONS = (28, 32, 64)
W_AVG_BETA = 0.995
MAPPING_LAYERS = 8
MAPPING_LR_MUL = 0.01


def validate(config: Config) -> None:
  def need(cond: bool, message: str) -> None:
    if not cond:
      raise ConfigError(message)
  need(0.0 <= config.style_mixing <= 1.0, f"--style_mixing must be in [0, 1] (got {config.style_mixing})")
  need(config.r1_interval >= 1, f"--r1_interval must be >= 1 (got {config.r1_interval})")
  need(config.truncation_psi >= 0, f"--truncation_psi must be >= 0 (got {config.truncation_psi})")
  need(config.pack == 1 and not config.conditional and config.instance_noise == 0,
       "--arch=stylegan is unconditional and unpacked; drop --pack/--conditional/--instance_noise")


@dataclasses.dataclass(frozen=True)
class StyleStepConfig:
  """Static structure of a StyleGAN step."""

  objective: str = "nonsaturating"
  latent_dim: int = 128
  num_ws: int = 8
  n_critic: int = 1
  style_mixing: float = 0.9
  r1_interval: int = 16
  r1: bool = False
  gradient_penalty: bool = False
  dragan: bool = False
  weight_clipping: bool = False
  ema: bool = True
  axis_name: str | None = None


def step_config(config: Config, axis_name: str | None = None) -> StyleStepConfig:
  return StyleStepConfig(
      objective=config.objective, latent_dim=config.latent_dim, num_ws=models.num_ws(config.resolution),
      n_critic=config.n_critic, style_mixing=float(config.style_mixing),
      r1_interval=config.r1_interval, r1=config.r1_gamma > 0, gradient_penalty=config.gp_weight > 0,
      dragan=config.dragan_weight > 0, weight_clipping=config.objective == "wgan",
      ema=config.ema_decay > 0, axis_name=axis_name)


@flax.struct.dataclass
class StyleGANState:
  """Both players, their optimizers, the EMA generator, the tracked mean w, the base key.

  ``hparams``: real_label, margin, gp_weight, r1_gamma, dragan_weight, clip_value, ema_decay (arrays).
  """

  step: Array
  d_updates: Array
  g_params: Any
  d_params: Any
  g_opt_state: Any
  d_opt_state: Any
  g_ema_params: Any
  w_avg: Array
  key: Array
  hparams: dict[str, Array]
  fixed_z: Array
  generator: models.StyleGenerator = flax.struct.field(pytree_node=False)
  discriminator: models.StyleDiscriminator = flax.struct.field(pytree_node=False)
  g_tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)
  d_tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)


def make_source(config: Config, *, shard_index: int = 0, shard_count: int = 1) -> BatchSource:
  """This host's shard of the image dataset (StyleGAN here is unconditional)."""
  return make_image_source(config, shard_index=shard_index, shard_count=shard_count, conditional=False)


def build_models(config: Config, channels: int) -> tuple[models.StyleGenerator, models.StyleDiscriminator]:
  """G and D of a resolved config, computing in ``--precision`` (params stay float32)."""
  dtype = COMPUTE_DTYPES[config.precision]
  return (models.StyleGenerator(resolution=config.resolution, channels=channels, width=config.width,
                                w_dim=config.latent_dim, mapping_layers=MAPPING_LAYERS,
                                mapping_lr_mul=MAPPING_LR_MUL, dtype=dtype),
          models.StyleDiscriminator(resolution=config.resolution, width=config.width, dtype=dtype))


def create_state(config: Config, source: BatchSource, axis_name: str | None = None) -> StyleGANState:
  del axis_name  # no cross-device statistics in these models
  generator, discriminator = build_models(config, source.example_shape[-1])
  key = jax.random.PRNGKey(config.seed)
  g_key, d_key, z_key = jax.random.split(jax.random.fold_in(key, KEY_INIT), 3)
  g_params = generator.init(g_key, jnp.zeros((1, config.latent_dim)), noise=False)["params"]
  d_params = discriminator.init(d_key, jnp.zeros((1,) + source.example_shape))["params"]
  # Lazy regularization's optimizer correction (StyleGAN2 Appendix B): c = k / (k + 1).
  c = config.r1_interval / (config.r1_interval + 1) if config.r1_gamma > 0 else 1.0
  g_tx = make_optimizer(config.optimizer, learning_rate=config.lr_g, beta1=config.beta1, beta2=config.beta2)
  d_tx = make_optimizer(config.optimizer, learning_rate=config.lr_d * c, beta1=config.beta1 ** c,
                        beta2=config.beta2 ** c)
  hparams = dict(real_label=1.0 - config.label_smoothing, margin=config.margin, gp_weight=config.gp_weight,
                 r1_gamma=config.r1_gamma, dragan_weight=config.dragan_weight,
                 clip_value=config.clip_value, ema_decay=config.ema_decay)
  return StyleGANState(
      step=jnp.zeros((), jnp.int32), d_updates=jnp.zeros((), jnp.int32), g_params=g_params,
      d_params=d_params, g_opt_state=g_tx.init(g_params), d_opt_state=d_tx.init(d_params),
      g_ema_params=jax.tree_util.tree_map(jnp.copy, g_params),
      w_avg=jnp.zeros((config.latent_dim,), jnp.float32), key=key,
      hparams={k: jnp.asarray(v, jnp.float32) for k, v in hparams.items()},
      fixed_z=jax.random.normal(z_key, (64, config.latent_dim), jnp.float32),
      generator=generator, discriminator=discriminator, g_tx=g_tx, d_tx=d_tx)


# --- the step ----------------------------------------------------------------------------------------


def _device_key(key: Array, axis_name: str | None) -> Array:
  return key if axis_name is None else jax.random.fold_in(key, lax.axis_index(axis_name))


def _pmean(tree, axis_name: str | None):
  return tree if axis_name is None else lax.pmean(tree, axis_name)


def _generate_train(state: StyleGANState, g_params, key: Array, batch: int, cfg: StyleStepConfig
                    ) -> tuple[Array, Array]:
  """G's samples with style mixing and random noise inputs; also returns w(z1) [B, W]."""
  z_key, mix_key, noise_key = jax.random.split(key, 3)
  z = jax.random.normal(z_key, (2, batch, cfg.latent_dim), jnp.float32)
  w = state.generator.apply({"params": g_params}, z.reshape(2 * batch, -1), method="map")
  w1, w2 = w[:batch], w[batch:]
  crossover = models.sample_crossover(mix_key, batch, cfg.num_ws, cfg.style_mixing)
  ws = models.mix_styles(w1, w2, crossover, cfg.num_ws)
  images = state.generator.apply({"params": g_params}, ws, method="synthesize", rngs={"noise": noise_key})
  return images, w1


def d_step(state: StyleGANState, real: Array, *, cfg: StyleStepConfig) -> tuple[StyleGANState, dict]:
  """One D update; every ``r1_interval``-th also takes the (scaled) R1 gradient."""
  objective = get_objective(cfg.objective)
  key = _device_key(player_key(state, KEY_D, state.d_updates), cfg.axis_name)
  gen_key, penalty_key = jax.random.split(key)
  fake, _ = _generate_train(state, state.g_params, gen_key, real.shape[0], cfg)
  fake = lax.stop_gradient(fake)
  hp = state.hparams
  d_apply = lambda p: (lambda x: state.discriminator.apply({"params": p}, x))  # noqa: E731

  def loss_fn(d_params):
    real_out, fake_out = d_apply(d_params)(real), d_apply(d_params)(fake)
    loss = objective.d_loss(real=real_out, fake=fake_out, **{k: hp[k] for k in objective.d_hparams})
    report = jax.nn.sigmoid if objective.outputs_are_logits else (lambda v: v)
    metrics = {"d_loss": loss, "d_real": jnp.mean(report(real_out)), "d_fake": jnp.mean(report(fake_out))}
    total = loss
    if cfg.gradient_penalty:
      metrics["gradient_penalty"] = regularizers.gradient_penalty(d_apply(d_params), real, fake, penalty_key)
      total = total + hp["gp_weight"] * metrics["gradient_penalty"]
    if cfg.dragan:
      metrics["dragan_penalty"] = regularizers.dragan_penalty(d_apply(d_params), real, penalty_key)
      total = total + hp["dragan_weight"] * metrics["dragan_penalty"]
    return total, metrics

  grads, metrics = jax.grad(loss_fn, has_aux=True)(state.d_params)
  if cfg.r1:
    def r1_loss(d_params):
      r1 = regularizers.r1_penalty(d_apply(d_params), real)
      return 0.5 * hp["r1_gamma"] * cfg.r1_interval * r1, r1

    zeros = lambda: (jax.tree_util.tree_map(jnp.zeros_like, state.d_params), jnp.zeros(()))  # noqa: E731
    r1_grads, r1 = lax.cond(state.d_updates % cfg.r1_interval == 0,
                            lambda: jax.grad(r1_loss, has_aux=True)(state.d_params), zeros)
    grads = jax.tree_util.tree_map(jnp.add, grads, r1_grads)
    metrics["r1_penalty"] = r1  # 0 on the updates that skip it
  grads = _pmean(grads, cfg.axis_name)
  updates, d_opt_state = state.d_tx.update(grads, state.d_opt_state, state.d_params)
  d_params = optax.apply_updates(state.d_params, updates)
  if cfg.weight_clipping:
    d_params = regularizers.clip_weights(d_params, hp["clip_value"])
  new_state = state.replace(d_params=d_params, d_opt_state=d_opt_state, d_updates=state.d_updates + 1)
  return new_state, _pmean(metrics, cfg.axis_name)


def ema_decay_at(step: Array, decay: Array) -> Array:
  """min(decay, (1 + t) / (10 + t)): the EMA ramps up over the first steps."""
  t = step.astype(jnp.float32)
  return jnp.minimum(decay, (1.0 + t) / (10.0 + t))


def g_step(state: StyleGANState, real: Array, *, cfg: StyleStepConfig) -> tuple[StyleGANState, dict]:
  """One G update (mapping and synthesis) through D's current parameters; EMA, w_avg, step + 1."""
  objective = get_objective(cfg.objective)
  key = _device_key(player_key(state, KEY_G, state.step), cfg.axis_name)
  d_apply = lambda x: state.discriminator.apply({"params": state.d_params}, x)  # noqa: E731
  real_out = d_apply(real) if objective.g_needs_real else None

  def loss_fn(g_params):
    fake, w1 = _generate_train(state, g_params, key, real.shape[0], cfg)
    return objective.g_loss(fake=d_apply(fake), real=real_out), w1

  (g_loss, w1), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
  grads = _pmean(grads, cfg.axis_name)
  updates, g_opt_state = state.g_tx.update(grads, state.g_opt_state, state.g_params)
  g_params = optax.apply_updates(state.g_params, updates)
  g_ema = g_params
  if cfg.ema:
    g_ema = regularizers.ema_update(state.g_ema_params, g_params,
                                    ema_decay_at(state.step, state.hparams["ema_decay"]))
  w_mean = _pmean(jnp.mean(lax.stop_gradient(w1), axis=0), cfg.axis_name)
  w_avg = w_mean + W_AVG_BETA * (state.w_avg - w_mean)
  new_state = state.replace(g_params=g_params, g_opt_state=g_opt_state, g_ema_params=g_ema, w_avg=w_avg,
                            step=state.step + 1)
  return new_state, _pmean({"g_loss": g_loss}, cfg.axis_name)


def train_step(state: StyleGANState, batches: dict[str, Array], *, cfg: StyleStepConfig
               ) -> tuple[StyleGANState, dict[str, Array]]:
  """``n_critic`` D updates (unrolled), then one G update; D metrics averaged over the updates."""
  images = batches["image"]
  chex.assert_axis_dimension(images, 0, cfg.n_critic)
  d_metrics = []
  for i in range(cfg.n_critic):
    state, m = d_step(state, images[i], cfg=cfg)
    d_metrics.append(m)
  state, g_metrics = g_step(state, images[-1], cfg=cfg)
  metrics = jax.tree_util.tree_map(lambda *v: jnp.mean(jnp.stack(v)), *d_metrics)
  return state, {**metrics, **g_metrics}


def make_train_step(config: Config, source: BatchSource, axis_name: str | None = None
                    ) -> Callable[[StyleGANState, dict[str, Array]], tuple[StyleGANState, dict]]:
  del source
  return functools.partial(train_step, cfg=step_config(config, axis_name))


# --- sampling, samples and evaluation ----------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("generator", "noise"))
def sample(generator: models.StyleGenerator, params, w_avg: Array, z: Array, psi: Array | float,
           noise_key: Array, noise: bool = True) -> Array:
  """Images of ``z`` with the truncation trick (``psi`` per example or scalar) and noise from the key."""
  w = generator.apply({"params": params}, z, method="map")
  psi = jnp.broadcast_to(jnp.asarray(psi, jnp.float32), (z.shape[0],))[:, None, None]
  num = models.num_ws(generator.resolution)
  ws = models.truncate(jnp.broadcast_to(w[:, None], (w.shape[0], num, w.shape[-1])), w_avg, psi)
  return generator.apply({"params": params}, ws, noise, method="synthesize", rngs={"noise": noise_key})


def _eval_params(state: StyleGANState, config: Config):
  return state.g_ema_params if config.ema_decay > 0 else state.g_params


def write_samples(state: StyleGANState, config: Config, source: BatchSource, path: str) -> dict[str, float]:
  """8x8 grid: 7 rows of ``fixed_z`` at ``truncation_psi``, then one z with psi from 1 down to 0."""
  del source
  noise_key = jax.random.fold_in(state.key, KEY_SAMPLES)
  z = jnp.concatenate([state.fixed_z[:56], jnp.broadcast_to(state.fixed_z[56], (8, config.latent_dim))])
  psi = jnp.concatenate([jnp.full((56,), config.truncation_psi), jnp.linspace(1.0, 0.0, 8)])
  images = sample(state.generator, _eval_params(state, config), state.w_avg, z, psi, noise_key)
  plots.save_image_grid(path, np.asarray(images), nrow=8)
  return {}


def evaluate(state: StyleGANState, config: Config, source: BatchSource) -> dict[str, Any]:
  """Sampling settings, and with ``--classifier_dir`` (grey 28 px data) the classifier FD/KID/PRDC."""
  result: dict[str, Any] = {"eval_params": "ema" if config.ema_decay > 0 else "raw",
                            "truncation_psi": config.truncation_psi,
                            "w_avg_norm": float(jnp.linalg.norm(state.w_avg))}
  if not config.classifier_dir or source.example_shape[-1] != 1:
    result["classifier_metrics_note"] = "pass --classifier_dir (grey datasets) for classifier FD/KID/PRDC"
    return result
  from jaxgan.data.images import make_image_iterator
  from jaxgan.metrics.classifier import load_classifier
  from jaxgan.metrics.features import compute_feature_metrics
  feature_fn = load_classifier(config.classifier_dir).feature_fn()
  real = make_image_iterator(config.dataset if config.dataset != "digits" else None, batch_size=250,
                             resolution=config.resolution, seed=config.seed + 1, data_dir=config.data_dir,
                             manual_dir=config.manual_dir)
  params, noise_key = _eval_params(state, config), jax.random.fold_in(state.key, KEY_SAMPLES)

  def fakes():
    for i in range(10 ** 9):
      z = jax.random.normal(jax.random.fold_in(noise_key, 2 * i), (250, config.latent_dim))
      yield sample(state.generator, params, state.w_avg, z, config.truncation_psi,
                   jax.random.fold_in(noise_key, 2 * i + 1))

  metrics = compute_feature_metrics(feature_fn, real, fakes(), config.num_eval_samples)
  result.update({f"classifier_{k}": v for k, v in metrics.items()})
  return result
