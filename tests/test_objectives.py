"""Losses against closed forms, gradient behaviour, and sign conventions of every registered objective."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.spatial.distance import jensenshannon

from jaxgan import objectives
from jaxgan.objectives import OBJECTIVES


def _samples(support, counts):
  """Samples whose empirical distribution is exactly counts / sum(counts) over ``support``."""
  return np.repeat(np.asarray(support, np.float64), counts)


def test_minimax_value_at_optimal_discriminator_is_minus_log4_when_pg_equals_pdata():
  # D*(x) = p_data / (p_data + p_g) = 1/2 everywhere, i.e. logit 0; V(D*, G) = -log 4 (Goodfellow Thm 1).
  real = jnp.zeros(16)
  fake = jnp.zeros(16)
  value = -jax.jit(objectives.minimax_d_loss)(real=real, fake=fake)
  np.testing.assert_allclose(value, -np.log(4.0), rtol=1e-6)


def test_minimax_value_at_optimal_discriminator_is_minus_log4_plus_2jsd():
  # Discrete p_data, p_g on 4 points; samples represent each distribution exactly.
  p_data = np.array([4, 2, 1, 1]) / 8
  p_g = np.array([1, 1, 2, 4]) / 8
  logit = np.log(p_data) - np.log(p_g)  # logit of D* = p_data / (p_data + p_g)
  real = _samples(logit, (p_data * 8).astype(int))
  fake = _samples(logit, (p_g * 8).astype(int))
  value = -jax.jit(objectives.minimax_d_loss)(real=jnp.asarray(real, jnp.float32),
                                              fake=jnp.asarray(fake, jnp.float32))
  jsd = jensenshannon(p_data, p_g) ** 2  # scipy returns sqrt(JSD) (natural log)
  np.testing.assert_allclose(value, -np.log(4.0) + 2 * jsd, rtol=1e-5)


def test_optimal_discriminator_minimises_the_minimax_d_loss():
  p_data = np.array([4, 2, 1, 1]) / 8
  p_g = np.array([1, 1, 2, 4]) / 8
  counts_r, counts_f = (p_data * 8).astype(int), (p_g * 8).astype(int)

  def loss(logits):
    real = jnp.repeat(logits, counts_r, total_repeat_length=8)
    fake = jnp.repeat(logits, counts_f, total_repeat_length=8)
    return objectives.minimax_d_loss(real=real, fake=fake)

  optimal = jnp.asarray(np.log(p_data / p_g), jnp.float32)
  grad = jax.jit(jax.grad(loss))(optimal)
  np.testing.assert_allclose(grad, 0.0, atol=1e-6)
  assert loss(optimal) < loss(optimal + 0.1) and loss(optimal) < loss(optimal - 0.1)


def test_saturating_generator_gradient_vanishes_where_nonsaturating_does_not():
  grad = lambda fn: jax.jit(jax.grad(lambda f: fn(fake=f)))  # noqa: E731
  for logit in (-8.0, -12.0, -16.0):
    fake = jnp.array([logit])  # D(G(z)) = sigmoid(logit) -> 0
    saturating = float(grad(objectives.minimax_g_loss)(fake)[0])
    nonsaturating = float(grad(objectives.nonsaturating_g_loss)(fake)[0])
    assert abs(saturating) < 1e-3, saturating
    np.testing.assert_allclose(abs(saturating), jax.nn.sigmoid(logit), rtol=1e-4)
    assert abs(nonsaturating) > 0.999, nonsaturating


def test_label_smoothing_moves_the_optimum_to_the_soft_label():
  loss = lambda r: objectives.minimax_d_loss(real=r, fake=jnp.zeros(1), real_label=0.9)  # noqa: E731
  grad = jax.jit(jax.grad(loss))(jnp.array([np.log(9.0)], jnp.float32))  # sigmoid(log 9) = 0.9
  np.testing.assert_allclose(grad, 0.0, atol=1e-6)


def test_closed_form_values():
  r = jnp.array([2.0, -1.0])
  f = jnp.array([0.5, -3.0])
  np.testing.assert_allclose(objectives.wasserstein_d_loss(real=r, fake=f), np.mean(f) - np.mean(r), rtol=1e-6)
  np.testing.assert_allclose(objectives.hinge_d_loss(real=r, fake=f), (0 + 2) / 2 + (1.5 + 0) / 2, rtol=1e-6)
  np.testing.assert_allclose(objectives.lsgan_d_loss(real=r, fake=f),
                             0.5 * np.mean((np.array([2, -1]) - 1.0) ** 2) + 0.5 * np.mean(np.array([0.5, -3]) ** 2))
  np.testing.assert_allclose(objectives.lsgan_g_loss(fake=f), 0.5 * np.mean((np.array([0.5, -3]) - 1) ** 2))
  sp = lambda x: np.log1p(np.exp(x))  # noqa: E731
  np.testing.assert_allclose(objectives.rsgan_d_loss(real=r, fake=f), np.mean(sp(-(r - f))), rtol=1e-6)
  np.testing.assert_allclose(
      objectives.ragan_d_loss(real=r, fake=f),
      np.mean(sp(-(r - np.mean(f)))) + np.mean(sp(f - np.mean(r))), rtol=1e-6)
  energy = lambda x: sp(-np.asarray(x))  # noqa: E731
  np.testing.assert_allclose(objectives.ebgan_d_loss(real=r, fake=f, margin=1.0),
                             np.mean(energy(r)) + np.mean(np.maximum(0, 1.0 - energy(f))), rtol=1e-6)


def test_relativistic_generator_loss_is_discriminator_loss_with_roles_swapped():
  key_r, key_f = jax.random.split(jax.random.PRNGKey(0))
  r, f = jax.random.normal(key_r, (32,)), jax.random.normal(key_f, (32,))
  np.testing.assert_allclose(objectives.rsgan_g_loss(fake=f, real=r), objectives.rsgan_d_loss(real=f, fake=r))
  np.testing.assert_allclose(objectives.ragan_g_loss(fake=f, real=r), objectives.ragan_d_loss(real=f, fake=r),
                             rtol=1e-6)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_every_objective_is_stable_and_has_the_right_signs(name):
  obj = OBJECTIVES[name]
  key_r, key_f = jax.random.split(jax.random.PRNGKey(1))
  # Outputs near 0.5 for both: inside every loss's active region (LSGAN's targets 0/1, the hinge margins).
  real = jax.random.normal(key_r, (64,)) * 0.1 + 0.5
  fake = jax.random.normal(key_f, (64,)) * 0.1 + 0.5
  d_loss = jax.jit(lambda r, f: obj.d_loss(real=r, fake=f))
  g_loss = jax.jit(lambda f, r: obj.g_loss(fake=f, real=r))
  # D wants its outputs high on real and low on fake; G wants them high on fake.
  d_grad_real, d_grad_fake = jax.grad(d_loss, argnums=(0, 1))(real, fake)
  assert jnp.sum(d_grad_real) < 0 and jnp.sum(d_grad_fake) > 0
  assert jnp.sum(jax.grad(g_loss)(fake, real)) < 0
  # Finite (no overflow) for huge outputs, where naive log(sigmoid) would give inf/NaN.
  huge = jnp.array([1e4, -1e4], jnp.float32)
  assert jnp.isfinite(d_loss(huge, -huge)) and jnp.isfinite(g_loss(-huge, huge))
  assert jnp.all(jnp.isfinite(jax.grad(d_loss, argnums=(0, 1))(huge, -huge)[0]))
  check_grads(lambda r, f: obj.d_loss(real=r, fake=f), (real, fake), order=1, modes=["rev"], atol=1e-2, rtol=1e-2)


def test_unknown_objective_lists_valid_names():
  with pytest.raises(ValueError, match="valid: .*nonsaturating"):
    objectives.get_objective("nope")
