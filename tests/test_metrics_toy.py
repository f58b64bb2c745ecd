"""Tests for jaxgan.metrics.toy (PacGAN modes / high-quality fraction / reverse KL)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.data.toy import TOY_DATASETS, ToyMixture
from jaxgan.metrics.toy import DEFAULT_NUM_SAMPLES, toy_metrics

HQ_EXPECTED = 1.0 - np.exp(-4.5)  # P(chi_2 < 3) = 0.98889


@pytest.mark.parametrize("name", sorted(TOY_DATASETS))
def test_true_data_is_perfect(name):
    ds = TOY_DATASETS[name]
    n = 20_000
    x = jax.jit(ds.sample, static_argnums=1)(jax.random.key(7), n)  # jax.Array input.
    m = toy_metrics(x, ds)
    assert isinstance(m["modes"], int) and m["modes"] == ds.num_modes
    # Binomial standard error at n=20000 is 7.4e-4; allow ~5 of them.
    assert m["hq_fraction"] == pytest.approx(HQ_EXPECTED, abs=4e-3)
    # Multinomial noise gives E[KL] ~ (K-1)/(2n) <= 6e-4.
    assert 0.0 <= m["reverse_kl"] < 5e-3


def test_default_sample_count_true_data():
    ds = TOY_DATASETS["grid25"]
    m = toy_metrics(ds.sample(jax.random.key(0), DEFAULT_NUM_SAMPLES), ds)
    assert m["modes"] == 25
    assert m["hq_fraction"] == pytest.approx(HQ_EXPECTED, abs=1.2e-2)
    assert m["reverse_kl"] < 0.02


@pytest.mark.parametrize("name", sorted(TOY_DATASETS))
def test_single_mode_collapse(name):
    ds = TOY_DATASETS[name]
    noise = 0.5 * ds.std * np.random.default_rng(0).standard_normal((500, 2))
    m = toy_metrics(ds.means[3] + noise, ds)
    assert m["modes"] == 1
    assert m["hq_fraction"] == pytest.approx(1.0, abs=1e-3)
    assert m["reverse_kl"] == pytest.approx(np.log(ds.num_modes), rel=1e-6)


def test_far_samples_have_no_quality():
    ds = TOY_DATASETS["grid25"]
    m = toy_metrics(jnp.full((100, 2), 100.0), ds)
    assert m["modes"] == 0 and m["hq_fraction"] == 0.0
    assert m["reverse_kl"] == pytest.approx(np.log(25))  # documented edge case.


def test_two_modes_partial_quality_and_threshold():
    ds = TOY_DATASETS["ring8"]
    unit = np.array([[1.0, 0.0]])
    inside = np.concatenate([ds.means[[0]] + 2.9 * ds.std * unit] * 30 + [ds.means[[5]]] * 10)
    outside = np.repeat(ds.means[[2]] + 3.1 * ds.std * unit, 40, axis=0)
    nan = np.full((20, 2), np.nan)  # a diverged generator counts as low quality.
    m = toy_metrics(np.concatenate([inside, outside, nan]), ds)
    assert m["modes"] == 2
    assert m["hq_fraction"] == pytest.approx(40 / 100)
    p = np.array([0.75, 0.25])
    assert m["reverse_kl"] == pytest.approx(float(np.sum(p * np.log(p * 8))))


def test_sample_counts_for_its_nearest_mode_only():
    means = np.array([[0.0, 0.0], [1.0, 0.0]])
    ds = ToyMixture("pair", means, std=0.5)  # mode balls overlap: nearest mode decides.
    m = toy_metrics(np.array([[0.4, 0.0], [0.45, 0.0]]), ds)
    assert m["modes"] == 1 and m["hq_fraction"] == 1.0
    assert m["reverse_kl"] == pytest.approx(np.log(2))


def test_rejects_bad_shapes():
    with pytest.raises(ValueError):
        toy_metrics(np.zeros((10, 3)), TOY_DATASETS["ring8"])
    with pytest.raises(ValueError):
        toy_metrics(np.zeros((0, 2)), TOY_DATASETS["ring8"])


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_the_jitted_metrics_equal_the_reference(name):
  from jaxgan.metrics.toy import toy_metrics_jax
  dataset = TOY_DATASETS[name]
  key = jax.random.PRNGKey(3)
  collapsed = dataset.sample(key, 500).at[:300].set(dataset.means[0])  # a partly collapsed generator
  for samples in (dataset.sample(key, 1000), collapsed, jnp.full((10, 2), 100.0)):
    want = toy_metrics(samples, dataset)
    got = jax.jit(toy_metrics_jax, static_argnames="std")(samples, dataset.means, std=dataset.std)
    assert int(got["modes"]) == want["modes"]
    np.testing.assert_allclose(float(got["hq_fraction"]), want["hq_fraction"], atol=1e-6)
    np.testing.assert_allclose(float(got["reverse_kl"]), want["reverse_kl"], rtol=1e-4, atol=1e-6)
