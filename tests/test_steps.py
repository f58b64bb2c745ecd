"""The pure steps: hand-computed gradients on tiny models, update order, keys, donation, statistics."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan.models.mlp import MLPDiscriminator, MLPGenerator
from jaxgan.state import GANState, make_optimizer
from jaxgan import steps as steps_lib
from jaxgan.steps import StepConfig, d_step, g_step, make_steps, train_step


# A researcher's own tiny models, following the contract G(z, labels, train=), D(x, labels, train=).
class ConstantGenerator(nn.Module):
  """G(z) = b for every z: the fake batch is known exactly, so gradients can be computed by hand."""

  @nn.compact
  def __call__(self, z, labels=None, *, train):
    b = self.param("b", lambda k: jnp.array([0.7], jnp.float32))
    return jnp.broadcast_to(b, (z.shape[0], 1)) + 0.0 * z[:, :1]


class LinearDiscriminator(nn.Module):
  """D(x) = w x + c (a logit)."""

  @nn.compact
  def __call__(self, x, labels=None, *, train):
    w = self.param("w", lambda k: jnp.array(0.5, jnp.float32))
    c = self.param("c", lambda k: jnp.array(-0.2, jnp.float32))
    return w * x[:, 0] + c


def _tiny_state(lr):
  return GANState.create(generator=ConstantGenerator(), discriminator=LinearDiscriminator(),
                         g_tx=optax.sgd(lr), d_tx=optax.sgd(lr), key=jax.random.PRNGKey(0), latent_dim=3,
                         d_input=jnp.zeros((4, 1)))


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def test_d_then_g_step_match_hand_computed_sgd_updates_and_read_updated_d():
  lr = 0.1
  real = np.array([[1.0], [2.0], [-0.5], [0.25]], np.float32)
  config = StepConfig(objective="nonsaturating", latent_dim=3)
  steps = make_steps(config)  # a researcher's own models through the library's jitted steps
  state, d_metrics = steps.d_step(_tiny_state(lr), {"image": jnp.asarray(real)})
  # D step by hand: L = mean softplus(-(w x + c)) + softplus(w b + c).
  w, c, b = 0.5, -0.2, 0.7
  r = w * real[:, 0] + c
  f = w * b + c
  dw = np.mean(-_sigmoid(-r) * real[:, 0]) + _sigmoid(f) * b
  dc = np.mean(-_sigmoid(-r)) + _sigmoid(f)
  w1, c1 = w - lr * dw, c - lr * dc
  np.testing.assert_allclose(state.d_params["w"], w1, rtol=1e-5)
  np.testing.assert_allclose(state.d_params["c"], c1, rtol=1e-5)
  np.testing.assert_allclose(state.g_params["b"], [b])  # the D step leaves G alone
  np.testing.assert_allclose(d_metrics["d_real"], np.mean(_sigmoid(r)), rtol=1e-5)
  np.testing.assert_allclose(d_metrics["d_fake"], _sigmoid(f), rtol=1e-5)
  np.testing.assert_allclose(d_metrics["d_grad_norm"], np.hypot(dw, dc), rtol=1e-5)
  # G step by hand, through D's *updated* params: L = softplus(-(w1 b + c1)); dL/db = -sigmoid(-f1) w1.
  state, g_metrics = steps.g_step(state, {"image": jnp.asarray(real)})
  f1 = w1 * b + c1
  np.testing.assert_allclose(state.g_params["b"], [b - lr * (-_sigmoid(-f1) * w1)], rtol=1e-5)
  np.testing.assert_allclose(g_metrics["g_loss"], np.log1p(np.exp(-f1)), rtol=1e-5)
  assert int(state.step) == 1 and int(state.d_updates) == 1


def test_saturating_g_step_matches_hand_computed_update():
  lr = 0.5
  state = _tiny_state(lr)
  config = StepConfig(objective="minimax", latent_dim=3)
  state, _ = jax.jit(lambda s, b: g_step(s, b, config=config))(state, {"image": jnp.zeros((4, 1))})
  # L = log(1 - sigmoid(w b + c)) = -softplus(w b + c); dL/db = -sigmoid(w b + c) w.
  f = 0.5 * 0.7 - 0.2
  np.testing.assert_allclose(state.g_params["b"], [0.7 - lr * (-_sigmoid(f) * 0.5)], rtol=1e-5)


def _mlp_state(objective="nonsaturating", pack=1, hparams=None, seed=0):
  return GANState.create(
      generator=MLPGenerator(hidden=(16, 16)), discriminator=MLPDiscriminator(hidden=(16, 16)),
      g_tx=make_optimizer("adam", learning_rate=1e-3), d_tx=make_optimizer("adam", learning_rate=1e-3),
      key=jax.random.PRNGKey(seed), latent_dim=4, d_input=jnp.zeros((1, 2 * pack)), hparams=hparams)


def _batches(n_critic, batch=32, seed=1):
  return {"image": jax.random.normal(jax.random.PRNGKey(seed), (n_critic, batch, 2))}


def test_train_step_runs_n_critic_d_updates_then_one_g_update():
  config = StepConfig(objective="wgan_gp", latent_dim=4, n_critic=3, gradient_penalty=True)
  state, metrics = make_steps(config).train_step(_mlp_state(hparams={"gp_weight": 10.0}), _batches(3))
  assert int(state.d_updates) == 3 and int(state.step) == 1
  for name in ("d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm", "gradient_penalty"):
    assert name in metrics and np.isfinite(metrics[name]), name


def test_train_step_equals_d_steps_then_g_step():
  config = StepConfig(objective="hinge", latent_dim=4, n_critic=2)
  batches = _batches(2)
  fused, _ = jax.jit(lambda s, b: train_step(s, b, config=config))(_mlp_state(), batches)
  state = _mlp_state()
  one_d = jax.jit(lambda s, b: d_step(s, b, config=config))
  one_g = jax.jit(lambda s, b: g_step(s, b, config=config))
  state, _ = one_d(state, {"image": batches["image"][0]})
  state, _ = one_d(state, {"image": batches["image"][1]})
  state, _ = one_g(state, {"image": batches["image"][1]})
  for a, b in zip(jax.tree_util.tree_leaves(fused), jax.tree_util.tree_leaves(state)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


class BatchNormG(nn.Module):
  """A generator with BatchNorm, so the statistics' path through the steps is exercised too."""

  @nn.compact
  def __call__(self, z, labels=None, *, train):
    x = nn.BatchNorm(use_running_average=not train, momentum=0.5)(nn.Dense(8)(z))
    return nn.Dense(2)(nn.relu(x))


