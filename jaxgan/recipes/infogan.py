"""The InfoGAN recipe (``--arch=infogan``): a GAN whose D trunk also feeds Q, trained with an MI bound.

Chen et al. 2016, "InfoGAN: Interpretable Representation Learning by Information Maximizing GANs".
G's input is ``[z, onehot(c1), c_cont]`` (``jaxgan.models.infogan``). Each step: ``n_critic`` updates
of D and Q together (they share parameters: D's trunk) on ``d_loss + info_weight * L_info``, then one
G update on ``g_loss + info_weight * L_info`` through D/Q's updated parameters (Q's head is not
updated by G's step). ``L_info`` = categorical cross-entropy of c1 + ``CONTINUOUS_FACTOR`` (0.1) x the
Gaussian NLL of the continuous codes, both on G's samples (``mutual_information_loss``).

State: ``jaxgan.state.GANState`` with ``latent_dim`` = the code length (its ``fixed_z`` noise part seeds
the grids). BatchNorm: real and fake batches go through D in separate calls (statistics never mix).
Randomness as ``jaxgan.steps``: D update n draws from ``fold_in(fold_in(key, KEY_D), n)``, the G update
of step t from ``fold_in(fold_in(key, KEY_G), t)``; under pmap each device folds in its index.

Sample grid: for each continuous code j, a block of K rows (c1 = row) x 11 columns (c_j swept over
[-1, 1], the other codes 0), one fixed z per block. ``eval.json``: ``categorical_accuracy`` (the
Hungarian one-to-one mapping code value -> label of a saved classifier, ``--classifier_dir``) and
``q_categorical_accuracy`` (how often Q recovers c1 from G's samples).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from jaxgan import evaluate as eval_lib
from jaxgan import plots
from jaxgan.config import Config, ConfigError
from jaxgan.data.batches import BatchSource
from jaxgan.models import infogan as models
from jaxgan.objectives import get_objective
from jaxgan.recipes.gan import COMPUTE_DTYPES, make_image_source
from jaxgan.regularizers import ema_update
from jaxgan.state import KEY_D, KEY_G, KEY_SAMPLES, GANState, make_optimizer, player_key

Array = jax.Array

# The paper's MNIST settings (Appendix C.1 and the authors' code): 62-d noise, Adam beta1=0.5,
# lr 2e-4 for D/Q and 1e-3 for G, batch 64 here (the code uses 128), no EMA of G; width 64 = the
# paper's layer sizes (``jaxgan.models.infogan``).
DEFAULTS: dict[str, Any] = dict(
    latent_dim=62, batch_size=64, steps=3000, lr_g=1e-3, lr_d=2e-4, beta1=0.5, beta2=0.999,
    optimizer="adam", ema_decay=0.0, width=64, info_weight=1.0, num_categories=10, num_continuous=2)
RESOLUTIONS = (28, 32)
SWEEP_COLUMNS = 11


def validate(config: Config) -> None:
  """InfoGAN's D has BatchNorm and no penalties; the codes need sensible sizes."""
  def need(cond: bool, message: str) -> None:
    if not cond:
      raise ConfigError(message)
  need(config.objective not in ("wgan", "wgan_gp"),
       f"--arch=infogan does not implement {config.objective}'s weight clipping / gradient penalty; use "
       f"--objective=nonsaturating (default), minimax, hinge, lsgan, ebgan, rsgan or ragan")
  need(config.gp_weight == 0 and config.r1_gamma == 0 and config.dragan_weight == 0,
       "--arch=infogan has no gradient penalties; drop --gp_weight/--r1_gamma/--dragan_weight")
  need(config.pack == 1 and not config.conditional and config.instance_noise == 0,
       "--arch=infogan is unconditional and unpacked; drop --pack/--conditional/--instance_noise")
  need(config.num_categories >= 2, f"--num_categories must be >= 2 (got {config.num_categories})")
  need(config.num_continuous >= 0, f"--num_continuous must be >= 0 (got {config.num_continuous})")
  need(config.info_weight >= 0, f"--info_weight must be >= 0 (got {config.info_weight})")


@dataclasses.dataclass(frozen=True)
class InfoStepConfig:
  """Static structure of an InfoGAN step (weights that never change are plain floats)."""

  objective: str = "nonsaturating"
  noise_dim: int = 62
  num_categories: int = 10
  num_continuous: int = 2
  n_critic: int = 1
  info_weight: float = 1.0
  ema: bool = False
  axis_name: str | None = None


