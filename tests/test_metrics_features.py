"""Tests for jaxgan.metrics.features (FD, KID, precision/recall, density/coverage, streaming)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from jaxgan.metrics import features as F


def _random_spd(rng, d, scale=1.0):
  a = rng.standard_normal((d, d))
  return scale * (a @ a.T / d + 0.1 * np.eye(d))


def _scipy_fd(mu1, s1, mu2, s2):
  """Independent reference: the textbook formula with scipy's general matrix square root."""
  covmean = scipy.linalg.sqrtm(s1 @ s2).real
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def test_fd_identical_gaussians_is_zero():
  rng = np.random.default_rng(0)
  mu, s = rng.standard_normal(8), _random_spd(rng, 8)
  assert abs(F.frechet_distance(mu, s, mu, s)) < 1e-10


def test_fd_matches_scipy_reference_and_diagonal_closed_form():
  rng = np.random.default_rng(1)
  d = 12
  mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
  s1, s2 = _random_spd(rng, d), _random_spd(rng, d, scale=3.0)  # Non-commuting.
  fd = F.frechet_distance(mu1, s1, mu2, s2)
  assert fd == pytest.approx(_scipy_fd(mu1, s1, mu2, s2), rel=1e-9)
  assert fd == pytest.approx(F.frechet_distance(mu2, s2, mu1, s1), rel=1e-9)  # Symmetric.
  a, b = rng.uniform(0.1, 4, d), rng.uniform(0.1, 4, d)
  closed = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  assert F.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(closed, rel=1e-12)