@pytest.mark.parametrize("n_critic", [1, 2])
def test_reuse_fake_equals_g_update_on_the_last_d_updates_latents(n_critic):
  # reuse_fake pulls the G gradient back through a VJP saved during the D update. Reference: the plain
  # D updates, then G's loss differentiated through a fresh G pass on the *D update's* latents.
  config = StepConfig(objective="nonsaturating", latent_dim=4, n_critic=n_critic, reuse_fake=True)
  make = lambda: GANState.create(  # noqa: E731
      generator=BatchNormG(), discriminator=MLPDiscriminator(hidden=(16, 16)), g_tx=optax.sgd(0.1),
      d_tx=optax.sgd(0.1), key=jax.random.PRNGKey(3), latent_dim=4, d_input=jnp.zeros((1, 2)))
  batches = _batches(n_critic)
  fused, metrics = jax.jit(lambda s, b: train_step(s, b, config=config))(make(), batches)

  @jax.jit
  def reference(state, batches):
    for i in range(n_critic - 1):
      state, _ = d_step(state, {"image": batches["image"][i]}, config=config)
    last = {"image": batches["image"][-1]}
    key = steps_lib.player_key(state, steps_lib.KEY_D, state.d_updates)
    z, _ = steps_lib._sample_latents(jax.random.split(key, 4)[0], 32, config)
    state, _ = d_step(state, last, config=config)

    def loss(g_params):
      fake, _ = steps_lib._generate(state, z, None, g_params)
      return steps_lib._g_loss_of_fake(state, last, None, config)(fake)

    (g_loss, d_stats), grads = jax.value_and_grad(loss, has_aux=True)(state.g_params)
    g_params = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, state.g_params, grads)
    return state.replace(g_params=g_params, step=state.step + 1, d_batch_stats=d_stats,
                         g_ema_params=steps_lib.regularizers.ema_update(state.g_ema_params, g_params, 0.999),
                         g_opt_state=fused.g_opt_state), g_loss

  expected, g_loss = reference(make(), batches)
  np.testing.assert_allclose(metrics["g_loss"], g_loss, rtol=1e-6)
  for a, b in zip(jax.tree_util.tree_leaves(fused), jax.tree_util.tree_leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  # G ran once in the fused step: its BatchNorm statistics moved once (momentum 0.5), as in the D update.
  assert int(fused.d_updates) == n_critic and int(fused.step) == 1


def test_reuse_fake_changes_the_g_update_only_through_the_latents():
  # Guard against the test above passing vacuously: without reuse, G's update (fresh latents, second G
  # pass) differs.
  base = dict(objective="nonsaturating", latent_dim=4)
  run = lambda reuse: jax.jit(lambda s, b: train_step(  # noqa: E731
      s, b, config=StepConfig(**base, reuse_fake=reuse)))(_mlp_state(), _batches(1))[0]
  plain, reused = run(False), run(True)
  np.testing.assert_array_equal(jax.tree_util.tree_leaves(plain.d_params)[0],
                                jax.tree_util.tree_leaves(reused.d_params)[0])
  assert not np.allclose(jax.tree_util.tree_leaves(plain.g_params)[0],
                         jax.tree_util.tree_leaves(reused.g_params)[0])


def test_same_seed_same_result_and_different_seed_different_result():
  config = StepConfig(objective="nonsaturating", latent_dim=4)
  run = lambda seed: make_steps(config).train_step(_mlp_state(seed=seed), _batches(1))[0].g_params  # noqa: E731
  a, b, c = run(0), run(0), run(1)
  assert all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))
  assert not all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(c)))


