"""Slow end-to-end InfoGAN run: the categorical code must carry information that Q can read back.

On the embedded digits (offline), a short run at half width must reach a Q accuracy on c1 far above
chance (0.1), and on raw MNIST (skipped when /work/shared/data/mnist is absent) with a classifier
trained in the test, the Hungarian accuracy of c1 vs the classifier's labels must beat chance clearly.
"""

import os

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
  assert result["categorical_accuracy"] > 0.5, result
