"""Tests for jaxgan.data.embedded (the offline 8x8 digits default)."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from jaxgan.data import embedded


@pytest.mark.parametrize("resolution", [16, 32])
def test_shape_dtype_range_and_classes(resolution):
    images, labels = embedded.load_digits_images(resolution)
    assert images.shape == (1797, resolution, resolution, 1)
    assert images.dtype == np.float32 and labels.dtype == np.int32
    assert images.min() >= -1.0 and images.max() <= 1.0
    # Background is black (-1) and strokes reach white: the full range is used.
    assert images.min() == -1.0 and images.max() > 0.95
    assert np.mean(images < -0.9) > 0.4  # Mostly background, white-on-black like MNIST.
    np.testing.assert_array_equal(np.unique(labels), np.arange(10))


def test_native_resolution_is_an_exact_rescale():
    images, labels = embedded.load_digits_images(8)
    raw = load_digits()
    np.testing.assert_allclose(images[..., 0], raw.images / 8.0 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(labels, raw.target)


def test_resize_preserves_content():
    small, _ = embedded.load_digits_images(8)
    big, _ = embedded.load_digits_images(32)
    # Per-image mean brightness survives bicubic up-sampling...
    np.testing.assert_allclose(big.mean(axis=(1, 2, 3)), small.mean(axis=(1, 2, 3)), atol=0.06)
    # ...and block-averaging back to 8x8 gives the original image (up to interpolation error).
    pooled = big[..., 0].reshape(-1, 8, 4, 8, 4).mean(axis=(2, 4))
    assert np.abs(pooled - small[..., 0]).mean() < 0.1


def test_deterministic_and_read_only():
    a, la = embedded.load_digits_images(16)
    embedded._load_digits_cached.cache_clear()
    b, lb = embedded.load_digits_images(16)
    assert a is not b  # Recomputed, not the cached object...
    np.testing.assert_array_equal(a, b)  # ...yet identical.
    np.testing.assert_array_equal(la, lb)
    with pytest.raises(ValueError):
        b[0, 0, 0, 0] = 0.0


@pytest.mark.parametrize("resolution", [0, -3, 2.5])
def test_bad_resolution(resolution):
    with pytest.raises(ValueError, match="resolution"):
        embedded.load_digits_images(resolution)
