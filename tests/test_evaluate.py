"""Tests for jaxgan.evaluate.evaluate_images: metrics with a tiny saved classifier, skips, Stacked MNIST.

The classifier is a small ``MnistClassifier`` initialised (not trained) in the test: the checks are of
the wiring (which samples, which labels, which params), so they use generators whose outcome is known
exactly, e.g. a collapsed generator (all parameters zero: every sample is the same constant image).
"""

import json
import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import evaluate
from jaxgan import train as train_lib
from jaxgan.config import Config
from jaxgan.metrics import classifier as classifier_lib
from jaxgan.metrics import features as features_lib
from jaxgan.recipes import gan as gan_recipe

_TINY = classifier_lib.MnistClassifier(conv_features=(4, 8), hidden=16)


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
  """A randomly initialised tiny classifier saved as ``python -m jaxgan.metrics.classifier`` would."""
  params = _TINY.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"]
  path = str(tmp_path_factory.mktemp("classifier"))
  meta = {"dataset": "digits", "test_accuracy": 0.1, "architecture": _TINY.architecture()}
  classifier_lib.save_classifier(path, classifier_lib.TrainedClassifier(params, _TINY, meta),
                                 overwrite=True)
  return path


def _config(**overrides):
  values = dict(arch="dcgan", dataset="digits", width=8, latent_dim=8, resolution=28,
                num_eval_samples=200)
  values.update(overrides)
  return Config(**values).resolve()


def _state(config, num_classes, channels=1):
  source = types.SimpleNamespace(example_shape=(28, 28, channels), num_classes=num_classes)
  return gan_recipe.create_state(config, source)


def _collapse(state):
  """Every kernel, bias and BN scale 0: G(z) = tanh(0) = 0 for every z (one constant image)."""
  return state.replace(g_params=jax.tree.map(jnp.zeros_like, state.g_params))


# States are created once per module: initialising a DCGAN eagerly costs seconds of dispatch.
@pytest.fixture(scope="module")
def conditional_state():
  return _state(_config(conditional=True), 10)


@pytest.fixture(scope="module")
def unconditional_state():
  return _state(_config(), None)


def test_without_classifier_every_metric_is_listed_as_skipped(conditional_state):
  config = _config(conditional=True)
  result = evaluate.evaluate_images(conditional_state, config, num_classes=10, use_ema=False)
  skipped = result.pop("metrics_skipped")
  assert result == {}
  assert set(skipped) == {*evaluate.CLASSIFIER_METRICS, "conditional_accuracy", "inception_fid"}
  assert "--classifier_dir" in skipped["classifier_fid"]
  assert "--inception_weights" in skipped["inception_fid"]


def test_unreadable_classifier_dir_is_skipped_with_the_reason(unconditional_state, tmp_path):
  config = _config(classifier_dir=str(tmp_path / "missing"))
  result = evaluate.evaluate_images(unconditional_state, config, num_classes=None, use_ema=False)
  assert "conditional_accuracy" not in result["metrics_skipped"]
  assert "cannot load" in result["metrics_skipped"]["classifier_fid"]
  assert "classifier_fid" not in result


def test_collapsed_conditional_generator(conditional_state, classifier_dir):
  config = _config(conditional=True, classifier_dir=classifier_dir)
  state = _collapse(conditional_state)
  result = evaluate.evaluate_images(state, config, num_classes=10, use_ema=False)
  assert set(result["metrics_skipped"]) == {"inception_fid"}
  assert result["classifier_dataset"] == "digits"
  # One image for every requested class: the prediction is right for exactly one class in ten.
  assert result["conditional_accuracy"] == pytest.approx(0.1)
  # No real image lies in the zero-radius balls around the (identical) fakes.
  assert result["recall"] == 0.0
  assert result["coverage"] <= 0.05
  assert 0.0 <= result["precision"] <= 1.0
  assert result["classifier_fid"] > 0 and math.isfinite(result["kid"])
  # The same state gives the same numbers (latents derive from the run's key).
  again = evaluate.evaluate_images(state, config, num_classes=10, use_ema=False)
  assert again == result


