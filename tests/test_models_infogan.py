"""Tests for jaxgan.models.infogan: the MI loss against hand-computed values, codes, shapes, param counts."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.models import infogan

KEY = jax.random.key(0)


def _count(tree) -> int:
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(tree))


def test_mutual_information_loss_matches_hand_computed_value():
  # Example 0: logits (0, ln 3) -> softmax (1/4, 3/4), c1 = 1 -> -log(3/4); example 1: c1 = 0 -> -log(1/4).
  cat_logits = jnp.array([[0.0, math.log(3.0)], [0.0, math.log(3.0)]])
  c1 = jnp.array([1, 0])
  # Continuous: N(c; mean, 1) NLL = 0.5 (c - mean)^2 + 0.5 log(2 pi), summed over the 2 codes.
  cont_mean = jnp.array([[0.5, 0.0], [0.0, 0.0]])
  c_cont = jnp.array([[-0.5, 0.0], [0.0, 1.0]])
  loss, parts = jax.jit(functools.partial(infogan.mutual_information_loss, continuous_factor=0.1))(
      cat_logits, cont_mean, c1, c_cont)
  ce = (math.log(4 / 3) + math.log(4.0)) / 2  # = 0.836988
  nll = ((0.5 * 1.0 + math.log(2 * math.pi)) + (0.5 * 1.0 + math.log(2 * math.pi))) / 2  # = 2.337877
  np.testing.assert_allclose(float(parts["info_ce"]), ce, rtol=1e-6)
  np.testing.assert_allclose(float(parts["info_ce"]), 0.8369882, rtol=1e-6)
  np.testing.assert_allclose(float(parts["info_nll"]), nll, rtol=1e-6)
  np.testing.assert_allclose(float(parts["info_nll"]), 2.3378771, rtol=1e-6)
  np.testing.assert_allclose(float(loss), ce + 0.1 * nll, rtol=1e-6)


def test_mutual_information_loss_gradient_is_softmax_minus_onehot():
  logits = jax.random.normal(KEY, (4, 5))
  c1 = jnp.array([0, 3, 4, 1])
  grad = jax.jit(jax.grad(lambda l: infogan.mutual_information_loss(
      l, jnp.zeros((4, 0)), c1, jnp.zeros((4, 0)))[0]))(logits)
  np.testing.assert_allclose(grad, (jax.nn.softmax(logits) - jax.nn.one_hot(c1, 5)) / 4, atol=1e-6)


def test_perfect_q_reaches_the_entropy_bound():
  # With Q certain and right, -E log Q(c1|x) -> 0, i.e. the MI estimate log K - CE -> H(c1) = log K.
  c1 = jnp.arange(10) % 10
  loss, parts = infogan.mutual_information_loss(100.0 * jax.nn.one_hot(c1, 10), jnp.zeros((10, 0)), c1,
                                                jnp.zeros((10, 0)))
  assert float(parts["info_ce"]) < 1e-6
  assert float(loss) < 1e-6


def test_sample_codes_follow_the_prior_and_layout():
  codes, c1, c_cont = jax.jit(infogan.sample_codes, static_argnums=(1, 2, 3, 4))(KEY, 2000, 5, 10, 2)
  assert codes.shape == (2000, 5 + 10 + 2) and c1.shape == (2000,) and c_cont.shape == (2000, 2)
  np.testing.assert_array_equal(codes[:, 5:15], jax.nn.one_hot(c1, 10))
  np.testing.assert_array_equal(codes[:, 15:], c_cont)
  assert float(c_cont.min()) >= -1.0 and float(c_cont.max()) <= 1.0
  assert abs(float(c_cont.mean())) < 0.05 and abs(float(jnp.var(c_cont)) - 1 / 3) < 0.03
  counts = np.bincount(np.asarray(c1), minlength=10)
  assert counts.min() > 150  # uniform over 10 values: 200 expected each
  assert abs(float(codes[:, :5].std()) - 1.0) < 0.05


@pytest.mark.parametrize("resolution", [28, 32])
def test_shapes_and_paper_sized_parameter_counts(resolution):
  g = infogan.InfoGANGenerator(resolution=resolution)
  d = infogan.InfoGANDiscriminator()
  codes = jnp.zeros((3, infogan.code_dim(62, 10, 2)))
  g_vars = jax.eval_shape(functools.partial(g.init, train=False), KEY, codes)
  images = jax.eval_shape(lambda v: g.apply(v, codes, train=False), g_vars)
  assert images.shape == (3, resolution, resolution, 1)
  d_vars = jax.eval_shape(functools.partial(d.init, train=False), KEY, images)
  out = jax.eval_shape(lambda v, x: d.apply(v, x, train=False), d_vars, images)
  assert [o.shape for o in out] == [(3,), (3, 10), (3, 2)]
  base = resolution // 4
  # G: FC 74->1024 (+b) BN, FC 1024->base^2*128 (+b) BN, upconv 128->64 BN, upconv 64->1 (+b).
  g_expected = (74 * 1024 + 1024 + 2 * 1024 + 1024 * base * base * 128 + base * base * 128
                + 2 * base * base * 128 + 16 * 128 * 64 + 2 * 64 + 16 * 64 + 1)
  # D: conv 1->64 (+b), conv 64->128 BN, FC ->1024 BN, D head 1024->1 (+b);
  # Q: FC 1024->128 BN, 128->10, 128->2.
  d_expected = (16 * 64 + 64 + 16 * 64 * 128 + 2 * 128 + base * base * 128 * 1024 + 2 * 1024 + 1025
                + 1024 * 128 + 2 * 128 + 129 * 10 + 129 * 2)
  assert _count(g_vars["params"]) == g_expected
  assert _count(d_vars["params"]) == d_expected


def test_generator_is_in_range_and_batchnorm_state_updates_in_training():
  g = infogan.InfoGANGenerator(resolution=28, width=8)
  codes, _, _ = infogan.sample_codes(KEY, 16, 4, 10, 2)
  variables = g.init(KEY, codes, train=False)
  x, mutated = jax.jit(lambda v, c: g.apply(v, c, train=True, mutable=["batch_stats"]))(variables, codes)
  assert float(jnp.max(jnp.abs(x))) <= 1.0
  assert x.shape == (16, 28, 28, 1)
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), variables["batch_stats"], mutated["batch_stats"])
  assert all(jax.tree.leaves(changed))


def test_zero_continuous_codes_are_supported():
  d = infogan.InfoGANDiscriminator(num_categories=3, num_continuous=0, width=4)
  x = jnp.zeros((2, 28, 28, 1))
  variables = d.init(KEY, x, train=False)
  _, cat, cont = d.apply(variables, x, train=False)
  assert cat.shape == (2, 3) and cont.shape == (2, 0)
