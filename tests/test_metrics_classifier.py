"""Tests for jaxgan.metrics.classifier (MNIST classifier used as a metric network)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.metrics import classifier as C

MNIST_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")


@pytest.fixture(scope="module")
def digits_classifier():
  """A few hundred steps on the embedded 8x8 digits (resized to 28x28): offline and fast."""
  train_x, train_y = C.load_split("digits", "train")
  test_x, test_y = C.load_split("digits", "test")
  params = C.fit(train_x, train_y, config=C.TrainConfig(batch_size=64, seed=1), num_steps=150)
  return params, test_x, test_y


def test_training_reaches_well_above_chance(digits_classifier):
  params, test_x, test_y = digits_classifier
  assert len(test_x) == 300 and set(np.unique(test_y)) == set(range(10))
  acc = C.accuracy(C.predict_fn(params), test_x, test_y)
  assert acc > 0.7  # Chance is 0.1; this run reaches ~0.96.
  untrained = C.MnistClassifier().init(jax.random.key(0), test_x[:1])["params"]
  assert C.accuracy(C.predict_fn(untrained), test_x, test_y) < 0.35


def test_shapes_and_input_conversion(digits_classifier):
  params, test_x, _ = digits_classifier
  x = test_x[:8]
  logits, feats = C.predict_fn(params)(x), C.feature_fn(params)(x)
  assert logits.shape == (8, 10) and feats.shape == (8, 128) and feats.dtype == jnp.float32
  assert float(feats.min()) >= 0.0  # Post-ReLU features.
  # Grey stored as RGB gives the same result (the luma weights sum to 1).
  np.testing.assert_allclose(C.predict_fn(params)(np.repeat(x, 3, axis=-1)), logits,
                             rtol=1e-4, atol=1e-4)
  big = jax.image.resize(jnp.asarray(x), (8, 32, 32, 1), "linear")
  assert C.predict_fn(params)(big).shape == (8, 10)  # 32x32 GAN samples are resized.
  with pytest.raises(ValueError, match="channels"):
    C.preprocess(np.zeros((1, 28, 28, 2), np.float32))


def test_save_load_round_trip(digits_classifier, tmp_path):
  params, test_x, _ = digits_classifier
  trained = C.TrainedClassifier(params, C.MnistClassifier(),
                                {"dataset": "digits", "test_accuracy": 0.5,
                                 "architecture": C.MnistClassifier().architecture()})
  C.save_classifier(str(tmp_path / "clf"), trained)
  with open(tmp_path / "clf" / C.META_FILE) as f:
    assert json.load(f)["architecture"]["conv_features"] == [32, 64]
  loaded = C.load_classifier(str(tmp_path / "clf"))
  assert loaded.meta["dataset"] == "digits"
  np.testing.assert_array_equal(loaded.predict_fn()(test_x[:16]), trained.predict_fn()(test_x[:16]))
  np.testing.assert_array_equal(loaded.feature_fn()(test_x[:16]), trained.feature_fn()(test_x[:16]))
  with pytest.raises(FileExistsError):
    C.save_classifier(str(tmp_path / "clf"), trained)
  with pytest.raises(FileNotFoundError):
    C.load_classifier(str(tmp_path / "nothing"))


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(MNIST_DIR), reason="raw MNIST files not available")
def test_full_mnist_classifier_reaches_99_percent(tmp_path):
  trained = C.train_classifier("mnist", manual_dir=MNIST_DIR, out=str(tmp_path / "mnist"))
  assert trained.meta["num_test"] == 10000
  assert trained.meta["test_accuracy"] >= 0.99
  loaded = C.load_classifier(str(tmp_path / "mnist"))
  test_x, test_y = C.load_split("mnist", "test", manual_dir=MNIST_DIR)
  assert C.accuracy(loaded.predict_fn(), test_x, test_y) == trained.meta["test_accuracy"]
