"""Tests for jaxgan.data.translation: edges, paired/unpaired sources, determinism, the TFDS cycle_gan path
(tfds.testing.mock_data) and MNIST from IDX files (skipped when absent). No network."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.testing import mocking

from jaxgan.data import embedded, translation
from jaxgan.data.translation import TranslationBatches, get_task, load_domains, low_resolution, sobel_edges

REAL_MNIST = "/work/shared/data/mnist"


# Every test here runs with network access refused (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("no_network")


def test_sobel_edges_of_flat_and_step_images():
  flat = np.full((1, 8, 8, 1), 0.3, np.float32)
  np.testing.assert_array_equal(sobel_edges(flat), -1.0)  # no edges anywhere
  step = -np.ones((1, 8, 8, 1), np.float32)
  step[:, :, 4:] = 1.0
  edges = sobel_edges(step)[0, :, :, 0]
  assert edges.max() == 1.0 and edges.min() == -1.0
  assert set(np.flatnonzero(edges[4] > 0)) == {3, 4}  # the edge is between columns 3 and 4
  assert (edges[:, :3] == -1).all() and (edges[:, 5:] == -1).all()


def test_edges2digits_is_paired_and_deterministic():
  domains = load_domains("edges2digits", resolution=32, num_eval=50)
  source = TranslationBatches(domains, paired=True, batch_size=8, seed=0)
  batch = source.next(3)
  assert batch["input"].shape == (1, 8, 32, 32, 1) and batch["target"].shape == (1, 8, 32, 32, 1)
  x, y = np.asarray(batch["input"][0]), np.asarray(batch["target"][0])
  np.testing.assert_allclose(x, sobel_edges(y), atol=1e-6)  # the input is the target's edge map
  digits, _ = embedded.load_digits_images(32)
  train = digits[:len(digits) - translation.EMBEDDED_HELD_OUT]
  for image in y:  # targets come from the training part only
    assert np.min(np.abs(train - image).reshape(len(train), -1).sum(1)) == 0
  np.testing.assert_array_equal(source.next(3)["target"], batch["target"])
  assert not np.array_equal(np.asarray(source.next(4)["target"]), np.asarray(batch["target"]))
  # Held out: the last digits, never trained on.
  np.testing.assert_array_equal(domains.eval_b, digits[-translation.EMBEDDED_HELD_OUT:][:50])
  assert source.get_state() == {} and source.example_shape == (32, 32, 1)


def test_digits2inverted_is_unpaired_from_disjoint_halves():
  domains = load_domains("digits2inverted", resolution=16, num_eval=20)
  digits, _ = embedded.load_digits_images(16)
  train = digits[:len(digits) - translation.EMBEDDED_HELD_OUT]
  np.testing.assert_array_equal(domains.read_a(np.arange(5)), train[0:10:2])
  np.testing.assert_array_equal(domains.read_b(np.arange(5)), -train[1:10:2])
  assert domains.num_a + domains.num_b == len(train)
  source = TranslationBatches(domains, paired=False, batch_size=16, seed=1)
  batch = source.next(0)
  a, b = np.asarray(batch["a"][0]), np.asarray(batch["b"][0])
  assert a.shape == b.shape == (16, 16, 16, 1)
  assert a.mean() < 0 < b.mean()  # black backgrounds in A, white in B
  # Unpaired: no B image is the inverse of an A image in the batch.
  distances = np.abs(a[:, None] + b[None]).reshape(16, 16, -1).sum(-1)
  assert distances.min() > 0
  np.testing.assert_array_equal(domains.eval_b, -domains.eval_a)  # the held-out truth is known
  assert domains.eval_paired


def test_unknown_dataset_names_the_valid_ones():
  with pytest.raises(ValueError, match="edges2digits.*cycle_gan/"):
    load_domains("edges2nothing", resolution=32, num_eval=4)


def test_batch_larger_than_a_domain_is_refused():
  domains = load_domains("digits2inverted", resolution=8, num_eval=4)
  with pytest.raises(ValueError, match="exceeds"):
    TranslationBatches(domains, paired=False, batch_size=10_000, seed=0)


@pytest.fixture
def mock_tfds(monkeypatch):
  """tfds.testing.mock_data with its batched read fixed (see tests/test_data_images.py)."""

  def getitems(*args, generator, serialized=False):
    assert not serialized
    return [generator[key] for key in args[-1]]

  monkeypatch.setattr(mocking, "_getitems", getitems)
  return lambda n: tfds.testing.mock_data(num_examples=n)


def test_tfds_cycle_gan_config_reads_train_and_test_splits(mock_tfds, tmp_path):
  with mock_tfds(12):
    domains = load_domains("cycle_gan/horse2zebra", resolution=16, num_eval=5, data_dir=str(tmp_path),
                           download=True)
    source = TranslationBatches(domains, paired=False, batch_size=4, seed=0)
    batch = source.next(0)
  assert batch["a"].shape == batch["b"].shape == (1, 4, 16, 16, 3)
  assert domains.eval_a.shape == (5, 16, 16, 3) and not domains.eval_paired
  assert -1 <= float(batch["a"].min()) and float(batch["a"].max()) <= 1
  assert float(np.asarray(batch["a"]).std()) > 0.1  # random mock pixels, decoded


def test_unprepared_tfds_dataset_without_download_says_how_to_get_it(tmp_path):
  with pytest.raises(FileNotFoundError, match="--download"):
    load_domains("cycle_gan/facades", resolution=16, num_eval=4, data_dir=str(tmp_path))


@pytest.mark.skipif(not os.path.isdir(REAL_MNIST), reason="raw MNIST files not available")
def test_edges2mnist_from_idx_files(tmp_path):
  domains = load_domains("edges2mnist", resolution=32, num_eval=10, manual_dir=REAL_MNIST,
                         data_dir=str(tmp_path))
  assert domains.num_a == 60000 and domains.eval_a.shape == (10, 32, 32, 1)
  np.testing.assert_allclose(domains.eval_a, sobel_edges(domains.eval_b), atol=1e-6)


def test_low_resolution_replaces_each_block_by_its_mean():
  x = np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8, 1) / 128.0 - 1.0
  low = low_resolution(x, 4)
  assert low.shape == x.shape
  np.testing.assert_allclose(low[0, :4, :4, 0], np.full((4, 4), x[0, :4, :4, 0].mean()), rtol=1e-6)
  np.testing.assert_allclose(low[1, 4:, :4, 0], np.full((4, 4), x[1, 4:, :4, 0].mean()), rtol=1e-6)
  # The mean is kept and detail is lost: an already blocky image is unchanged.
  np.testing.assert_allclose(low.mean(), x.mean(), rtol=1e-6)
  np.testing.assert_allclose(low_resolution(low, 4), low, rtol=1e-6)
  with pytest.raises(ValueError, match="divisible by 4"):
    low_resolution(np.zeros((1, 30, 30, 1), np.float32), 4)


@pytest.mark.skipif(not os.path.isdir(REAL_MNIST), reason="raw MNIST files not available")
def test_lowres2mnist_pairs_each_digit_with_its_low_resolution_version(tmp_path):
  domains = load_domains("lowres2mnist", resolution=28, num_eval=10, manual_dir=REAL_MNIST,
                         data_dir=str(tmp_path))
  assert get_task("lowres2mnist").paired
  np.testing.assert_allclose(domains.eval_a, low_resolution(domains.eval_b), atol=1e-6)
  assert not np.allclose(domains.eval_a, domains.eval_b)