def step_config(config: Config, axis_name: str | None = None) -> InfoStepConfig:
  return InfoStepConfig(objective=config.objective, noise_dim=config.latent_dim,
                        num_categories=config.num_categories, num_continuous=config.num_continuous,
                        n_critic=config.n_critic, info_weight=float(config.info_weight),
                        ema=config.ema_decay > 0, axis_name=axis_name)


def make_source(config: Config, *, shard_index: int = 0, shard_count: int = 1) -> BatchSource:
  """This host's shard of the image dataset (labels unused: InfoGAN is unsupervised)."""
  return make_image_source(config, shard_index=shard_index, shard_count=shard_count, conditional=False)


def build_models(config: Config, channels: int, axis_name: str | None = None):
  """(G, D with Q head) of a resolved config, computing in ``--precision``."""
  dtype = COMPUTE_DTYPES[config.precision]
  return (models.InfoGANGenerator(resolution=config.resolution, channels=channels, width=config.width,
                                  axis_name=axis_name, dtype=dtype),
          models.InfoGANDiscriminator(num_categories=config.num_categories,
                                      num_continuous=config.num_continuous, width=config.width,
                                      axis_name=axis_name, dtype=dtype))


def create_state(config: Config, source: BatchSource, axis_name: str | None = None) -> GANState:
  generator, discriminator = build_models(config, source.example_shape[-1], axis_name)
  opt = lambda lr: make_optimizer(config.optimizer, learning_rate=lr, beta1=config.beta1,  # noqa: E731
                                  beta2=config.beta2)
  return GANState.create(
      generator=generator, discriminator=discriminator, g_tx=opt(config.lr_g), d_tx=opt(config.lr_d),
      key=jax.random.PRNGKey(config.seed),
      latent_dim=models.code_dim(config.latent_dim, config.num_categories, config.num_continuous),
      d_input=jnp.zeros((1,) + source.example_shape, jnp.float32), num_fixed_samples=8,
      hparams=dict(real_label=1.0 - config.label_smoothing, margin=config.margin,
                   ema_decay=config.ema_decay))


# --- the step ----------------------------------------------------------------------------------------


def _device_key(key: Array, axis_name: str | None) -> Array:
  return key if axis_name is None else jax.random.fold_in(key, lax.axis_index(axis_name))


def _pmean(tree, axis_name: str | None):
  return tree if axis_name is None else lax.pmean(tree, axis_name)


def _codes(key: Array, batch: int, cfg: InfoStepConfig):
  return models.sample_codes(key, batch, cfg.noise_dim, cfg.num_categories, cfg.num_continuous)


def _g_train(state: GANState, params, codes: Array):
  out, mutated = state.g_apply({"params": params, "batch_stats": state.g_batch_stats}, codes, None,
                               train=True, mutable=["batch_stats"])
  return out, mutated["batch_stats"]


def _d_train(state: GANState, params, stats, x: Array):
  out, mutated = state.d_apply({"params": params, "batch_stats": stats}, x, None, train=True,
                               mutable=["batch_stats"])
  return out, mutated["batch_stats"]


def d_step(state: GANState, real: Array, *, cfg: InfoStepConfig) -> tuple[GANState, dict[str, Array]]:
  """One update of D and Q on a real batch and G's (detached) samples."""
  objective = get_objective(cfg.objective)
  key = _device_key(player_key(state, KEY_D, state.d_updates), cfg.axis_name)
  codes, c1, c_cont = _codes(key, real.shape[0], cfg)
  fake, g_stats = _g_train(state, state.g_params, codes)
  fake = lax.stop_gradient(fake)
  hp = state.hparams

  def loss_fn(d_params):
    (real_out, _, _), stats = _d_train(state, d_params, state.d_batch_stats, real)
    (fake_out, cat_logits, cont_mean), stats = _d_train(state, d_params, stats, fake)
    adversarial = objective.d_loss(real=real_out, fake=fake_out, **{k: hp[k] for k in objective.d_hparams})
    info, parts = models.mutual_information_loss(cat_logits, cont_mean, c1, c_cont)
    report = jax.nn.sigmoid if objective.outputs_are_logits else (lambda v: v)
    metrics = {"d_loss": adversarial, "d_real": jnp.mean(report(real_out)),
               "d_fake": jnp.mean(report(fake_out)),
               "q_loss": info, **parts}
    return adversarial + cfg.info_weight * info, (stats, metrics)

  grads, (d_stats, metrics) = jax.grad(loss_fn, has_aux=True)(state.d_params)
  grads = _pmean(grads, cfg.axis_name)
  updates, d_opt_state = state.d_tx.update(grads, state.d_opt_state, state.d_params)
  new_state = state.replace(
      d_params=optax.apply_updates(state.d_params, updates), d_opt_state=d_opt_state,
      d_batch_stats=_pmean(d_stats, cfg.axis_name), g_batch_stats=_pmean(g_stats, cfg.axis_name),
      d_updates=state.d_updates + 1)
  return new_state, _pmean(metrics, cfg.axis_name)


