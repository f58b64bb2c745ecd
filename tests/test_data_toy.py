"""Tests for jaxgan.data.toy: registry geometry, jitted sampling, mode balance and spread."""

import dataclasses
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxgan.data.toy import TOY_DATASETS, ToyMixture, get_toy_dataset


def _nearest(samples: np.ndarray, means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.linalg.norm(samples[:, None, :] - means[None, :, :], axis=-1)
    idx = d.argmin(axis=1)
    return idx, samples - means[idx]


def test_registry_geometry():
    assert set(TOY_DATASETS) == {"ring8", "grid25", "grid16"}
    ring = TOY_DATASETS["ring8"]
    assert ring.means.shape == (8, 2) and ring.std == pytest.approx(0.01)
    np.testing.assert_allclose(np.linalg.norm(ring.means, axis=1), 1.0, atol=1e-6)
    angles = np.sort(np.mod(np.arctan2(ring.means[:, 1], ring.means[:, 0]), 2 * np.pi))
    np.testing.assert_allclose(np.diff(angles), np.pi / 4, atol=1e-6)
    for name, coords in [("grid25", (-4, -2, 0, 2, 4)), ("grid16", (-3, -1, 1, 3))]:
        ds = TOY_DATASETS[name]
        assert ds.name == name and ds.std == pytest.approx(0.05)
        assert ds.means.dtype == np.float32 and ds.num_modes == len(coords) ** 2
        assert {tuple(m) for m in ds.means.tolist()} == set(itertools.product(coords, coords))


@pytest.mark.parametrize("name", sorted(TOY_DATASETS))
def test_sample_jit_shape_dtype_determinism(name):
    ds = get_toy_dataset(name)
    sample = jax.jit(ds.sample, static_argnums=1)
    a = sample(jax.random.key(0), 64)
    chex.assert_shape(a, (64, 2))
    chex.assert_type(a, jnp.float32)
    np.testing.assert_array_equal(a, sample(jax.random.key(0), 64))
    assert not np.allclose(a, sample(jax.random.key(1), 64))


@pytest.mark.parametrize("name", sorted(TOY_DATASETS))
def test_samples_are_balanced_gaussians_around_modes(name):
    ds = get_toy_dataset(name)
    n = 8000
    x = np.asarray(jax.jit(ds.sample, static_argnums=1)(jax.random.key(42), n))
    idx, resid = _nearest(x, ds.means)
    # Uniform over modes: chi-square goodness of fit should not reject at 1e-3.
    counts = np.bincount(idx, minlength=ds.num_modes)
    assert scipy.stats.chisquare(counts).pvalue > 1e-3, counts
    # Residuals ~ N(0, std^2 I): per-coordinate std within 5%, mean within 4 standard errors.
    np.testing.assert_allclose(resid.std(axis=0), ds.std, rtol=0.05)
    np.testing.assert_allclose(resid.mean(axis=0), 0.0, atol=4 * ds.std / np.sqrt(n))


def test_mixture_is_static_jit_argument():
    ds = TOY_DATASETS["grid16"]
    f = jax.jit(lambda key, d: d.sample(key, 8), static_argnums=1)
    chex.assert_shape(f(jax.random.key(0), ds), (8, 2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.std = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        ds.means[0, 0] = 1.0  # read-only array: the registry cannot be mutated by accident.


def test_custom_mixture_validates_means():
    custom = ToyMixture("two", np.array([[0.0, 0.0], [1.0, 1.0]]), 0.1)
    assert custom.means.dtype == np.float32 and custom.num_modes == 2
    with pytest.raises(ValueError, match="shape"):
        ToyMixture("bad", np.zeros((3, 3)), 0.1)


def test_get_toy_dataset_unknown_lists_names():
    with pytest.raises(ValueError) as err:
        get_toy_dataset("ring9")
    for name in TOY_DATASETS:
        assert name in str(err.value)
    assert get_toy_dataset("ring8") is TOY_DATASETS["ring8"]
