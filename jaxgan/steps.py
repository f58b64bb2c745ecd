"""Pure training steps: ``d_step``, ``g_step`` and ``train_step`` (n_critic D steps, then one G step).

All three are functions ``(state, batch, *, config) -> (state, metrics)`` with no side effects; ``jit``
them with the state donated (``make_steps`` does) or ``pmap`` them through ``jaxgan.parallel``.
``batch`` is ``{"image": [B, ...] float32, "label": [B] int32 (conditional models only)}``; for
``train_step`` every leaf has a leading ``n_critic`` axis (one real batch per critic update).

Update order (alternating, not simultaneous): each D update samples fresh latents from G's current
parameters; the G update then reads D's freshly updated parameters (Goodfellow et al. 2014,
Algorithm 1). When D has statistics (BatchNorm, spectral norm), real and fake batches go through D in
two separate calls, real first, so BatchNorm statistics never mix real and fake examples (as in
pytorch/examples' DCGAN); D's running statistics are threaded from one call to the next. A stateless D
(the MLP, the WGAN-GP ResNet critic) sees real and fake concatenated in one call: the same outputs,
one pass. G's samples are ``stop_gradient``-ed in the D step.

Randomness: the D update with counter n uses ``fold_in(fold_in(key, KEY_D), n)``, the G update at
step t ``fold_in(fold_in(key, KEY_G), t)``; so D and G never share a key and a resumed run draws what
the uninterrupted one drew. Under ``pmap`` every device draws the *global* batch of latents and takes
its slice, so an n-device run sees exactly the latents of a 1-device run with the same global batch.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
from jax import lax

from jaxgan import regularizers
from jaxgan.data.device import device_slice
from jaxgan.objectives import get_objective
from jaxgan.state import KEY_D, KEY_G, GANState, player_key

Array = jax.Array
Batch = dict[str, Array]
Metrics = dict[str, Array]


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """The static structure of a step (hashable; weights live in ``GANState.hparams``).

  Attributes:
    objective: a key of ``jaxgan.objectives.OBJECTIVES``.
    latent_dim: size of z ~ N(0, I).
    num_classes: number of classes for conditional models, None for unconditional ones.
    n_critic: D updates per G update (``train_step`` only).
    pack: PacGAN packing degree (1 = off).
    gradient_penalty / r1 / dragan: add these penalties to D's loss (weights in hparams).
    weight_clipping: clip D's params to [-clip_value, clip_value] after each D update (WGAN).
    instance_noise_steps: anneal instance noise to zero over this many steps (0 = off).
    ema: update the EMA of G's params after each G update.
    axis_name: the pmap axis to average gradients, statistics and metrics over (None = one device).
    reuse_fake: ``train_step``'s G update reuses the last D update's latents and generated batch, pulled back
      through one saved VJP of G, instead of drawing fresh latents and running G again (what
      pytorch/examples' DCGAN does). Saves one G forward per iteration (~7% of a 64x64 DCGAN step) and
      updates G's BatchNorm statistics once per iteration instead of twice. ``d_step``/``g_step`` ignore it.
    objectives: if given, the step computes ``objectives[hparams["objective_index"]]`` (a ``lax.switch``):
      one compiled step serves runs of different objectives, so a vmapped sweep can stack them (under
      ``vmap`` every branch is computed and the member's selected). ``objective`` is then ignored.
  """

  objective: str = "nonsaturating"
  latent_dim: int = 100
  num_classes: int | None = None
  n_critic: int = 1
  pack: int = 1
  gradient_penalty: bool = False
  r1: bool = False
  dragan: bool = False
  weight_clipping: bool = False
  instance_noise_steps: int = 0
  ema: bool = True
  axis_name: str | None = None
  objectives: tuple[str, ...] = ()
  reuse_fake: bool = False

  def __post_init__(self):
    for name in (self.objective,) + tuple(self.objectives):
      get_objective(name)  # raises with the valid names
    if self.n_critic < 1:
      raise ValueError(f"n_critic must be >= 1, got {self.n_critic}")
    if self.pack < 1:
      raise ValueError(f"pack must be >= 1, got {self.pack}")
    if self.pack > 1 and self.num_classes:
      raise ValueError("pack > 1 cannot be combined with a conditional discriminator")


# --- helpers -----------------------------------------------------------------------------------------


def _draw_global(sample: Callable[[Array, tuple[int, ...]], Array], key: Array,
                 local_shape: tuple[int, ...], axis_name: str | None) -> Array:
  """Draws this device's slice of a global random batch (so results do not depend on device count)."""
  if axis_name is None:
    return sample(key, local_shape)
  full = sample(key, (lax.axis_size(axis_name) * local_shape[0],) + tuple(local_shape[1:]))
  return device_slice(full, 0, axis_name)


def _normal(key, shape):
  return jax.random.normal(key, shape, jnp.float32)


def _mean_over_devices(tree, axis_name: str | None):
  return tree if axis_name is None else lax.pmean(tree, axis_name)


def _sample_latents(key: Array, batch_size: int, config: StepConfig) -> tuple[Array, Array | None]:
  z_key, label_key = jax.random.split(key)
  z = _draw_global(_normal, z_key, (batch_size, config.latent_dim), config.axis_name)
  labels = None
  if config.num_classes:
    labels = _draw_global(
        lambda k, s: jax.random.randint(k, s, 0, config.num_classes, jnp.int32), label_key,
        (batch_size,), config.axis_name)
  return z, labels


def _generate(state: GANState, z: Array, labels: Array | None, g_params) -> tuple[Array, Any]:
  """G in training mode (batch statistics); returns samples and G's updated statistics."""
  fake, mutated = state.g_apply(
      {"params": g_params, "batch_stats": state.g_batch_stats}, z, labels, train=True,
      mutable=["batch_stats"])
  return fake, mutated.get("batch_stats", state.g_batch_stats)


def _discriminate(state: GANState, d_params, stats, x: Array, labels: Array | None) -> tuple[Array, Any]:
  """D in training mode on one (already noised and packed) batch; returns outputs [B] and new stats."""
  out, mutated = state.d_apply(
      {"params": d_params, "batch_stats": stats}, x, labels, train=True, mutable=["batch_stats"])
  return out, mutated.get("batch_stats", stats)


def _d_inputs(x: Array, key: Array, state: GANState, config: StepConfig) -> Array:
  """Instance noise (if on), then PacGAN packing: what D actually sees."""
  if config.instance_noise_steps:
    std = regularizers.instance_noise_std(
        state.step, initial_std=state.hparams["noise_std"], anneal_steps=config.instance_noise_steps)
    noise = _draw_global(_normal, key, x.shape, config.axis_name)
    x = x + std * noise
  return regularizers.pack(x, config.pack)


def _d_report(outputs: Array, outputs_are_logits: bool) -> Array:
  """Mean D output as reported in metrics: P(real) for logit objectives, raw critic value otherwise."""
  return jnp.mean(jax.nn.sigmoid(outputs) if outputs_are_logits else outputs)


class _Losses(NamedTuple):
  """The objective(s) of a step as functions of D's outputs and the hparams."""
  d_loss: Callable[..., Array]  # (real, fake, hparams) -> scalar
  g_loss: Callable[..., Array]  # (fake, real | None) -> scalar
  report: Callable[[Array], Array]  # D outputs -> the D(x) / D(G(z)) metric
  g_needs_real: bool


def _losses(config: StepConfig, hparams: dict[str, Array]) -> _Losses:
  """The step's objective, or a ``lax.switch`` over ``config.objectives`` by ``hparams["objective_index"]``."""
  names = tuple(config.objectives) or (config.objective,)
  objs = [get_objective(n) for n in names]
  d_fns = [lambda real, fake, o=o: o.d_loss(real=real, fake=fake, **{k: hparams[k] for k in o.d_hparams})
           for o in objs]
  g_fns = [lambda fake, real, o=o: o.g_loss(fake=fake, real=real) for o in objs]
  r_fns = [lambda out, o=o: _d_report(out, o.outputs_are_logits) for o in objs]
  g_needs_real = any(o.g_needs_real for o in objs)
  if len(objs) == 1:
    return _Losses(d_fns[0], g_fns[0], r_fns[0], g_needs_real)
  index = jnp.asarray(hparams["objective_index"]).astype(jnp.int32)
  return _Losses(
      d_loss=lambda real, fake: lax.switch(index, d_fns, real, fake),
      g_loss=lambda fake, real: lax.switch(index, g_fns, fake, real),
      report=lambda out: lax.switch(index, r_fns, out),
      g_needs_real=g_needs_real)


# --- the steps -------------------------------------------------------------------------------------


def d_step(state: GANState, batch: Batch, *, config: StepConfig) -> tuple[GANState, Metrics]:
  """One discriminator update on a real batch and a fresh fake batch (G's samples detached)."""
  z, fake_labels = _sample_latents(_d_keys(state)[0], batch["image"].shape[0], config)
  fake, g_batch_stats = _generate(state, z, fake_labels, state.g_params)
  return _d_update(state, batch, lax.stop_gradient(fake), fake_labels, g_batch_stats, config=config)


def _d_keys(state: GANState) -> Array:
  """The 4 keys of D update number ``state.d_updates``: latents, real noise, fake noise, penalties."""
  return jax.random.split(player_key(state, KEY_D, state.d_updates), 4)


def _d_update(state: GANState, batch: Batch, fake: Array, fake_labels: Array | None, g_batch_stats: Any, *,
              config: StepConfig) -> tuple[GANState, Metrics]:
  """D's update given G's (detached) samples and G's statistics after producing them."""
  hp = state.hparams
  losses = _losses(config, hp)
  real = batch["image"]
  chex.assert_rank(real, {2, 3, 4})
  chex.assert_equal_shape([real, fake])
  real_labels = batch["label"] if config.num_classes else None
  _, real_noise_key, fake_noise_key, penalty_key = _d_keys(state)
  real_in = _d_inputs(real, real_noise_key, state, config)
  fake_in = _d_inputs(fake, fake_noise_key, state, config)

  def loss_fn(d_params):
    if jax.tree_util.tree_leaves(state.d_batch_stats):
      # Statistics (BatchNorm, spectral-norm vectors): two passes, real first, so they never mix.
      real_out, stats = _discriminate(state, d_params, state.d_batch_stats, real_in, real_labels)
      fake_out, stats = _discriminate(state, d_params, stats, fake_in, fake_labels)
    else:
      # A stateless D gives the same outputs on the concatenated batch: one pass, bigger matmuls.
      labels = None if real_labels is None else jnp.concatenate([real_labels, fake_labels])
      both, stats = _discriminate(state, d_params, state.d_batch_stats,
                                  jnp.concatenate([real_in, fake_in]), labels)
      real_out, fake_out = both[:real_in.shape[0]], both[real_in.shape[0]:]
    adversarial = losses.d_loss(real_out, fake_out)
    aux = {"d_loss": adversarial, "d_real": losses.report(real_out), "d_fake": losses.report(fake_out)}
    total = adversarial
    # Penalties see D with the statistics after both passes; their own statistic updates are dropped.
    d_fn = lambda labels: (lambda x: _discriminate(state, d_params, stats, x, labels)[0])  # noqa: E731
    if config.gradient_penalty:
      gp = regularizers.gradient_penalty(d_fn(real_labels), real_in, fake_in, penalty_key)
      aux["gradient_penalty"] = gp
      total = total + hp["gp_weight"] * gp
    if config.r1:
      r1 = regularizers.r1_penalty(d_fn(real_labels), real_in)
      aux["r1_penalty"] = r1
      total = total + 0.5 * hp["r1_gamma"] * r1
    if config.dragan:
      dragan = regularizers.dragan_penalty(d_fn(real_labels), real_in, jax.random.fold_in(penalty_key, 1))
      aux["dragan_penalty"] = dragan
      total = total + hp["dragan_weight"] * dragan
    return total, (stats, aux)

  grads, (d_batch_stats, metrics) = jax.grad(loss_fn, has_aux=True)(state.d_params)
  grads = _mean_over_devices(grads, config.axis_name)
  updates, d_opt_state = state.d_tx.update(grads, state.d_opt_state, state.d_params)
  d_params = optax.apply_updates(state.d_params, updates)
  if config.weight_clipping:
    d_params = regularizers.clip_weights(d_params, hp["clip_value"])
  metrics["d_grad_norm"] = optax.tree.norm(grads)
  new_state = state.replace(
      d_params=d_params,
      d_opt_state=d_opt_state,
      d_batch_stats=_mean_over_devices(d_batch_stats, config.axis_name),
      g_batch_stats=_mean_over_devices(g_batch_stats, config.axis_name),
      d_updates=state.d_updates + 1,
  )
  return new_state, _mean_over_devices(metrics, config.axis_name)


def g_step(state: GANState, batch: Batch, *, config: StepConfig) -> tuple[GANState, Metrics]:
  """One generator update through D's current parameters; then the EMA of G and step + 1.

  ``batch`` (real data) is read only by objectives whose G loss needs D's outputs on real data
  (relativistic ones); it also sets the batch size.
  """
  key = player_key(state, KEY_G, state.step)
  z, fake_labels = _sample_latents(jax.random.split(key, 3)[0], batch["image"].shape[0], config)
  g_loss_of_fake = _g_loss_of_fake(state, batch, fake_labels, config)

  def loss_fn(g_params):
    fake, g_stats = _generate(state, z, fake_labels, g_params)
    loss, d_stats = g_loss_of_fake(fake)
    return loss, (g_stats, d_stats, loss)

  grads, (g_batch_stats, d_batch_stats, g_loss) = jax.grad(loss_fn, has_aux=True)(state.g_params)
  return _g_update(state, grads, g_batch_stats, d_batch_stats, g_loss, config=config)


def _g_loss_of_fake(state: GANState, batch: Batch, fake_labels: Array | None,
                    config: StepConfig) -> Callable[[Array], tuple[Array, Any]]:
  """G's adversarial loss as a function of its samples: fake -> (loss, D's statistics after the pass)."""
  losses = _losses(config, state.hparams)
  key = player_key(state, KEY_G, state.step)
  _, real_noise_key, fake_noise_key = jax.random.split(key, 3)
  d_stats = state.d_batch_stats
  real_out = None
  if losses.g_needs_real:
    real_labels = batch["label"] if config.num_classes else None
    real_in = _d_inputs(batch["image"], real_noise_key, state, config)
    real_out, d_stats = _discriminate(state, state.d_params, d_stats, real_in, real_labels)

  def loss_of_fake(fake: Array) -> tuple[Array, Any]:
    fake_in = _d_inputs(fake, fake_noise_key, state, config)
    fake_out, new_d_stats = _discriminate(state, state.d_params, d_stats, fake_in, fake_labels)
    return losses.g_loss(fake_out, real_out), new_d_stats

  return loss_of_fake


def _g_update(state: GANState, grads: Any, g_batch_stats: Any, d_batch_stats: Any, g_loss: Array, *,
              config: StepConfig) -> tuple[GANState, Metrics]:
  """Applies G's gradients (averaged over devices), updates the EMA and counts the step."""
  grads = _mean_over_devices(grads, config.axis_name)
  updates, g_opt_state = state.g_tx.update(grads, state.g_opt_state, state.g_params)
  g_params = optax.apply_updates(state.g_params, updates)
  g_ema_params = state.g_ema_params
  if config.ema:
    g_ema_params = regularizers.ema_update(g_ema_params, g_params, state.hparams["ema_decay"])
  metrics = {"g_loss": g_loss, "g_grad_norm": optax.tree.norm(grads)}
  new_state = state.replace(
      g_params=g_params,
      g_opt_state=g_opt_state,
      g_ema_params=g_ema_params,
      g_batch_stats=_mean_over_devices(g_batch_stats, config.axis_name),
      d_batch_stats=_mean_over_devices(d_batch_stats, config.axis_name),
      step=state.step + 1,
  )
  return new_state, _mean_over_devices(metrics, config.axis_name)


def _d_then_g_reusing_fake(state: GANState, batch: Batch, *,
                           config: StepConfig) -> tuple[GANState, Metrics, Metrics]:
  """A D update, then a G update on the same generated batch (``StepConfig.reuse_fake``).

  G runs once, under ``jax.vjp``: D trains on the detached samples, then D's updated loss gradient with
  respect to the samples is pulled back through the saved VJP. The G gradient equals ``g_step``'s with
  the D update's latents (tested against it).
  """
  z, fake_labels = _sample_latents(_d_keys(state)[0], batch["image"].shape[0], config)
  fake, g_vjp, g_batch_stats = jax.vjp(lambda p: _generate(state, z, fake_labels, p), state.g_params,
                                       has_aux=True)
  state, d_metrics = _d_update(state, batch, lax.stop_gradient(fake), fake_labels, g_batch_stats,
                               config=config)
  loss_of_fake = _g_loss_of_fake(state, batch, fake_labels, config)

  def loss_fn(f: Array) -> tuple[Array, tuple[Array, Any]]:
    loss, d_stats = loss_of_fake(f)
    return loss, (loss, d_stats)

  cotangent, (g_loss, d_batch_stats) = jax.grad(loss_fn, has_aux=True)(fake)
  (grads,) = g_vjp(cotangent)
  state, g_metrics = _g_update(state, grads, state.g_batch_stats, d_batch_stats, g_loss, config=config)
  return state, d_metrics, g_metrics


def train_step(state: GANState, batches: Batch, *, config: StepConfig) -> tuple[GANState, Metrics]:
  """``n_critic`` D updates (one per slice of the batches' leading axis), then one G update.

  The G update reads the last real batch (only relativistic objectives use it). D metrics are averaged
  over the critic updates.
  """
  chex.assert_tree_shape_prefix(batches, (config.n_critic,))
  # A Python loop, not lax.scan: XLA:CPU runs convolutions inside a while loop ~8x slower than at top level
  # (28x28 DCGAN, batch 64: 5.5 s vs 0.68 s per step), and in jax 0.10.2 even ``scan(unroll=True)`` leaves
  # a one-trip while loop in the HLO. n_critic is small, so the unrolled program stays small.
  d_metrics = []
  num_plain = config.n_critic - 1 if config.reuse_fake else config.n_critic
  for i in range(num_plain):
    state, m = d_step(state, jax.tree_util.tree_map(lambda x: x[i], batches), config=config)  # noqa: B023
    d_metrics.append(m)
  last_batch = jax.tree_util.tree_map(lambda x: x[-1], batches)
  if config.reuse_fake:
    state, m, g_metrics = _d_then_g_reusing_fake(state, last_batch, config=config)
    d_metrics.append(m)
  else:
    state, g_metrics = g_step(state, last_batch, config=config)
  metrics = {k: jnp.mean(jnp.stack([m[k] for m in d_metrics])) for k in d_metrics[0]}
  metrics.update(g_metrics)
  return state, metrics


class Steps(NamedTuple):
  """The three steps jitted with the state donated."""
  d_step: Callable[[GANState, Batch], tuple[GANState, Metrics]]
  g_step: Callable[[GANState, Batch], tuple[GANState, Metrics]]
  train_step: Callable[[GANState, Batch], tuple[GANState, Metrics]]


def make_steps(config: StepConfig) -> Steps:
  """``jax.jit``-compiled steps for one device, donating the state's buffers."""
  jit = lambda fn: jax.jit(functools.partial(fn, config=config), donate_argnums=0)  # noqa: E731
  return Steps(d_step=jit(d_step), g_step=jit(g_step), train_step=jit(train_step))
