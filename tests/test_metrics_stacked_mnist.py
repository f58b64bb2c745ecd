"""Tests for jaxgan.metrics.stacked_mnist, with an exact fake classifier (grey level -> digit)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.data import stacked_mnist as data_lib
from jaxgan.metrics import stacked_mnist as S

_LEVELS = jnp.linspace(-0.9, 0.9, 10)  # Digit d <-> constant grey level d.


@jax.jit
def fake_predict(images):
  """A 'classifier' whose logits peak at the digit whose grey level is the image mean."""
  mean = images.mean(axis=(1, 2, 3))
  return -100.0 * (mean[:, None] - _LEVELS[None, :]) ** 2


def _stack(triples, resolution=5):
  levels = np.asarray(_LEVELS, np.float32)[np.asarray(triples)]  # [B, 3]
  return np.broadcast_to(levels[:, None, None, :], (len(levels), resolution, resolution, 3)).copy()


def test_stacked_modes_reads_channels_in_rgb_order():
  triples = np.array([[1, 2, 3], [9, 0, 0], [0, 0, 7], [3, 2, 1]])
  np.testing.assert_array_equal(S.stacked_modes(fake_predict, _stack(triples)), [123, 900, 7, 321])


def test_mode_metrics_closed_forms():
  uniform = S.mode_metrics(np.full(1000, 26))
  assert uniform == {"modes": 1000, "kl": pytest.approx(0.0, abs=1e-12)}
  one = np.zeros(1000)
  one[17] = 5
  assert S.mode_metrics(one) == {"modes": 1, "kl": pytest.approx(np.log(1000))}
  two = np.zeros(1000)
  two[[3, 999]] = [1, 3]
  kl = 0.25 * np.log(0.25 * 1000) + 0.75 * np.log(0.75 * 1000)
  assert S.mode_metrics(two) == {"modes": 2, "kl": pytest.approx(kl)}
  with pytest.raises(ValueError):
    S.mode_metrics(np.zeros(1000))


def test_metrics_on_stacked_iterator_are_exact():
  labels = np.tile(np.arange(10, dtype=np.int32), 2)
  digits = (np.asarray(_LEVELS, np.float32)[labels][:, None, None, None]
            * np.ones((1, 5, 5, 1), np.float32), labels)
  make = lambda: data_lib.make_stacked_mnist_iterator(
      batch_size=64, seed=0, resolution=5, num_examples=2000, digits=digits)
  n = 1000  # Not a multiple of the batch size: the last batch is truncated.
  got = S.stacked_mnist_metrics(fake_predict, make(), num_samples=n)
  data = make()
  true = np.concatenate([next(data)["label"] for _ in range(16)])[:n]
  hist = np.bincount(true, minlength=1000)
  p = hist[hist > 0] / n
  assert got["num_samples"] == n
  assert got["modes"] == len(np.unique(true))
  assert got["kl"] == pytest.approx(np.sum(p * np.log(p * 1000)), rel=1e-12)
  with pytest.raises(ValueError, match="ran out"):
    S.stacked_mnist_metrics(fake_predict, [next(data)["image"]], num_samples=100)


def test_collapsed_generator():
  batches = [_stack(np.array([[4, 4, 2]] * 100)) for _ in range(3)]
  got = S.stacked_mnist_metrics(fake_predict, iter(batches), num_samples=260)
  assert got == {"modes": 1, "kl": pytest.approx(np.log(1000)), "num_samples": 260}
