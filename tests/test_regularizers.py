"""Penalties against hand-computed values on linear and quadratic critics; clipping, noise, packing, EMA."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import regularizers


def _linear_critic(w, b=0.3):
  return lambda x: x.reshape(x.shape[0], -1) @ w + b


@pytest.mark.parametrize("shape", [(16, 2), (8, 4, 4, 3)])
def test_gradient_penalty_on_a_linear_critic_equals_the_hand_computed_value(shape):
  dim = int(np.prod(shape[1:]))
  w = jnp.arange(1, dim + 1, dtype=jnp.float32) / dim  # any fixed direction
  kr, kf, ke = jax.random.split(jax.random.PRNGKey(0), 3)
  real, fake = jax.random.normal(kr, shape), jax.random.normal(kf, shape)
  gp = jax.jit(lambda r, f, k: regularizers.gradient_penalty(_linear_critic(w), r, f, k))(real, fake, ke)
  # grad_x (w.x + b) = w at every interpolate, so the penalty is (||w|| - 1)^2 exactly.
  expected = (np.linalg.norm(np.asarray(w)) - 1.0) ** 2
  np.testing.assert_allclose(gp, expected, rtol=1e-5)


def test_gradient_penalty_uses_per_example_interpolates():
  # Quadratic critic D(x) = 0.5 ||x||^2 has grad x, so the penalty depends on where each x_hat lies.
  d_fn = lambda x: 0.5 * jnp.sum(jnp.square(x), axis=1)  # noqa: E731
  real = jnp.array([[2.0, 0.0], [0.0, 4.0], [1.0, 1.0]])
  fake = jnp.zeros_like(real)
  key = jax.random.PRNGKey(3)
  gp = jax.jit(lambda k: regularizers.gradient_penalty(d_fn, real, fake, k))(key)
  eps = np.asarray(jax.random.uniform(key, (3, 1)))
  assert len(np.unique(eps)) == 3  # one epsilon per example
  x_hat = eps * np.asarray(real)
  expected = np.mean((np.linalg.norm(x_hat, axis=1) - 1.0) ** 2)
  np.testing.assert_allclose(gp, expected, rtol=1e-5)


def test_r1_and_dragan_on_a_linear_critic():
  w = jnp.array([3.0, 4.0])  # ||w|| = 5
  real = jax.random.normal(jax.random.PRNGKey(1), (32, 2))
  r1 = jax.jit(lambda x: regularizers.r1_penalty(_linear_critic(w), x))(real)
  np.testing.assert_allclose(r1, 25.0, rtol=1e-6)
  dragan = jax.jit(lambda x, k: regularizers.dragan_penalty(_linear_critic(w), x, k))(real, jax.random.PRNGKey(2))
  np.testing.assert_allclose(dragan, 16.0, rtol=1e-5)


def test_clip_weights_projects_every_leaf():
  params = {"a": jnp.array([-1.0, 0.005, 2.0]), "b": {"c": jnp.array([[0.5, -0.02]])}}
  clipped = jax.jit(regularizers.clip_weights)(params, 0.01)
  for leaf in jax.tree_util.tree_leaves(clipped):
    assert jnp.all(jnp.abs(leaf) <= 0.01)
  np.testing.assert_allclose(clipped["a"], [-0.01, 0.005, 0.01])


def test_instance_noise_anneals_linearly_to_zero():
  std = jax.jit(lambda s: regularizers.instance_noise_std(s, initial_std=0.4, anneal_steps=100))
  np.testing.assert_allclose([std(jnp.int32(s)) for s in (0, 50, 100, 150)], [0.4, 0.2, 0.0, 0.0], atol=1e-7)


def test_pack_concatenates_consecutive_samples():
  x = jnp.arange(12, dtype=jnp.float32).reshape(6, 2)
  packed = regularizers.pack(x, 3)
  np.testing.assert_array_equal(packed, [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
  images = jnp.arange(4 * 2 * 2 * 3, dtype=jnp.float32).reshape(4, 2, 2, 3)
  packed = jax.jit(lambda v: regularizers.pack(v, 2))(images)
  assert packed.shape == (2, 2, 2, 6)
  np.testing.assert_array_equal(packed[1, :, :, :3], images[2])
  np.testing.assert_array_equal(packed[1, :, :, 3:], images[3])
  with pytest.raises(ValueError, match="divisible"):
    regularizers.pack(x, 4)


def test_ema_update():
  ema = jax.jit(regularizers.ema_update)({"w": jnp.array(1.0)}, {"w": jnp.array(3.0)}, 0.9)
  np.testing.assert_allclose(ema["w"], 0.9 * 1.0 + 0.1 * 3.0, rtol=1e-6)