def test_ema_params_are_the_ones_evaluated(unconditional_state, classifier_dir):
  config = _config(classifier_dir=classifier_dir)
  trained = unconditional_state
  collapsed = _collapse(trained)
  with_ema = collapsed.replace(g_ema_params=trained.g_params)
  raw = evaluate.evaluate_images(trained, config, num_classes=None, use_ema=False)
  ema = evaluate.evaluate_images(with_ema, config, num_classes=None, use_ema=True)
  dead = evaluate.evaluate_images(with_ema, config, num_classes=None, use_ema=False)
  assert ema == raw
  assert dead["recall"] == 0.0 and dead["classifier_fid"] != raw["classifier_fid"]


def test_feature_metrics_match_a_direct_computation(unconditional_state, classifier_dir):
  config = _config(classifier_dir=classifier_dir, num_eval_samples=300)
  state = unconditional_state
  result = evaluate.evaluate_images(state, config, num_classes=None, use_ema=False)
  feature_fn = classifier_lib.load_classifier(classifier_dir).feature_fn()
  fake = np.concatenate([np.asarray(feature_fn(b["image"])) for b in evaluate.generated_batches(
      state, num=300, latent_dim=8, num_classes=None, use_ema=False, stream=1)])[:300]
  real_data = evaluate.real_batches(config)
  real = np.concatenate([np.asarray(feature_fn(next(real_data)["image"])) for _ in range(2)])[:300]
  assert fake.shape == real.shape == (300, 16)
  stats = lambda x: (x.mean(0), np.cov(x, rowvar=False))  # noqa: E731
  fd = features_lib.frechet_distance(*stats(real), *stats(fake))
  assert result["classifier_fid"] == pytest.approx(fd, rel=1e-4)
  prdc = features_lib.precision_recall_density_coverage(real, fake)
  for key, value in prdc.items():
    assert result[key] == pytest.approx(value)


def test_stacked_mnist_modes_and_kl(classifier_dir):
  # No MNIST is read: modes and kl use generated samples only.
  config = _config(dataset="stacked_mnist", classifier_dir=classifier_dir, conditional=True,
                   num_eval_samples=1000)
  state = _state(config, 1000, channels=3)
  collapsed = evaluate.evaluate_images(_collapse(state), config, num_classes=1000, use_ema=False,
                                       stacked_samples=500)
  assert collapsed["modes"] == 1 and collapsed["kl"] == pytest.approx(math.log(1000))
  assert collapsed["modes_num_samples"] == 500
  assert collapsed["conditional_accuracy"] == pytest.approx(0.001)  # 1 of the 1000 requested triples.
  assert "classifier_fid" in collapsed["metrics_skipped"]
  spread = evaluate.evaluate_images(state, config, num_classes=1000,
                                    use_ema=False, stacked_samples=500)
  assert spread["modes"] >= 1 and 0 <= spread["kl"] <= math.log(1000) + 1e-9


def test_inception_fid_uses_the_weights_file(unconditional_state, monkeypatch):
  from jaxgan.metrics import inception
  seen = []
  features = jax.jit(lambda x: jnp.concatenate([jnp.mean(x, axis=(1, 2)), jnp.std(x, axis=(1, 2))], 1))

  def fake_feature_fn(path):
    seen.append(path)
    return features

  monkeypatch.setattr(inception, "inception_feature_fn", fake_feature_fn)
  config = _config(inception_weights="/weights.npz")
  dead = evaluate.evaluate_images(_collapse(unconditional_state), config, num_classes=None,
                                  use_ema=False)
  assert seen == ["/weights.npz"]
  assert "inception_fid" not in dead["metrics_skipped"]
  # Identical fakes have features 0 and covariance 0: FD = |mu_real|^2 + Tr(Sigma_real).
  data = evaluate.real_batches(config)
  real = np.concatenate([np.asarray(features(next(data)["image"])) for _ in range(1)])[:200]
  expected = float(np.sum(real.mean(0) ** 2) + np.trace(np.cov(real, rowvar=False)))
  assert dead["inception_fid"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow  # A (2-step) training run: compiling the DCGAN step dominates.
def test_training_writes_the_image_metrics_to_eval_json(classifier_dir, tmp_path):
  config = Config(arch="dcgan", dataset="digits", width=8, latent_dim=8, steps=2, batch_size=16,
                  num_eval_samples=100, classifier_dir=classifier_dir, workdir=str(tmp_path / "run"))
  result = train_lib.train(config)
  saved = json.loads((tmp_path / "run" / "eval.json").read_text())
  assert saved == result
  for key in evaluate.CLASSIFIER_METRICS:
    assert math.isfinite(saved[key])
  assert set(saved["metrics_skipped"]) == {"inception_fid"}