def test_d_and_g_updates_use_different_latents():
  # With a generator that returns z itself, D sees exactly the latents of its update; compare D and G draws.
  class IdentityG(nn.Module):
    @nn.compact
    def __call__(self, z, labels=None, *, train):
      return z + 0.0 * self.param("unused", nn.initializers.zeros, (1,))

  seen = {}

  class SpyD(nn.Module):
    @nn.compact
    def __call__(self, x, labels=None, *, train):
      return jnp.sum(x, axis=1) * self.param("w", nn.initializers.ones, ())

  state = GANState.create(generator=IdentityG(), discriminator=SpyD(), g_tx=optax.sgd(0.0),
                          d_tx=optax.sgd(0.0), key=jax.random.PRNGKey(0), latent_dim=2,
                          d_input=jnp.zeros((1, 2)))
  config = StepConfig(objective="wgan", latent_dim=2)
  _, d_metrics = d_step(state, {"image": jnp.zeros((64, 2))}, config=config)
  _, g_metrics = g_step(state, {"image": jnp.zeros((64, 2))}, config=config)
  # d_fake = mean(sum(z_D)); g_loss = -mean(sum(z_G)): equal only if the same latents were drawn.
  seen["d"], seen["g"] = float(d_metrics["d_fake"]), float(-g_metrics["g_loss"])
  assert abs(seen["d"] - seen["g"]) > 1e-4


def test_weight_clipping_keeps_every_d_weight_in_range_after_a_step():
  config = StepConfig(objective="wgan", latent_dim=4, weight_clipping=True)
  state = _mlp_state(objective="wgan", hparams={"clip_value": 0.01})
  for _ in range(3):
    state, _ = make_steps(config).d_step(state, {"image": _batches(1)["image"][0] * 5})
  leaves = jax.tree_util.tree_leaves(state.d_params)
  assert all(float(jnp.max(jnp.abs(x))) <= 0.01 for x in leaves)
  assert any(float(jnp.max(jnp.abs(x))) == pytest.approx(0.01) for x in leaves)  # clipping was active


def test_packed_discriminator_sees_k_samples_per_input():
  config = StepConfig(objective="nonsaturating", latent_dim=4, pack=4)
  state = _mlp_state(pack=4)
  assert state.d_params["Dense_0"]["kernel"].shape[0] == 8  # 4 samples x 2 dims
  state, metrics = make_steps(config).train_step(state, _batches(1))
  assert np.isfinite(metrics["d_loss"])


def test_state_is_donated():
  config = StepConfig(objective="nonsaturating", latent_dim=4)
  state = _mlp_state()
  leaf = state.d_params["Dense_0"]["kernel"]
  make_steps(config).train_step(state, _batches(1))
  assert leaf.is_deleted()


class BNDiscriminator(nn.Module):
  @nn.compact
  def __call__(self, x, labels=None, *, train):
    x = nn.Dense(8)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    return nn.Dense(1)(nn.relu(x))[:, 0]


class Constant2DGenerator(nn.Module):
  @nn.compact
  def __call__(self, z, labels=None, *, train):
    b = self.param("b", lambda k: jnp.array([-1.0, 2.0], jnp.float32))
    return jnp.broadcast_to(b, (z.shape[0], 2)) + 0.0 * z[:, :2]


def test_batchnorm_statistics_are_updated_functionally_and_real_fake_kept_apart():
  state = GANState.create(generator=Constant2DGenerator(), discriminator=BNDiscriminator(),
                          g_tx=optax.sgd(0.0), d_tx=optax.sgd(0.0), key=jax.random.PRNGKey(0),
                          latent_dim=4, d_input=jnp.zeros((1, 2)))
  real = jnp.full((16, 2), 3.0)
  config = StepConfig(objective="nonsaturating", latent_dim=4)
  new, _ = jax.jit(lambda s, b: d_step(s, b, config=config))(state, {"image": real})
  after = np.asarray(new.d_batch_stats["BatchNorm_0"]["mean"])
  kernel, bias = np.asarray(state.d_params["Dense_0"]["kernel"]), np.asarray(state.d_params["Dense_0"]["bias"])
  mu_real = np.asarray(real[0]) @ kernel + bias
  mu_fake = np.array([-1.0, 2.0]) @ kernel + bias
  # Separate passes, real then fake, momentum 0.9 from a zero mean: 0.9 * (0.1 mu_real) + 0.1 mu_fake.
  np.testing.assert_allclose(after, 0.09 * mu_real + 0.1 * mu_fake, rtol=1e-5, atol=1e-6)
  # One mixed pass would have given 0.1 * (mu_real + mu_fake) / 2; make sure the test can tell.
  assert not np.allclose(after, 0.05 * (mu_real + mu_fake), rtol=1e-3)
  assert np.allclose(state.d_batch_stats["BatchNorm_0"]["mean"], 0.0)  # the input state is untouched
