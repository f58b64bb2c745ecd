"""Feature-space GAN metrics: Fréchet distance, KID, precision/recall and density/coverage.

All metrics compare a set of real and a set of generated images through a feature function
(an Inception-v3 pool3 layer for the usual FID, or a small MNIST classifier's penultimate layer):

* Fréchet distance (Heusel et al. 2017, "GANs trained by a two time-scale update rule", Eq. 6)
  between Gaussians fitted to the two feature sets,
  ``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})``, computed exactly in float64.
* KID (Binkowski et al. 2018, "Demystifying MMD GANs", Sec. 5): the unbiased estimator of MMD^2
  with the cubic polynomial kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets;
  mean and standard deviation over subsets are reported.
* Precision / recall (Kynkäänniemi et al. 2019, "Improved precision and recall metric", Eq. 1-3):
  the fraction of generated samples inside the real k-NN manifold (union of balls around each real
  sample with radius its distance to its k-th nearest real neighbour), and vice versa.
* Density / coverage (Naeem et al. 2020, "Reliable fidelity and diversity metrics", Eq. 5-6):
  density = mean over fakes of the number of real balls containing it, divided by k; coverage =
  fraction of real balls that contain at least one fake.

Streaming: the Fréchet distance needs only the mean and covariance, accumulated batch by batch in a
`FeatureStats` (count, sum, sum of outer products in float64), so images are never all in memory;
KID and the k-NN metrics need the feature vectors themselves, of which at most `max_stored` (10k by
default) per side are kept (features, not images).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
FeatureFn = Callable[[Array], Array]

DEFAULT_MAX_STORED: int = 10_000
DEFAULT_K: int = 3  # Kynkäänniemi et al. and Naeem et al. both recommend k = 3 ... 5.
DEFAULT_KID_SUBSETS: int = 100  # Binkowski et al.'s reference code: 100 subsets of 1000.
DEFAULT_KID_SUBSET_SIZE: int = 1000
_HIGHEST = jax.lax.Precision.HIGHEST  # No TF32/bf16 passes on accelerators: distances need f32.


# Hand-written because no installed library offers a mergeable streaming covariance accumulator
# (numpy/scipy need all samples at once; sklearn's incremental estimators track variances only).
class FeatureStats:
  """Streaming first and second moments of feature vectors, in float64.

  Holds ``count``, ``sum`` [d] and ``sum_outer`` [d, d] = sum_i x_i x_i^T. With float64 the
  cancellation in ``sum_outer / n - mu mu^T`` costs ~1e-16 * |mu|^2 / var in relative accuracy,
  negligible for network features.
  """

  def __init__(self, dim: int):
    self.count = 0
    self.sum = np.zeros((dim,), np.float64)
    self.sum_outer = np.zeros((dim, dim), np.float64)

  @property
  def dim(self) -> int:
    return self.sum.shape[0]

  @classmethod
  def from_features(cls, features: np.ndarray | Array) -> FeatureStats:
    stats = cls(np.shape(features)[1])
    stats.update(features)
    return stats

  def update(self, features: np.ndarray | Array) -> FeatureStats:
    """Adds a batch of feature vectors [B, d]; returns self."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or x.shape[1] != self.dim:
      raise ValueError(f"features must have shape [B, {self.dim}], got {x.shape}")
    self.count += x.shape[0]
    self.sum += x.sum(axis=0)
    self.sum_outer += x.T @ x
    return self

  def merge(self, other: FeatureStats) -> FeatureStats:
    """Adds another accumulator's samples (e.g. from another host); returns self."""
    if other.dim != self.dim:
      raise ValueError(f"Cannot merge stats of dimension {other.dim} into {self.dim}")
    self.count += other.count
    self.sum += other.sum
    self.sum_outer += other.sum_outer
    return self

  @property
  def mean(self) -> np.ndarray:
    if self.count < 1:
      raise ValueError("FeatureStats is empty")
    return self.sum / self.count

  @property
  def covariance(self) -> np.ndarray:
    """Unbiased sample covariance (divides by n - 1, as ``np.cov`` does)."""
    if self.count < 2:
      raise ValueError(f"Need at least 2 samples for a covariance, have {self.count}")
    mu = self.mean
    cov = (self.sum_outer - self.count * np.outer(mu, mu)) / (self.count - 1)
    return (cov + cov.T) / 2


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric PSD matrix (negative round-off eigenvalues -> 0)."""
  w, v = np.linalg.eigh(matrix)
  return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
  """Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

  Tr((S1 S2)^{1/2}) is computed in the symmetric form Tr((S1^{1/2} S2 S1^{1/2})^{1/2}) = sum of the
  square roots of its (real, non-negative) eigenvalues, which equal those of S1 S2. Unlike
  ``scipy.linalg.sqrtm(S1 @ S2)`` this needs no complex arithmetic, no ad-hoc diagonal offset for
  singular covariances (d > n), and is exact up to float64 round-off.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
    raise ValueError(f"Shape mismatch: mu {mu1.shape}, {mu2.shape}; sigma {sigma1.shape}, "
                     f"{sigma2.shape}")
  s1_half = _sqrt_psd(sigma1)
  inner = s1_half @ sigma2 @ s1_half
  eigenvalues = np.linalg.eigvalsh((inner + inner.T) / 2)
  trace_sqrt = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def frechet_distance_from_stats(a: FeatureStats, b: FeatureStats) -> float:
  """Fréchet distance between the Gaussians fitted to two streamed feature sets."""
  return frechet_distance(a.mean, a.covariance, b.mean, b.covariance)