def g_step(state: GANState, real: Array, *, cfg: InfoStepConfig) -> tuple[GANState, dict[str, Array]]:
  """One G update on ``g_loss + info_weight * L_info`` through D/Q's current parameters."""
  objective = get_objective(cfg.objective)
  key = _device_key(player_key(state, KEY_G, state.step), cfg.axis_name)
  codes, c1, c_cont = _codes(key, real.shape[0], cfg)
  d_stats, real_out = state.d_batch_stats, None
  if objective.g_needs_real:
    (real_out, _, _), d_stats = _d_train(state, state.d_params, d_stats, real)

  def loss_fn(g_params):
    fake, g_stats = _g_train(state, g_params, codes)
    (fake_out, cat_logits, cont_mean), new_d_stats = _d_train(state, state.d_params, d_stats, fake)
    adversarial = objective.g_loss(fake=fake_out, real=real_out)
    info, _ = models.mutual_information_loss(cat_logits, cont_mean, c1, c_cont)
    return adversarial + cfg.info_weight * info, (g_stats, new_d_stats, adversarial, info)

  grads, (g_stats, d_stats, g_loss, info) = jax.grad(loss_fn, has_aux=True)(state.g_params)
  grads = _pmean(grads, cfg.axis_name)
  updates, g_opt_state = state.g_tx.update(grads, state.g_opt_state, state.g_params)
  g_params = optax.apply_updates(state.g_params, updates)
  g_ema = ema_update(state.g_ema_params, g_params, state.hparams["ema_decay"]) if cfg.ema else g_params
  new_state = state.replace(
      g_params=g_params, g_opt_state=g_opt_state, g_ema_params=g_ema,
      g_batch_stats=_pmean(g_stats, cfg.axis_name), d_batch_stats=_pmean(d_stats, cfg.axis_name),
      step=state.step + 1)
  return new_state, _pmean({"g_loss": g_loss, "g_info_loss": info}, cfg.axis_name)


def train_step(state: GANState, batches: dict[str, Array], *, cfg: InfoStepConfig
               ) -> tuple[GANState, dict[str, Array]]:
  """``n_critic`` D/Q updates (unrolled), then one G update; D metrics averaged over the updates."""
  images = batches["image"]
  chex.assert_axis_dimension(images, 0, cfg.n_critic)
  d_metrics = []
  for i in range(cfg.n_critic):
    state, m = d_step(state, images[i], cfg=cfg)
    d_metrics.append(m)
  state, g_metrics = g_step(state, images[-1], cfg=cfg)
  metrics = jax.tree_util.tree_map(lambda *v: jnp.mean(jnp.stack(v)), *d_metrics)
  metrics["mi_c1"] = jnp.log(float(cfg.num_categories)) - metrics["info_ce"]
  return state, {**metrics, **g_metrics}


def make_train_step(config: Config, source: BatchSource, axis_name: str | None = None):
  del source
  return functools.partial(train_step, cfg=step_config(config, axis_name))


# --- samples and evaluation --------------------------------------------------------------------------


def sweep_codes(noise: Array, num_categories: int, num_continuous: int, columns: int = SWEEP_COLUMNS
                ) -> Array:
  """G inputs of the grid: per continuous code j (one noise vector ``noise[j]`` each), K rows (c1 =
  row) x ``columns`` values of c_j in [-1, 1], other continuous codes 0. [C*K*columns, code_dim]."""
  blocks = []
  sweep = jnp.linspace(-1.0, 1.0, columns)
  for j in range(max(num_continuous, 1)):
    c1 = jnp.repeat(jnp.arange(num_categories, dtype=jnp.int32), columns)
    c_cont = jnp.zeros((num_categories * columns, num_continuous))
    if num_continuous:
      c_cont = c_cont.at[:, j].set(jnp.tile(sweep, num_categories))
    z = jnp.broadcast_to(noise[j % noise.shape[0]], (num_categories * columns, noise.shape[-1]))
    blocks.append(models.assemble_codes(z, c1, c_cont, num_categories))
  return jnp.concatenate(blocks)


