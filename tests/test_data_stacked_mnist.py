"""Tests for jaxgan.data.stacked_mnist (Stacked MNIST iterator)."""

import os

import numpy as np
import pytest

from jaxgan.data import stacked_mnist

MNIST_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")
_LEVELS = np.linspace(-0.9, 0.9, 10, dtype=np.float32)  # Digit d <-> constant grey level d.


def _fake_digits(resolution=6, copies=3):
  """`copies` constant images per digit; a digit is recoverable from any pixel."""
  labels = np.tile(np.arange(10, dtype=np.int32), copies)
  images = np.broadcast_to(_LEVELS[labels][:, None, None, None],
                           (len(labels), resolution, resolution, 1)).copy()
  return images, labels


def _decode(images):
  """[B, R, R, 3] stacked constant images -> label 100 d_R + 10 d_G + d_B."""
  d = np.argmin(np.abs(images[:, 0, 0, :, None] - _LEVELS), axis=-1)  # [B, 3]
  return 100 * d[:, 0] + 10 * d[:, 1] + d[:, 2]


def _iterator(seed=0, **kwargs):
  kwargs.setdefault("num_examples", 1000)
  return stacked_mnist.make_stacked_mnist_iterator(
      batch_size=50, seed=seed, resolution=6, digits=_fake_digits(), **kwargs)


def test_labels_match_channels_and_info():
  data = _iterator()
  assert data.info == stacked_mnist.images_lib.DatasetInfo(
      name="stacked_mnist", num_classes=1000, resolution=6, channels=3, num_examples=1000)
  labels = []
  for _ in range(20):  # One epoch.
    batch = next(data)
    assert batch["image"].shape == (50, 6, 6, 3) and batch["image"].dtype == np.float32
    assert batch["label"].dtype == np.int32
    np.testing.assert_array_equal(batch["label"], _decode(batch["image"]))
    labels.append(batch["label"])
  labels = np.concatenate(labels)
  # 1000 uniform triples cover ~1000 (1 - 1/e) = 632 distinct modes; all digits in all channels.
  assert 560 < len(np.unique(labels)) < 700
  for place in (100, 10, 1):
    assert len(np.unique(labels // place % 10)) == 10


def test_deterministic_per_seed_and_resumable():
  a, b, c = _iterator(seed=3), _iterator(seed=3), _iterator(seed=4)
  first_a = [next(a) for _ in range(3)]
  first_b = [next(b) for _ in range(3)]
  for x, y in zip(first_a, first_b):
    np.testing.assert_array_equal(x["image"], y["image"])
  assert not np.array_equal(next(c)["label"], first_a[0]["label"])
  state = a.get_state()
  expected = [next(a)["label"] for _ in range(25)]  # Crosses an epoch boundary (20 batches).
  resumed = _iterator(seed=3)
  resumed.set_state(state)
  for want in expected:
    np.testing.assert_array_equal(next(resumed)["label"], want)
  with pytest.raises(ValueError, match="different data order"):
    _iterator(seed=5).set_state(state)


def test_shards_are_disjoint_parts_of_one_dataset():
  full = _iterator(seed=1, num_examples=100)
  # Same seed, so the same fixed set of triples; each shard sees half of it per epoch.
  shard0 = _iterator(seed=1, num_examples=100, shard_index=0, shard_count=2)
  shard1 = _iterator(seed=1, num_examples=100, shard_index=1, shard_count=2)
  full_labels = np.sort(np.concatenate([next(full)["label"] for _ in range(2)]))
  halves = np.sort(np.concatenate([next(shard0)["label"], next(shard1)["label"]]))
  np.testing.assert_array_equal(full_labels, halves)


def test_rejects_bad_digits():
  images, labels = _fake_digits()
  with pytest.raises(ValueError, match="resolution"):
    stacked_mnist.make_stacked_mnist_iterator(batch_size=10, seed=0, resolution=28,
                                              digits=(images, labels))
  with pytest.raises(ValueError, match="labels"):
    stacked_mnist.make_stacked_mnist_iterator(batch_size=10, seed=0, resolution=6,
                                              digits=(images, labels + 5))


@pytest.mark.skipif(not os.path.isdir(MNIST_DIR), reason="raw MNIST files not available")
def test_real_mnist_channels_are_mnist_digits_with_their_labels():
  digits, digit_labels = stacked_mnist.load_mnist_digits("test", manual_dir=MNIST_DIR)
  assert digits.shape == (10000, 28, 28, 1) and digits.min() == -1.0 and digits.max() == 1.0
  lookup = {img.tobytes(): lab for img, lab in zip(digits, digit_labels)}
  data = stacked_mnist.make_stacked_mnist_iterator(batch_size=64, seed=0, split="test",
                                                   manual_dir=MNIST_DIR, num_examples=640)
  batch = next(data)
  found = np.array([[lookup[np.ascontiguousarray(img[..., c:c + 1]).tobytes()] for c in range(3)]
                    for img in batch["image"]])
  np.testing.assert_array_equal(batch["label"], 100 * found[:, 0] + 10 * found[:, 1] + found[:, 2])