@functools.partial(jax.jit, static_argnames=("num_subsets", "subset_size"))
def _kid_per_subset(key: Array, real: Array, fake: Array, *, num_subsets: int,
                    subset_size: int) -> Array:
  """Unbiased MMD^2 (cubic polynomial kernel) of `num_subsets` random subsets: f32 [num_subsets]."""
  dim = real.shape[1]
  m = subset_size

  def kernel(x: Array, y: Array) -> Array:
    return (jnp.matmul(x, y.T, precision=_HIGHEST) / dim + 1.0) ** 3

  def one_subset(subset_key: Array) -> Array:
    real_key, fake_key = jax.random.split(subset_key)
    x = real[jax.random.choice(real_key, real.shape[0], (m,), replace=False)]
    y = fake[jax.random.choice(fake_key, fake.shape[0], (m,), replace=False)]
    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    # Row sums first: a two-level reduction keeps the float32 sum of m^2 terms accurate.
    off_diagonal = lambda k: k.sum(axis=1).sum() - jnp.trace(k)
    return ((off_diagonal(k_xx) + off_diagonal(k_yy)) / (m * (m - 1))
            - 2.0 * k_xy.sum(axis=1).sum() / (m * m))

  return jax.lax.map(one_subset, jax.random.split(key, num_subsets))


def kernel_inception_distance(real: np.ndarray | Array, fake: np.ndarray | Array, *,
                              num_subsets: int = DEFAULT_KID_SUBSETS,
                              subset_size: int = DEFAULT_KID_SUBSET_SIZE,
                              seed: int = 0) -> tuple[float, float]:
  """KID (Binkowski et al. 2018): mean and std of the unbiased MMD^2 over random subsets.

  Each subset draws `subset_size` real and fake features without replacement (as the reference
  code does); `subset_size` is capped at the smaller set's size. The estimator is unbiased, so
  for two samples of one distribution it is ~0 and can be negative. Computed in float32 with
  full-precision matmuls (kernel values are O(1), MMD^2 of interest >> the ~1e-6 round-off).
  """
  real, fake = jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32)
  chex.assert_rank([real, fake], 2)
  chex.assert_equal_shape_suffix([real, fake], 1)
  subset_size = min(subset_size, real.shape[0], fake.shape[0])
  if subset_size < 2:
    raise ValueError("KID needs at least 2 real and 2 fake feature vectors")
  values = np.asarray(_kid_per_subset(jax.random.key(seed), real, fake, num_subsets=num_subsets,
                                      subset_size=subset_size), np.float64)
  return float(values.mean()), float(values.std())


def _squared_distances(a: Array, b: Array) -> Array:
  """[n, d], [m, d] -> [n, m] squared Euclidean distances, clamped at 0 against round-off."""
  a_sq = jnp.sum(a * a, axis=1)[:, None]
  b_sq = jnp.sum(b * b, axis=1)[None, :]
  return jnp.maximum(a_sq + b_sq - 2.0 * jnp.matmul(a, b.T, precision=_HIGHEST), 0.0)