def write_samples(state: GANState, config: Config, source: BatchSource, path: str) -> dict[str, float]:
  """The code-sweep grid (see the module docstring)."""
  del source
  codes = sweep_codes(state.fixed_z[:, :config.latent_dim], config.num_categories, config.num_continuous)
  images = eval_lib.generate(state, codes, use_ema=config.ema_decay > 0)
  plots.save_image_grid(path, images, nrow=SWEEP_COLUMNS)
  return {}


def hungarian_accuracy(codes: np.ndarray, labels: np.ndarray, num_codes: int, num_labels: int
                       ) -> tuple[float, dict[int, int]]:
  """Accuracy of the best one-to-one map code value -> label (``scipy.optimize.linear_sum_assignment``)."""
  from scipy.optimize import linear_sum_assignment
  counts = np.zeros((num_codes, num_labels), np.int64)
  np.add.at(counts, (np.asarray(codes), np.asarray(labels)), 1)
  rows, cols = linear_sum_assignment(-counts)
  return float(counts[rows, cols].sum() / max(len(codes), 1)), {int(r): int(c) for r, c in zip(rows, cols)}


@functools.partial(jax.jit, static_argnames=("apply_fn",))
def _q_predict(apply_fn, params, batch_stats, images: Array) -> Array:
  _, cat_logits, _ = apply_fn({"params": params, "batch_stats": batch_stats}, images, None, train=False)
  return jnp.argmax(cat_logits, axis=-1)


def evaluate(state: GANState, config: Config, source: BatchSource) -> dict[str, Any]:
  """Samples balanced over c1 (``num_eval_samples`` rounded up to a multiple of K), then Q's accuracy
  on c1 and, with ``--classifier_dir``, the Hungarian accuracy of c1 against the classifier's labels."""
  del source
  k = config.num_categories
  per_code = -(-config.num_eval_samples // k)
  key = jax.random.fold_in(jax.random.fold_in(state.key, KEY_SAMPLES), 1)
  z_key, cont_key = jax.random.split(key)
  c1 = jnp.repeat(jnp.arange(k, dtype=jnp.int32), per_code)
  z = jax.random.normal(z_key, (k * per_code, config.latent_dim))
  c_cont = jax.random.uniform(cont_key, (k * per_code, config.num_continuous), minval=-1.0, maxval=1.0)
  use_ema = config.ema_decay > 0
  images = eval_lib.generate(state, models.assemble_codes(z, c1, c_cont, k), use_ema=use_ema)
  q_pred = np.concatenate([np.asarray(_q_predict(state.d_apply, state.d_params, state.d_batch_stats,
                                                 images[i:i + 500])) for i in range(0, len(images), 500)])
  c1 = np.asarray(c1)
  result: dict[str, Any] = {"eval_params": "ema" if use_ema else "raw",
                            "num_categorical_samples": int(len(c1)),
                            "q_categorical_accuracy": float(np.mean(q_pred == c1))}
  if not config.classifier_dir:
    result["categorical_accuracy"] = None
    result["categorical_accuracy_note"] = ("no classifier: pass --classifier_dir (train one with "
                                           "python -m jaxgan.metrics.classifier --out=DIR)")
    return result
  from jaxgan.metrics.classifier import load_classifier
  classifier = load_classifier(config.classifier_dir)
  predict = classifier.predict_fn()
  labels = np.concatenate([np.asarray(jnp.argmax(predict(images[i:i + 500]), -1))
                           for i in range(0, len(images), 500)])
  num_labels = int(classifier.module.num_classes) if hasattr(classifier.module, "num_classes") else 10
  accuracy, mapping = hungarian_accuracy(c1, labels, k, max(num_labels, int(labels.max()) + 1))
  result.update(categorical_accuracy=accuracy, categorical_mapping={str(c): l for c, l in mapping.items()},
                classifier_dir=config.classifier_dir)
  return result
