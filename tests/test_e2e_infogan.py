"""Slow end-to-end InfoGAN run: the categorical code must carry information that Q can read back.

On the embedded digits (offline), a short run at half width must reach a Q accuracy on c1 far above
chance (0.1), and on raw MNIST (skipped when /work/shared/data/mnist is absent) with a classifier
trained in the test, the Hungarian accuracy of c1 vs the classifier's labels must beat chance clearly:
3x the same metric on independent codes and labels (~0.12 for 2000 samples, computed in the test).
Measured spread at 700 steps (2026-12-02, Intel 2-core, ``launch.py --steps=700 --num_eval_samples=2000``): seeds 0 / 1 /
2 gave 0.44 / 0.61 / 0.52, so a fixed 0.5 floor failed on seed-to-seed variation, not on a regression.
"""

import os

import numpy as np
import pytest

from jaxgan.config import Config
from jaxgan.train import train

MNIST_DIR = "/work/shared/data/mnist"


@pytest.mark.slow
def test_infogan_digits_code_is_recoverable(tmp_path):
  result = train(Config(arch="infogan", steps=300, width=32, num_eval_samples=1000,
                        workdir=str(tmp_path / "run")))
  assert result["q_categorical_accuracy"] > 0.8, result


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(MNIST_DIR), reason="raw MNIST files not available")
def test_infogan_mnist_categorical_code_matches_digit_classes(tmp_path):
  from jaxgan.metrics.classifier import train_classifier
  classifier_dir = str(tmp_path / "classifier")
  train_classifier("mnist", manual_dir=MNIST_DIR, out=classifier_dir)
  result = train(Config(arch="infogan", dataset="mnist", manual_dir=MNIST_DIR, steps=700,
                        num_eval_samples=2000, classifier_dir=classifier_dir,
                        workdir=str(tmp_path / "run")))
  assert result["q_categorical_accuracy"] > 0.9, result
  from jaxgan.recipes.infogan import hungarian_accuracy
  rng = np.random.default_rng(0)
  n = result["num_categorical_samples"]
  chance, _ = hungarian_accuracy(rng.integers(0, 10, n), rng.integers(0, 10, n), 10, 10)
  assert 0.1 <= chance < 0.2, chance
  assert result["categorical_accuracy"] > 3 * chance, (chance, result)