def _blocks(x: Array, block: int) -> tuple[Array, Array]:
  """Pads rows of x to a multiple of `block`: returns ([nb, block, d] blocks, [nb, block] valid)."""
  n = x.shape[0]
  padded = -(-n // block) * block
  valid = jnp.arange(padded) < n
  x = jnp.pad(x, ((0, padded - n), (0, 0)))
  return x.reshape(-1, block, x.shape[1]), valid.reshape(-1, block)


def _kth_neighbour_sq_radii(x: Array, k: int, block: int) -> Array:
  """Squared distance of each row of x to its k-th nearest *other* row: [n]."""
  blocks, _ = _blocks(x, block)

  def radii(rows: Array) -> Array:
    # The (k+1)-th smallest includes the row itself at distance 0 (as in Naeem et al.'s code).
    # Hand-written because lax.top_k (and jnp.partition) on XLA:CPU took 16 s for 10k x 10k
    # distances, while k + 1 passes of "take the minimum, mask it out" take well under a second.
    d = _squared_distances(rows, x)
    row_ids = jnp.arange(d.shape[0])
    for _ in range(k):
      d = d.at[row_ids, jnp.argmin(d, axis=1)].set(jnp.inf)  # One at a time: ties count twice.
    return jnp.min(d, axis=1)

  return jax.lax.map(radii, blocks).reshape(-1)[:x.shape[0]]


@functools.partial(jax.jit, static_argnames=("k", "block"))
def _prdc(real: Array, fake: Array, *, k: int, block: int) -> dict[str, Array]:
  """Counts behind precision/recall/density/coverage, in 3 blockwise passes (no [N, M] matrix)."""
  center = real.mean(axis=0)  # Distances are shift invariant; centering reduces round-off.
  real, fake = real - center, fake - center
  real_r = _kth_neighbour_sq_radii(real, k, block)
  fake_r = _kth_neighbour_sq_radii(fake, k, block)
  fake_blocks, fake_valid = _blocks(fake, block)
  fake_r_blocks = jnp.pad(fake_r, (0, fake_valid.size - fake.shape[0])).reshape(fake_valid.shape)

  def scan_fake_block(carry, inputs):
    covered, recalled = carry  # [N] bool: real ball holds a fake / real in some fake ball.
    rows, valid, rows_r = inputs
    d = _squared_distances(rows, real)  # [block, N]
    in_real_ball = (d <= real_r[None, :]) & valid[:, None]
    in_fake_ball = (d <= rows_r[:, None]) & valid[:, None]
    covered = covered | in_real_ball.any(axis=0)
    recalled = recalled | in_fake_ball.any(axis=0)
    return (covered, recalled), (in_real_ball.any(axis=1), in_real_ball.sum(axis=1))

  init = (jnp.zeros(real.shape[0], bool), jnp.zeros(real.shape[0], bool))
  (covered, recalled), (precise, counts) = jax.lax.scan(
      scan_fake_block, init, (fake_blocks, fake_valid, fake_r_blocks))
  # Integer counts; the divisions happen in float64 on the host. Padded rows never count.
  # Per-row ball counts are summed on the host in int64 (N * M can exceed int32).
  return {"precise": jnp.sum(precise), "recalled": jnp.sum(recalled),
          "in_balls": counts, "covered": jnp.sum(covered)}


def precision_recall_density_coverage(real: np.ndarray | Array, fake: np.ndarray | Array, *,
                                      k: int = DEFAULT_K, block: int = 1024) -> dict[str, float]:
  """k-NN precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

  A sample lies in a ball if its distance is <= the radius (closed balls, as in Kynkäänniemi et
  al.'s definition). For two *identical* sets of distinct points, precision = recall = coverage =
  1 and density = (k + 1) / k (each ball holds its centre and its k neighbours); for two
  independent samples of one distribution the expected density is ~1. Memory is O(block * n).
  """
  real, fake = jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32)
  chex.assert_rank([real, fake], 2)
  chex.assert_equal_shape_suffix([real, fake], 1)
  if min(real.shape[0], fake.shape[0]) <= k:
    raise ValueError(f"Need more than k={k} real and fake samples, got {real.shape[0]} and "
                     f"{fake.shape[0]}")
  counts = jax.device_get(
      _prdc(real, fake, k=k, block=min(block, max(real.shape[0], fake.shape[0]))))
  num_real, num_fake = real.shape[0], fake.shape[0]
  return {
      "precision": int(counts["precise"]) / num_fake,
      "recall": int(counts["recalled"]) / num_real,
      "density": int(np.sum(counts["in_balls"], dtype=np.int64)) / (k * num_fake),
      "coverage": int(counts["covered"]) / num_real,
  }