def test_fd_singular_covariances():
  """d > n (rank-deficient covariances) stays exact and non-negative."""
  rng = np.random.default_rng(2)
  x, y = rng.standard_normal((10, 32)), rng.standard_normal((10, 32)) + 0.3
  sx, sy = F.FeatureStats.from_features(x), F.FeatureStats.from_features(y)
  # sqrt amplifies the ~1e-16 round-off of the zero eigenvalues to ~1e-8 each: relative 1e-7.
  assert abs(F.frechet_distance_from_stats(sx, sx)) < 1e-7 * np.trace(sx.covariance)
  fd = F.frechet_distance_from_stats(sx, sy)
  ref = _scipy_fd(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
  assert fd > 0 and fd == pytest.approx(ref, rel=1e-6)


def test_streaming_stats_equal_one_shot():
  rng = np.random.default_rng(3)
  x = (rng.standard_normal((101, 5)) * 3 + 10).astype(np.float32)
  stats = F.FeatureStats(5)
  for chunk in np.split(x, [7, 60]):
    stats.update(jnp.asarray(chunk))
  np.testing.assert_allclose(stats.mean, x.astype(np.float64).mean(0), rtol=1e-12)
  np.testing.assert_allclose(stats.covariance, np.cov(x.astype(np.float64), rowvar=False),
                             rtol=1e-10)
  merged = F.FeatureStats.from_features(x[:50]).merge(F.FeatureStats.from_features(x[50:]))
  np.testing.assert_allclose(merged.covariance, stats.covariance, rtol=1e-12)
  assert merged.count == stats.count == 101
  with pytest.raises(ValueError):
    stats.update(np.zeros((2, 4)))


def _mmd2_unbiased_reference(x, y):
  x, y = x.astype(np.float64), y.astype(np.float64)
  d, m = x.shape[1], x.shape[0]
  k = lambda a, b: (a @ b.T / d + 1) ** 3
  kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
  return ((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
          - 2 * kxy.mean())


def test_kid_formula_matches_float64_reference():
  """One subset of the full size is a permutation of the sets: the value is deterministic."""
  rng = np.random.default_rng(4)
  x, y = rng.standard_normal((300, 16)), rng.standard_normal((300, 16)) * 1.2 + 0.2
  mean, std = F.kernel_inception_distance(x, y, num_subsets=1, subset_size=300)
  assert mean == pytest.approx(_mmd2_unbiased_reference(x, y), rel=1e-4)
  assert std == 0.0


def test_kid_unbiased_for_same_distribution_and_positive_for_shift():
  rng = np.random.default_rng(5)
  means, all_values = [], []
  for seed in range(10):
    x, y = rng.standard_normal((400, 16)), rng.standard_normal((400, 16))
    mean, _ = F.kernel_inception_distance(x, y, num_subsets=20, subset_size=200, seed=seed)
    means.append(mean)
  means = np.array(means)
  # Unbiased: the average over independent draws is within 3 standard errors of 0, and some
  # individual estimates are negative (a biased MMD^2 estimate would always be > 0).
  assert abs(means.mean()) < 3 * means.std(ddof=1) / np.sqrt(len(means)) + 1e-6
  assert (means < 0).any()
  x, y = rng.standard_normal((400, 16)), rng.standard_normal((400, 16)) + 0.5
  shifted_mean, shifted_std = F.kernel_inception_distance(x, y, num_subsets=20, subset_size=200)
  assert shifted_mean > 20 * np.abs(means).max() and shifted_mean > 10 * shifted_std


def _prdc_reference(real, fake, k):
  """Brute-force numpy (float64) version of the definitions, closed balls."""
  d_rr = scipy.spatial.distance.cdist(real, real)
  d_ff = scipy.spatial.distance.cdist(fake, fake)
  d_rf = scipy.spatial.distance.cdist(real, fake)  # [N, M]
  r_real = np.sort(d_rr, axis=1)[:, k]
  r_fake = np.sort(d_ff, axis=1)[:, k]
  in_real = d_rf <= r_real[:, None]
  return {
      "precision": in_real.any(axis=0).mean(),
      "recall": (d_rf <= r_fake[None, :]).any(axis=1).mean(),
      "density": in_real.sum(axis=0).mean() / k,
      "coverage": in_real.any(axis=1).mean(),
  }


def test_prdc_matches_bruteforce_with_blocks_and_padding():
  import scipy.spatial  # noqa: F401 - used by the reference.
  rng = np.random.default_rng(6)
  real = rng.standard_normal((150, 6)).astype(np.float32)
  real = np.concatenate([real, real[:7]])  # Duplicates: the k-NN radii count them (multiset).
  fake = (rng.standard_normal((131, 6)) * 1.3 + 0.4).astype(np.float32)
  got = F.precision_recall_density_coverage(real, fake, k=3, block=32)  # Ragged last blocks.
  want = _prdc_reference(real, fake, 3)
  for name in want:
    assert got[name] == pytest.approx(want[name], abs=1e-9), name
  assert 0 < got["precision"] < 1 and 0 < got["recall"] < 1


def test_prdc_identical_same_distribution_and_disjoint():
  rng = np.random.default_rng(7)
  x = rng.standard_normal((500, 8)).astype(np.float32) * 5 + 20  # Offset: tests the centering.
  same = F.precision_recall_density_coverage(x, x, k=3)
  assert same["precision"] == same["recall"] == same["coverage"] == 1.0
  assert same["density"] == pytest.approx(4 / 3)  # Each ball holds its centre + k neighbours.
  y = rng.standard_normal((500, 8)).astype(np.float32) * 5 + 20
  indep = F.precision_recall_density_coverage(x, y, k=3)
  assert indep["density"] == pytest.approx(1.0, abs=0.15)
  assert indep["precision"] > 0.6 and indep["recall"] > 0.6 and indep["coverage"] > 0.8
  far = F.precision_recall_density_coverage(x, y + 1000, k=3)
  assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def _batches(images, batch_size, as_dict):
  for start in range(0, len(images), batch_size):
    chunk = images[start:start + batch_size]
    yield {"image": chunk, "label": np.zeros(len(chunk), np.int32)} if as_dict else chunk


def test_compute_feature_metrics_streams_and_truncates():
  rng = np.random.default_rng(8)
  real = rng.uniform(-1, 1, (300, 4, 4, 1)).astype(np.float32)
  fake = np.clip(real[::-1] * 0.8 + 0.1, -1, 1)
  calls = []

  @jax.jit
  def feature_fn(images):
    return images.reshape(images.shape[0], -1)[:, :6] * 2.0

  def counting_fn(images):
    calls.append(images.shape[0])
    return feature_fn(images)

  n = 250
  out = F.compute_feature_metrics(counting_fn, _batches(real, 64, True), _batches(fake, 64, False),
                                  n, max_stored=200, kid_subsets=5, kid_subset_size=100)
  assert set(calls) == {64}  # Whole batches only: no ragged shapes to recompile for.
  r = real[:n].reshape(n, -1)[:, :6] * 2.0
  f = fake[:n].reshape(n, -1)[:, :6] * 2.0
  want_fd = F.frechet_distance(r.mean(0), np.cov(r, rowvar=False), f.mean(0),
                               np.cov(f, rowvar=False))
  assert out["fd"] == pytest.approx(want_fd, rel=1e-5)
  want_prdc = F.precision_recall_density_coverage(r[:200], f[:200])
  for name, value in want_prdc.items():
    assert out[name] == pytest.approx(value), name
  assert set(out) == {"fd", "kid_mean", "kid_std", "precision", "recall", "density", "coverage"}
  with pytest.raises(ValueError, match="ran out"):
    F.compute_feature_metrics(feature_fn, _batches(real, 64, False), _batches(fake, 64, False),
                              400)
