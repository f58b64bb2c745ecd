"""The Pix2Pix recipe (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial
Networks"): ``--arch=pix2pix``.

G is a U-Net mapping an input image to an output image (noise only as dropout), D a PatchGAN that sees
(input, image) pairs. Losses (Eq. 4, with the paper's practice of halving D's objective):

  D: 0.5 * d_loss(real=D(x, y), fake=D(x, G(x)))
  G: adv_weight * g_loss(fake=D(x, G(x))) + l1_weight * mean|y - G(x)|

``d_loss``/``g_loss`` come from ``jaxgan.objectives.OBJECTIVES[--objective]`` (default nonsaturating, as in
the paper; lsgan, hinge, ... also work). ``adv_weight`` = 0 is the L1-only baseline of the paper's Table 1
(read from ``config.adv_weight`` when the config has that field, else 1).

Update order per step (as the reference code): G(x) once (train mode, dropout key
``fold_in(fold_in(key, KEY_G), step)``); one D update on (real, detached fake); then one G update through
D's *updated* params with the same dropout mask. Real and fake pairs go through D in separate calls (real
first) so BatchNorm statistics never mix them. Optimizers: Adam(2e-4, beta1=0.5) for both.

Small images: the U-Net uses as many levels as the resolution can be halved (5 at 32 px, down to 1x1)
and the PatchGAN 16x16 patches below 64 px (70x70 from 128 px; ``jaxgan.models.pix2pix``).

Outputs: sample grids of (input | output | target) triplets of held-out examples; ``eval.json``: ``l1``
(mean |G(x) - y| on the [-1, 1] scale), ``psnr`` (dB, per image on the [0, 1] scale, averaged),
``sharpness`` (mean Sobel gradient magnitude of the outputs on [0, 1]), ``target_sharpness`` and their
ratio ``sharpness_ratio`` (1 = as sharp as the targets; L1-only outputs are blurrier, < 1).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import chex
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from jaxgan import plots
from jaxgan.config import Config, ConfigError
from jaxgan.data.translation import TranslationBatches, get_task, make_translation_source, sobel_magnitude
from jaxgan.models.pix2pix import PatchDiscriminator, UNetGenerator, conditional_input, default_patch_layers
from jaxgan.objectives import OBJECTIVES
from jaxgan.state import KEY_G, KEY_INIT, make_optimizer

Array = jax.Array
PyTree = Any

DEFAULTS: dict[str, Any] = dict(
    dataset="edges2digits", steps=600, batch_size=16, width=32, l1_weight=100.0, adv_weight=1.0,
    optimizer="adam", lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, n_critic=1, ema_decay=0.0,
    num_eval_samples=200)
RESOLUTIONS = (28, 32, 64, 128, 256)
NUM_GRID_EXAMPLES = 16


def adv_weight(config: Config) -> float:
  """The adversarial loss weight: ``config.adv_weight`` if the config has the field, else 1."""
  value = getattr(config, "adv_weight", None)
  return 1.0 if value is None else float(value)


def _check_common(config: Config, arch: str, *, paired: bool) -> None:
  """Checks shared by the translation recipes (pix2pix and cyclegan)."""
  def need(cond: bool, message: str) -> None:
    if not cond:
      raise ConfigError(message)

  try:
    task = get_task(config.dataset)
  except ValueError as e:
    raise ConfigError(f"--arch={arch}: {e}") from None
  if paired:
    need(task.paired, f"--arch=pix2pix needs paired data; --dataset={config.dataset} is unpaired (use "
                      f"edges2digits, edges2mnist or lowres2mnist, or --arch=cyclegan for unpaired data)")
  need(config.n_critic == 1, f"--arch={arch} makes one D update per step; drop --n_critic")
  for name in ("gp_weight", "r1_gamma", "dragan_weight", "instance_noise"):
    need(getattr(config, name) == 0, f"--{name} is not implemented for --arch={arch}; drop it")
  need(config.objective != "wgan", f"--objective=wgan needs weight clipping, which --arch={arch} does not "
                                   f"do; use nonsaturating, lsgan or hinge")
  need(config.pack == 1, f"--pack is not implemented for --arch={arch}")
  need(not config.conditional and not config.spectral_norm,
       f"--conditional/--spectral_norm do not apply to --arch={arch}")
  need(config.ema_decay == 0, f"--ema_decay is not implemented for --arch={arch}; drop it")
  need(not OBJECTIVES[config.objective].g_needs_real,
       f"--objective={config.objective} (relativistic) is not implemented for --arch={arch}")


def validate(config: Config) -> None:
  """Raises ConfigError for settings this recipe cannot train."""
  _check_common(config, "pix2pix", paired=True)
  if config.l1_weight < 0 or adv_weight(config) < 0:
    raise ConfigError(f"--l1_weight and the adversarial weight must be >= 0 (got {config.l1_weight}, "
                      f"{adv_weight(config)})")


def make_source(config: Config, *, shard_index: int = 0, shard_count: int = 1) -> TranslationBatches:
  """Paired (input, target) batches of ``config.dataset`` (``jaxgan.data.translation``)."""
  return make_translation_source(config, paired=True, shard_index=shard_index, shard_count=shard_count)


# --- state ------------------------------------------------------------------------------------------


@flax.struct.dataclass
class Pix2PixState:
  """Everything a pix2pix run needs to continue exactly (apply functions and optimizers static).

  ``hparams``: ``l1_weight``, ``adv_weight``, ``real_label`` (scalars). ``fixed_input``/``fixed_target``:
  the held-out examples of the sample grids.
  """

  step: Array
  g_params: PyTree
  d_params: PyTree
  g_batch_stats: PyTree
  d_batch_stats: PyTree
  g_opt_state: PyTree
  d_opt_state: PyTree
  key: Array
  hparams: dict[str, Array]
  fixed_input: Array
  fixed_target: Array
  g_apply: Callable[..., Any] = flax.struct.field(pytree_node=False)
  d_apply: Callable[..., Any] = flax.struct.field(pytree_node=False)
  g_tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)
  d_tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)


def compute_dtype(config: Config) -> jnp.dtype:
  """The layers' computation dtype of ``--precision`` (float32 or bfloat16; validated by Config).

  Looked up by name rather than through ``jaxgan.recipes.gan.COMPUTE_DTYPES`` so that the translation
  recipes do not import the GAN recipe."""
  return jnp.dtype(config.precision)


def build_models(config: Config, source: TranslationBatches, axis_name: str | None
                 ) -> tuple[UNetGenerator, PatchDiscriminator]:
  """U-Net G and PatchGAN D of a resolved config, computing in ``--precision``."""
  dtype = compute_dtype(config)
  generator = UNetGenerator(out_channels=source.example_shape[-1], ngf=config.width, norm="batch",
                            axis_name=axis_name, dtype=dtype)
  discriminator = PatchDiscriminator(ndf=config.width, n_layers=default_patch_layers(config.resolution),
                                     norm="batch", axis_name=axis_name, dtype=dtype)
  return generator, discriminator


def create_state(config: Config, source: TranslationBatches, axis_name: str | None = None) -> Pix2PixState:
  generator, discriminator = build_models(config, source, axis_name)
  key = jax.random.PRNGKey(config.seed)
  g_key, d_key = jax.random.split(jax.random.fold_in(key, KEY_INIT))
  x = jnp.zeros((2,) + source.input_shape, jnp.float32)
  y = jnp.zeros((2,) + source.example_shape, jnp.float32)
  g_vars = generator.init(g_key, x, train=False)
  d_vars = discriminator.init(d_key, conditional_input(x, y), train=False)
  opt = lambda lr: make_optimizer(config.optimizer, learning_rate=lr, beta1=config.beta1,  # noqa: E731
                                  beta2=config.beta2)
  g_tx, d_tx = opt(config.lr_g), opt(config.lr_d)
  fixed = min(NUM_GRID_EXAMPLES, len(source.domains.eval_a))
  hparams = dict(l1_weight=config.l1_weight, adv_weight=adv_weight(config),
                 real_label=1.0 - config.label_smoothing)
  return Pix2PixState(
      step=jnp.zeros((), jnp.int32), g_params=g_vars["params"], d_params=d_vars["params"],
      g_batch_stats=g_vars.get("batch_stats", {}), d_batch_stats=d_vars.get("batch_stats", {}),
      g_opt_state=g_tx.init(g_vars["params"]), d_opt_state=d_tx.init(d_vars["params"]), key=key,
      hparams={k: jnp.asarray(v, jnp.float32) for k, v in hparams.items()},
      fixed_input=jnp.asarray(source.domains.eval_a[:fixed]),
      fixed_target=jnp.asarray(source.domains.eval_b[:fixed]),
      g_apply=generator.apply, d_apply=discriminator.apply, g_tx=g_tx, d_tx=d_tx)


# --- the step ---------------------------------------------------------------------------------------


def _pmean(tree, axis_name: str | None):
  return tree if axis_name is None else lax.pmean(tree, axis_name)


def train_step(state: Pix2PixState, batch: dict[str, Array], *, objective: str,
               axis_name: str | None = None) -> tuple[Pix2PixState, dict[str, Array]]:
  """One D update, then one G update (see the module docstring). Batch leaves: ``[1, B, R, R, C]``."""
  obj = OBJECTIVES[objective]
  x, y = batch["input"][0], batch["target"][0]
  chex.assert_rank([x, y], 4)
  chex.assert_equal_shape_prefix([x, y], 3)
  hp = state.hparams
  dropout_key = jax.random.fold_in(jax.random.fold_in(state.key, KEY_G), state.step)
  if axis_name is not None:  # each device its own dropout masks
    dropout_key = jax.random.fold_in(dropout_key, lax.axis_index(axis_name))

  def generate(g_params):
    out, mutated = state.g_apply({"params": g_params, "batch_stats": state.g_batch_stats}, x, train=True,
                                 rngs={"dropout": dropout_key}, mutable=["batch_stats"])
    return out, mutated["batch_stats"]

  def discriminate(d_params, stats, image):
    out, mutated = state.d_apply({"params": d_params, "batch_stats": stats}, conditional_input(x, image),
                                 train=True, mutable=["batch_stats"])
    return out, mutated["batch_stats"]

  # D update on the real pair and the detached fake pair.
  fake, _ = generate(state.g_params)
  fake = lax.stop_gradient(fake)

  def d_loss_fn(d_params):
    real_out, stats = discriminate(d_params, state.d_batch_stats, y)
    fake_out, stats = discriminate(d_params, stats, fake)
    loss = 0.5 * obj.d_loss(real=real_out, fake=fake_out, **{k: hp[k] for k in obj.d_hparams})
    return loss, (stats, real_out, fake_out)

  (d_loss, (d_stats, real_out, fake_out)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
      state.d_params)
  d_grads = _pmean(d_grads, axis_name)
  updates, d_opt_state = state.d_tx.update(d_grads, state.d_opt_state, state.d_params)
  d_params = optax.apply_updates(state.d_params, updates)
  d_stats = _pmean(d_stats, axis_name)

  # G update through the updated D.
  def g_loss_fn(g_params):
    out, g_stats = generate(g_params)
    d_out, new_d_stats = discriminate(d_params, d_stats, out)
    adversarial = obj.g_loss(fake=d_out)
    l1 = jnp.mean(jnp.abs(out - y))
    total = hp["adv_weight"] * adversarial + hp["l1_weight"] * l1
    return total, (g_stats, new_d_stats, adversarial, l1)

  (g_total, (g_stats, d_stats, g_adv, l1)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
      state.g_params)
  g_grads = _pmean(g_grads, axis_name)
  updates, g_opt_state = state.g_tx.update(g_grads, state.g_opt_state, state.g_params)
  g_params = optax.apply_updates(state.g_params, updates)
  report = (lambda o: jnp.mean(jax.nn.sigmoid(o))) if obj.outputs_are_logits else jnp.mean
  metrics = dict(d_loss=d_loss, g_loss=g_adv, g_total=g_total, l1=l1, d_real=report(real_out),
                 d_fake=report(fake_out), d_grad_norm=optax.tree.norm(d_grads),
                 g_grad_norm=optax.tree.norm(g_grads))
  new_state = state.replace(
      step=state.step + 1, g_params=g_params, d_params=d_params,
      g_batch_stats=_pmean(g_stats, axis_name), d_batch_stats=_pmean(d_stats, axis_name),
      g_opt_state=g_opt_state, d_opt_state=d_opt_state)
  return new_state, _pmean(metrics, axis_name)


def make_train_step(config: Config, source: TranslationBatches, axis_name: str | None = None):
  """``train_step`` with the objective and device axis bound (pure, unjitted)."""
  del source
  return functools.partial(train_step, objective=config.objective, axis_name=axis_name)


# --- samples and evaluation ---------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("apply_fn",))
def _translate(apply_fn, params, batch_stats, x: Array) -> Array:
  return apply_fn({"params": params, "batch_stats": batch_stats}, x, train=False)


def translate(state: Pix2PixState, x: np.ndarray, batch_size: int = 100) -> np.ndarray:
  """G(x) in evaluation mode (running BatchNorm statistics, no dropout), in batches."""
  outs = [_translate(state.g_apply, state.g_params, state.g_batch_stats, jnp.asarray(x[i:i + batch_size]))
          for i in range(0, len(x), batch_size)]
  return np.concatenate([np.asarray(o) for o in outs])


def as_rgb(images: np.ndarray, channels: int) -> np.ndarray:
  """Grey images repeated to ``channels`` (3) so images of different domains share a grid."""
  return np.repeat(images, channels, axis=-1) if images.shape[-1] != channels else images


def triplet_grid(path: str, columns: list[np.ndarray], per_row: int = 4) -> None:
  """Writes examples as side-by-side tuples (e.g. input | output | target), ``per_row`` tuples a row."""
  channels = max(c.shape[-1] for c in columns)
  stacked = np.stack([as_rgb(np.asarray(c), channels) for c in columns], axis=1)  # [N, k, H, W, C]
  plots.save_image_grid(path, stacked.reshape((-1,) + stacked.shape[2:]), nrow=per_row * len(columns))


def write_samples(state: Pix2PixState, config: Config, source: TranslationBatches, path: str) -> dict:
  """(input | output | target) triplets of the fixed held-out examples, four a row."""
  del config, source
  x, y = np.asarray(state.fixed_input), np.asarray(state.fixed_target)
  triplet_grid(path, [x, translate(state, x), y])
  return {}


def psnr(output: np.ndarray, target: np.ndarray) -> float:
  """Mean per-image PSNR (dB) of images in [-1, 1], measured on the [0, 1] scale (peak 1)."""
  err = ((np.asarray(output, np.float64) - np.asarray(target, np.float64)) / 2.0) ** 2
  mse = np.maximum(err.reshape(len(err), -1).mean(axis=1), 1e-10)
  return float(np.mean(10.0 * np.log10(1.0 / mse)))


def sharpness(images: np.ndarray) -> float:
  """Mean Sobel gradient magnitude of images in [-1, 1], on the [0, 1] scale (higher = sharper)."""
  return float(np.mean(sobel_magnitude(images)))


def paired_metrics(output: np.ndarray, target: np.ndarray) -> dict[str, float]:
  """``l1``, ``psnr``, ``sharpness``, ``target_sharpness``, ``sharpness_ratio`` (see module docstring)."""
  out_sharp, target_sharp = sharpness(output), sharpness(target)
  return {"l1": float(np.mean(np.abs(np.asarray(output) - np.asarray(target)))), "psnr": psnr(output, target),
          "sharpness": out_sharp, "target_sharpness": target_sharp,
          "sharpness_ratio": out_sharp / max(target_sharp, 1e-12)}


def evaluate(state: Pix2PixState, config: Config, source: TranslationBatches) -> dict[str, Any]:
  """Paired metrics of G on the held-out examples (``num_eval_samples`` of them at most)."""
  d = source.domains
  n = min(config.num_eval_samples, len(d.eval_a))
  result = paired_metrics(translate(state, d.eval_a[:n]), d.eval_b[:n])
  result.update(num_eval_examples=n, adv_weight=float(state.hparams["adv_weight"]))
  return result