@dataclasses.dataclass
class CollectedFeatures:
  """Streamed statistics of all `stats.count` samples plus the first `features.shape[0]` vectors."""

  stats: FeatureStats
  features: np.ndarray  # float32 [min(count, max_stored), d]


def _images_of(batch: Any) -> Any:
  """A batch is an image array or a dict with an "image" entry (as `ImageData` yields)."""
  return batch["image"] if isinstance(batch, Mapping) else batch


def collect_features(feature_fn: FeatureFn, batches: Iterable[Any], num_samples: int, *,
                     max_stored: int = DEFAULT_MAX_STORED) -> CollectedFeatures:
  """Runs `feature_fn` over batches until `num_samples` images were seen.

  `feature_fn` maps images [B, H, W, C] to features [B, d]; it should be jitted (the functions of
  `jaxgan.metrics.classifier` and `jaxgan.metrics.inception` are). Whole batches are passed (the
  surplus of the last one is dropped afterwards) so a jitted fn never recompiles for a ragged batch.
  """
  if num_samples < 2:
    raise ValueError(f"num_samples must be >= 2, got {num_samples}")
  stats: FeatureStats | None = None
  stored: list[np.ndarray] = []
  num_stored = 0
  iterator = iter(batches)
  while stats is None or stats.count < num_samples:
    try:
      batch = next(iterator)
    except StopIteration:
      seen = 0 if stats is None else stats.count
      raise ValueError(f"Batches ran out after {seen} of num_samples={num_samples} images") from None
    features = np.asarray(feature_fn(_images_of(batch)), np.float32)
    if features.ndim != 2:
      raise ValueError(f"feature_fn must return [B, d] features, got shape {features.shape}")
    if stats is None:
      stats = FeatureStats(features.shape[1])
    features = features[:num_samples - stats.count]
    stats.update(features)
    keep = features[:max(max_stored - num_stored, 0)]
    if keep.shape[0]:
      stored.append(keep)
      num_stored += keep.shape[0]
  return CollectedFeatures(stats, np.concatenate(stored))


def feature_metrics(real: CollectedFeatures, fake: CollectedFeatures, *, k: int = DEFAULT_K,
                    kid_subsets: int = DEFAULT_KID_SUBSETS,
                    kid_subset_size: int = DEFAULT_KID_SUBSET_SIZE,
                    seed: int = 0) -> dict[str, float]:
  """All metrics from collected features (real features can be collected once and reused)."""
  kid_mean, kid_std = kernel_inception_distance(
      real.features, fake.features, num_subsets=kid_subsets, subset_size=kid_subset_size,
      seed=seed)
  return {
      "fd": frechet_distance_from_stats(real.stats, fake.stats),
      "kid_mean": kid_mean,
      "kid_std": kid_std,
      **precision_recall_density_coverage(real.features, fake.features, k=k),
  }


def compute_feature_metrics(feature_fn: FeatureFn, real_batches_iter: Iterable[Any],
                            fake_batches_iter: Iterable[Any], num_samples: int, *,
                            max_stored: int = DEFAULT_MAX_STORED, k: int = DEFAULT_K,
                            kid_subsets: int = DEFAULT_KID_SUBSETS,
                            kid_subset_size: int = DEFAULT_KID_SUBSET_SIZE,
                            seed: int = 0) -> dict[str, float]:
  """FD, KID, precision/recall, density/coverage of `num_samples` real vs generated images.

  Batches are image arrays [B, H, W, C] in [-1, 1] or dicts with an "image" entry. FD uses all
  `num_samples` (streamed); KID and the k-NN metrics use the first `max_stored` of each side.

  Returns:
    {"fd", "kid_mean", "kid_std", "precision", "recall", "density", "coverage"} as floats.
  """
  real = collect_features(feature_fn, real_batches_iter, num_samples, max_stored=max_stored)
  fake = collect_features(feature_fn, fake_batches_iter, num_samples, max_stored=max_stored)
  return feature_metrics(real, fake, k=k, kid_subsets=kid_subsets,
                         kid_subset_size=kid_subset_size, seed=seed)
