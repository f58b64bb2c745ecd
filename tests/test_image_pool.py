"""Tests for jaxgan.image_pool: filling, the 50% history rule (statistically), conservation, pool_size=0."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import image_pool
from jaxgan.image_pool import ImagePool

query = jax.jit(image_pool.query)


def _ids(values):
  """Images of shape [n, 1, 1, 1] whose single pixel is an integer id (so outputs can be traced)."""
  return jnp.asarray(values, jnp.float32).reshape(-1, 1, 1, 1)


def test_filling_pool_returns_the_new_images_and_stores_them():
  pool = ImagePool.create(5, (1, 1, 1))
  pool, out = query(pool, _ids([10, 11, 12]), jax.random.PRNGKey(0))
  np.testing.assert_array_equal(out, _ids([10, 11, 12]))
  assert int(pool.count) == 3
  np.testing.assert_array_equal(pool.images[:3], _ids([10, 11, 12]))
  # Two more fill it exactly; after that, count stays at the pool size.
  pool, out = query(pool, _ids([13, 14, 15, 16]), jax.random.PRNGKey(1))
  assert int(pool.count) == 5
  np.testing.assert_array_equal(out[:2], _ids([13, 14]))
  np.testing.assert_array_equal(pool.images[3:5], _ids([13, 14]))


def test_full_pool_returns_history_half_the_time_and_conserves_images():
  size, n = 50, 2000
  pool = ImagePool(images=_ids(np.arange(size)), count=jnp.int32(size))
  new = np.arange(1000, 1000 + n)
  pool_after, out = query(pool, _ids(new), jax.random.PRNGKey(42))
  out = np.asarray(out).ravel().astype(int)
  current = out == new
  # Each image is swapped with probability 1/2: binomial(2000, 0.5) has sd 0.011; 0.05 is 4.5 sd.
  assert abs(current.mean() - 0.5) < 0.05, current.mean()
  # A non-current output is a past image: one of the stored ones or an earlier image of this batch.
  for i in np.flatnonzero(~current):
    assert out[i] < size or (1000 <= out[i] < new[i]), (i, out[i])
  # Nothing is created or lost: pool before + inputs == pool after + outputs (as multisets).
  before = np.concatenate([np.arange(size), new])
  after = np.concatenate([np.asarray(pool_after.images).ravel().astype(int), out])
  np.testing.assert_array_equal(np.sort(before), np.sort(after))
  # Old images did leave the pool (it is a history, not a frozen buffer).
  assert np.asarray(pool_after.images).max() >= 1000


def test_different_keys_give_different_choices_and_same_key_is_deterministic():
  pool = ImagePool(images=_ids(np.arange(50)), count=jnp.int32(50))
  new = _ids(np.arange(100, 164))
  _, out1 = query(pool, new, jax.random.PRNGKey(0))
  _, out2 = query(pool, new, jax.random.PRNGKey(0))
  _, out3 = query(pool, new, jax.random.PRNGKey(1))
  np.testing.assert_array_equal(out1, out2)
  assert not np.array_equal(np.asarray(out1), np.asarray(out3))


def test_pool_size_zero_is_the_identity():
  pool = ImagePool.create(0, (2, 2, 1))
  x = jnp.ones((3, 2, 2, 1))
  pool2, out = query(pool, x, jax.random.PRNGKey(0))
  np.testing.assert_array_equal(out, x)
  assert pool2.images.shape == (0, 2, 2, 1)


def test_negative_size_is_refused():
  with pytest.raises(ValueError, match="pool_size"):
    ImagePool.create(-1, (2, 2, 1))
