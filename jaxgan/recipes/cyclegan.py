"""The CycleGAN recipe (Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks"): ``--arch=cyclegan``.

Two ResNet generators G: A -> B (``g_params["a2b"]``) and F: B -> A (``g_params["b2a"]``), two PatchGAN
discriminators ``d_params["b"]`` (B images: real b vs G(a)) and ``d_params["a"]`` (real a vs F(b)), all
with instance norm. Losses (Eqs. 1-3 and Sec. 5.2's identity loss):

  G, F: g_loss(D_b(G(a))) + g_loss(D_a(F(b))) + cycle_weight * (|F(G(a)) - a| + |G(F(b)) - b|)
        + identity_weight * cycle_weight * (|G(b) - b| + |F(a) - a|)            (L1 = mean over pixels)
  D_b:  d_loss(real=D_b(b), fake=D_b(pool_b(G(a)))),  D_a likewise with pool_a(F(b)).

``d_loss``/``g_loss`` come from ``jaxgan.objectives`` (LSGAN is the paper's choice; note the registry's
LSGAN G loss is 1/2 (D - 1)^2, half the reference code's MSE, while its D loss equals the reference's
0.5 * (MSE_real + MSE_fake)). ``pool_*`` is the history of ``pool_size`` generated images
(``jaxgan.image_pool``) kept in the state.

Update order per step (as the reference ``optimize_parameters``): generate G(a), F(b) with the current
params; one update of both generators (one Adam over both, the discriminators fixed); then one update of
both discriminators on images drawn from the pools, which first receive the (detached) G(a), F(b) of
this step. Pool randomness: ``fold_in(fold_in(key, KEY_D), step)``. Under pmap the generated batches are
gathered so that every device runs the same pool on the global batch (the pool stays replicated).

Learning rates: Adam(2e-4, beta1=0.5), constant until ``lr_decay_start`` then linearly to 0 at ``steps``
(the paper: 100 epochs constant, 100 decaying); ``lr_decay_start=-1`` means ``steps // 2``.

Outputs: sample grids of (A | G(A) | F(G(A))) triplets of held-out A images (top half) and
(B | F(B) | G(F(B))) of held-out B images (bottom half); ``eval.json``: ``cycle_l1`` (the mean of
``cycle_l1_a`` = |F(G(a)) - a| and ``cycle_l1_b`` = |G(F(b)) - b| on held-out images, [-1, 1] scale) and,
for the offline tasks whose held-out B is the true translation of A, ``a2b_l1``/``a2b_psnr``/... of G.
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

from jaxgan import image_pool
from jaxgan.config import Config, ConfigError
from jaxgan.data.translation import TranslationBatches, make_translation_source
from jaxgan.models.cyclegan import ResNetGenerator, default_blocks
from jaxgan.models.pix2pix import PatchDiscriminator, default_patch_layers
from jaxgan.objectives import OBJECTIVES
from jaxgan.recipes import pix2pix as p2p
from jaxgan.state import KEY_D, KEY_INIT, make_optimizer

Array = jax.Array
PyTree = Any

DEFAULTS: dict[str, Any] = dict(
    dataset="digits2inverted", objective="lsgan", steps=400, batch_size=8, width=16, cycle_weight=10.0,
    identity_weight=0.5, pool_size=50, lr_decay_start=-1, optimizer="adam", lr_g=2e-4, lr_d=2e-4,
    beta1=0.5, beta2=0.999, n_critic=1, ema_decay=0.0, num_eval_samples=200)
RESOLUTIONS = (32, 64, 128, 256)
NUM_GRID_EXAMPLES = 8


def decay_start(config: Config) -> int:
  """The step where the learning rates start to decay (``-1``: half of ``steps``)."""
  return config.steps // 2 if config.lr_decay_start == -1 else config.lr_decay_start


def validate(config: Config) -> None:
  """Raises ConfigError for settings this recipe cannot train."""
  p2p._check_common(config, "cyclegan", paired=False)  # pylint: disable=protected-access
  for name in ("cycle_weight", "identity_weight"):
    if getattr(config, name) < 0:
      raise ConfigError(f"--{name} must be >= 0 (got {getattr(config, name)})")
  if config.pool_size < 0:
    raise ConfigError(f"--pool_size must be >= 0 (0 = no history), got {config.pool_size}")
  if config.lr_decay_start != -1 and not 0 <= config.lr_decay_start <= config.steps:
    raise ConfigError(f"--lr_decay_start must be in [0, --steps={config.steps}] or -1 (= steps // 2), "
                      f"got {config.lr_decay_start}")


def make_source(config: Config, *, shard_index: int = 0, shard_count: int = 1) -> TranslationBatches:
  """Unpaired batches {"a", "b"} drawn independently (``jaxgan.data.translation``)."""
  return make_translation_source(config, paired=False, shard_index=shard_index, shard_count=shard_count)


# --- state ------------------------------------------------------------------------------------------


@flax.struct.dataclass
class CycleGANState:
  """All four networks, their optimizers, both image pools and the fixed grid examples.

  ``g_params = {"a2b": G, "b2a": F}``, ``d_params = {"a": D_a, "b": D_b}``; ``pool_a`` holds generated A
  images (F(b)) for D_a, ``pool_b`` generated B images (G(a)) for D_b. ``hparams``: ``cycle_weight``,
  ``identity_weight``, ``real_label``.
  """

  step: Array
  g_params: PyTree
  d_params: PyTree
  g_opt_state: PyTree
  d_opt_state: PyTree
  pool_a: image_pool.ImagePool
  pool_b: image_pool.ImagePool
  key: Array
  hparams: dict[str, Array]
  fixed_a: Array
  fixed_b: Array
  g_apply: Callable[..., Any] = flax.struct.field(pytree_node=False)
  d_apply: Callable[..., Any] = flax.struct.field(pytree_node=False)
  g_tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)
  d_tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)


def lr_schedule(lr: float, steps: int, start: int) -> optax.Schedule:
  """Constant ``lr`` until ``start``, then linear to 0 at ``steps``."""
  return optax.linear_schedule(init_value=lr, end_value=0.0, transition_steps=max(steps - start, 1),
                               transition_begin=start)


def create_state(config: Config, source: TranslationBatches, axis_name: str | None = None) -> CycleGANState:
  del axis_name  # instance norm: no cross-device statistics
  a_shape, b_shape = source.input_shape, source.example_shape
  blocks = default_blocks(config.resolution)
  if a_shape != b_shape:  # one module (shared apply) for both directions
    raise ValueError(f"cyclegan needs A and B images of the same shape (got {a_shape}, {b_shape})")
  dtype = p2p.compute_dtype(config)  # --precision: the layers' computation dtype (params stay float32)
  generator = ResNetGenerator(out_channels=b_shape[-1], ngf=config.width, n_blocks=blocks, dtype=dtype)
  discriminator = PatchDiscriminator(ndf=config.width, n_layers=default_patch_layers(config.resolution),
                                     norm="instance", dtype=dtype)
  key = jax.random.PRNGKey(config.seed)
  keys = jax.random.split(jax.random.fold_in(key, KEY_INIT), 4)
  a, b = jnp.zeros((1,) + a_shape), jnp.zeros((1,) + b_shape)
  g_params = {"a2b": generator.init(keys[0], a)["params"], "b2a": generator.init(keys[1], b)["params"]}
  d_params = {"a": discriminator.init(keys[2], a, train=False)["params"],
              "b": discriminator.init(keys[3], b, train=False)["params"]}
  start = decay_start(config)
  opt = lambda lr: make_optimizer(config.optimizer,  # noqa: E731
                                  learning_rate=lr_schedule(lr, config.steps, start),  # type: ignore[arg-type]
                                  beta1=config.beta1, beta2=config.beta2)
  g_tx, d_tx = opt(config.lr_g), opt(config.lr_d)
  fixed = min(NUM_GRID_EXAMPLES, len(source.domains.eval_a), len(source.domains.eval_b))
  hparams = dict(cycle_weight=config.cycle_weight, identity_weight=config.identity_weight,
                 real_label=1.0 - config.label_smoothing)
  return CycleGANState(
      step=jnp.zeros((), jnp.int32), g_params=g_params, d_params=d_params,
      g_opt_state=g_tx.init(g_params), d_opt_state=d_tx.init(d_params),
      pool_a=image_pool.ImagePool.create(config.pool_size, a_shape),
      pool_b=image_pool.ImagePool.create(config.pool_size, b_shape), key=key,
      hparams={k: jnp.asarray(v, jnp.float32) for k, v in hparams.items()},
      fixed_a=jnp.asarray(source.domains.eval_a[:fixed]), fixed_b=jnp.asarray(source.domains.eval_b[:fixed]),
      g_apply=generator.apply, d_apply=discriminator.apply, g_tx=g_tx, d_tx=d_tx)


# --- losses and the step ------------------------------------------------------------------------------


def l1(x: Array, y: Array) -> Array:
  return jnp.mean(jnp.abs(x - y))


def cycle_losses(g_apply: Callable[..., Array], g_params: PyTree, a: Array, b: Array
                 ) -> tuple[dict[str, Array], dict[str, Array]]:
  """The generated images and the generator-only losses (cycle and identity L1, unweighted).

  Returns ``(images, losses)``: ``images`` = fake_b = G(a), fake_a = F(b); ``losses`` = cycle_a
  |F(G(a)) - a|, cycle_b |G(F(b)) - b|, identity_a |F(a) - a|, identity_b |G(b) - b|.
  """
  G = lambda x: g_apply({"params": g_params["a2b"]}, x)  # noqa: E731
  F = lambda x: g_apply({"params": g_params["b2a"]}, x)  # noqa: E731
  fake_b, fake_a = G(a), F(b)
  losses = dict(cycle_a=l1(F(fake_b), a), cycle_b=l1(G(fake_a), b), identity_a=l1(F(a), a),
                identity_b=l1(G(b), b))
  return dict(fake_a=fake_a, fake_b=fake_b), losses


def _pool_query(pool: image_pool.ImagePool, fake: Array, key: Array, axis_name: str | None
                ) -> tuple[image_pool.ImagePool, Array]:
  """The pool on the global batch (gathered under pmap, so every device's pool stays equal)."""
  if axis_name is None:
    return image_pool.query(pool, fake, key)
  full = lax.all_gather(fake, axis_name, tiled=True)
  pool, out = image_pool.query(pool, full, key)
  return pool, lax.dynamic_slice_in_dim(out, lax.axis_index(axis_name) * fake.shape[0], fake.shape[0])


def _pmean(tree, axis_name: str | None):
  return tree if axis_name is None else lax.pmean(tree, axis_name)


def train_step(state: CycleGANState, batch: dict[str, Array], *, objective: str,
               axis_name: str | None = None) -> tuple[CycleGANState, dict[str, Array]]:
  """One update of both generators, then of both discriminators (see the module docstring)."""
  obj = OBJECTIVES[objective]
  a, b = batch["a"][0], batch["b"][0]
  chex.assert_rank([a, b], 4)
  hp = state.hparams
  D = lambda params, x: state.d_apply({"params": params}, x, train=True)  # noqa: E731

  def g_loss_fn(g_params):
    images, losses = cycle_losses(state.g_apply, g_params, a, b)
    adversarial = (obj.g_loss(fake=D(state.d_params["b"], images["fake_b"]))
                   + obj.g_loss(fake=D(state.d_params["a"], images["fake_a"])))
    cycle = losses["cycle_a"] + losses["cycle_b"]
    identity = losses["identity_a"] + losses["identity_b"]
    total = adversarial + hp["cycle_weight"] * (cycle + hp["identity_weight"] * identity)
    return total, (images, adversarial, losses)

  (g_total, (images, g_adv, losses)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.g_params)
  g_grads = _pmean(g_grads, axis_name)
  updates, g_opt_state = state.g_tx.update(g_grads, state.g_opt_state, state.g_params)
  g_params = optax.apply_updates(state.g_params, updates)

  pool_key_a, pool_key_b = jax.random.split(
      jax.random.fold_in(jax.random.fold_in(state.key, KEY_D), state.step))
  pool_a, fake_a = _pool_query(state.pool_a, lax.stop_gradient(images["fake_a"]), pool_key_a, axis_name)
  pool_b, fake_b = _pool_query(state.pool_b, lax.stop_gradient(images["fake_b"]), pool_key_b, axis_name)
  d_kwargs = {k: hp[k] for k in obj.d_hparams}

  def d_loss_fn(d_params):
    real_a, real_b = D(d_params["a"], a), D(d_params["b"], b)
    gen_a, gen_b = D(d_params["a"], fake_a), D(d_params["b"], fake_b)
    loss = obj.d_loss(real=real_a, fake=gen_a, **d_kwargs) + obj.d_loss(real=real_b, fake=gen_b, **d_kwargs)
    return loss, (jnp.concatenate([real_a.ravel(), real_b.ravel()]),
                  jnp.concatenate([gen_a.ravel(), gen_b.ravel()]))

  (d_loss, (real_out, fake_out)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(state.d_params)
  d_grads = _pmean(d_grads, axis_name)
  updates, d_opt_state = state.d_tx.update(d_grads, state.d_opt_state, state.d_params)
  d_params = optax.apply_updates(state.d_params, updates)

  report = (lambda o: jnp.mean(jax.nn.sigmoid(o))) if obj.outputs_are_logits else jnp.mean
  metrics = dict(d_loss=d_loss, g_loss=g_adv, g_total=g_total, d_real=report(real_out),
                 d_fake=report(fake_out), cycle_l1=0.5 * (losses["cycle_a"] + losses["cycle_b"]),
                 identity_l1=0.5 * (losses["identity_a"] + losses["identity_b"]),
                 d_grad_norm=optax.tree.norm(d_grads), g_grad_norm=optax.tree.norm(g_grads),
                 lr_g=g_opt_state.hyperparams["learning_rate"])
  new_state = state.replace(step=state.step + 1, g_params=g_params, d_params=d_params,
                            g_opt_state=g_opt_state, d_opt_state=d_opt_state, pool_a=pool_a, pool_b=pool_b)
  return new_state, _pmean(metrics, axis_name)


def make_train_step(config: Config, source: TranslationBatches, axis_name: str | None = None):
  """``train_step`` with the objective and device axis bound (pure, unjitted)."""
  del source
  return functools.partial(train_step, objective=config.objective, axis_name=axis_name)


# --- samples and evaluation ---------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("apply_fn",))
def _apply(apply_fn, params, x: Array) -> Array:
  return apply_fn({"params": params}, x)


def translate(state: CycleGANState, direction: str, x: np.ndarray, batch_size: int = 100) -> np.ndarray:
  """G (``"a2b"``) or F (``"b2a"``) of ``x``, in batches."""
  params = state.g_params[direction]
  outs = [np.asarray(_apply(state.g_apply, params, jnp.asarray(x[i:i + batch_size])))
          for i in range(0, len(x), batch_size)]
  return np.concatenate(outs)


def write_samples(state: CycleGANState, config: Config, source: TranslationBatches, path: str) -> dict:
  """(A | G(A) | F(G(A))) triplets of held-out A images, then (B | F(B) | G(F(B))); four a row."""
  del config, source
  a, b = np.asarray(state.fixed_a), np.asarray(state.fixed_b)
  g_a, f_b = translate(state, "a2b", a), translate(state, "b2a", b)
  cycled = (translate(state, "b2a", g_a), translate(state, "a2b", f_b))
  p2p.triplet_grid(path, [np.concatenate(c) for c in ((a, b), (g_a, f_b), cycled)])
  return {}


def evaluate(state: CycleGANState, config: Config, source: TranslationBatches) -> dict[str, Any]:
  """Cycle-reconstruction error on held-out images (+ paired metrics of G where the truth is known)."""
  d = source.domains
  n = min(config.num_eval_samples, len(d.eval_a), len(d.eval_b))
  a, b = d.eval_a[:n], d.eval_b[:n]
  g_a, f_b = translate(state, "a2b", a), translate(state, "b2a", b)
  cycle_a = float(np.mean(np.abs(translate(state, "b2a", g_a) - a)))
  cycle_b = float(np.mean(np.abs(translate(state, "a2b", f_b) - b)))
  result: dict[str, Any] = dict(cycle_l1=0.5 * (cycle_a + cycle_b), cycle_l1_a=cycle_a, cycle_l1_b=cycle_b,
                                num_eval_examples=n)
  if d.eval_paired:
    result.update({f"a2b_{k}": v for k, v in p2p.paired_metrics(g_a, b).items()})
  return result
