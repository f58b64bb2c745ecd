"""Sampling from a trained generator and the end-of-run evaluation written to ``eval.json``.

Image runs (``evaluate_images``) are measured offline, with networks the user supplies:

* ``--classifier_dir`` (a classifier saved by ``python -m jaxgan.metrics.classifier``): on its
  penultimate features, ``classifier_fid``, ``kid`` (+ ``kid_std``), ``precision``, ``recall``,
  ``density``, ``coverage`` of ``num_eval_samples`` generated vs as many real training images
  (``jaxgan.metrics.features``); for conditional models ``conditional_accuracy`` (the classifier's
  accuracy on samples generated for each requested class, classes in turn); for
  ``--dataset=stacked_mnist`` ``modes`` and ``kl`` on 26,000 samples, each channel classified
  (VEEGAN/PacGAN protocol, ``jaxgan.metrics.stacked_mnist``; conditional: all three digits right).
* ``--inception_weights``: ``inception_fid`` (Inception-v3 pool3, ``jaxgan.metrics.inception``).

Metrics that cannot be computed are listed in ``metrics_skipped`` (name -> reason) instead of failing
the run. Images are generated and featurised in fixed-size jitted batches and never all held in memory.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from jaxgan.data.toy import ToyMixture
from jaxgan.metrics import features as features_lib
from jaxgan.metrics import stacked_mnist as stacked_lib
from jaxgan.metrics.toy import toy_metrics
from jaxgan.state import KEY_SAMPLES, GANState

Array = jax.Array
STACKED_MNIST = "stacked_mnist"


def params_sha256(params: Any) -> str:
  """SHA-256 of the parameters' bytes, leaves in pytree order (a fingerprint for reproducibility)."""
  digest = hashlib.sha256()
  for leaf in jax.tree_util.tree_leaves(jax.device_get(params)):
    leaf = np.ascontiguousarray(leaf)
    digest.update(str(leaf.dtype).encode())
    digest.update(str(leaf.shape).encode())
    digest.update(leaf.tobytes())
  return digest.hexdigest()


@functools.partial(jax.jit, static_argnames=("apply_fn",))
def _generate(apply_fn, params, batch_stats, z: Array, labels: Array | None) -> Array:
  return apply_fn({"params": params, "batch_stats": batch_stats}, z, labels, train=False)


def generate(state: GANState, z: Array, labels: Array | None = None, *, use_ema: bool = False,
             batch_size: int = 1000) -> np.ndarray:
  """G(z) in inference mode (running BatchNorm statistics), in chunks; EMA params if ``use_ema``.

  The EMA generator uses the running statistics of the trained generator (as most libraries do).
  """
  params = state.g_ema_params if use_ema else state.g_params
  out = []
  for start in range(0, z.shape[0], batch_size):
    chunk_labels = None if labels is None else labels[start:start + batch_size]
    out.append(np.asarray(_generate(state.g_apply, params, state.g_batch_stats,
                                    z[start:start + batch_size], chunk_labels)))
  return np.concatenate(out)


def eval_latents(state: GANState, num: int, latent_dim: int, num_classes: int | None
                 ) -> tuple[Array, Array | None]:
  """A fixed evaluation batch of latents (and uniform labels), derived from the run's key."""
  z_key, label_key = jax.random.split(jax.random.fold_in(state.key, KEY_SAMPLES))
  z = jax.random.normal(z_key, (num, latent_dim), jnp.float32)
  labels = jax.random.randint(label_key, (num,), 0, num_classes, jnp.int32) if num_classes else None
  return z, labels


def evaluate_toy(state: GANState, dataset: ToyMixture, *, num_samples: int, latent_dim: int,
                 use_ema: bool) -> tuple[dict[str, float], np.ndarray]:
  """PacGAN's toy metrics on ``num_samples`` generated points; returns (metrics, samples)."""
  z, _ = eval_latents(state, num_samples, latent_dim, None)
  samples = generate(state, z, use_ema=use_ema)
  return toy_metrics(samples, dataset), samples


EVAL_BATCH = 250  # Images per jitted generator / feature call (one compile for every batch).
CLASSIFIER_METRICS = ("classifier_fid", "kid", "precision", "recall", "density", "coverage")
# Latent streams of the evaluation (folded into fold_in(key, KEY_SAMPLES)); fixed_z uses the base key.
_STREAM_FEATURES, _STREAM_CONDITIONAL, _STREAM_STACKED = 1, 2, 3


def generated_batches(state: GANState, *, num: int, latent_dim: int, num_classes: int | None,
                      use_ema: bool, stream: int, per_class: bool = False,
                      batch_size: int = EVAL_BATCH) -> Iterator[dict[str, np.ndarray]]:
  """Yields ``{"image", "label"}`` batches of G's samples until ``num`` were produced (last one full).

  Latents of batch i come from ``fold_in(fold_in(fold_in(key, KEY_SAMPLES), stream), i)``, so every
  evaluation draws the same samples from the same params. Labels (conditional models) are uniform at
  random, or ``0, 1, 2, ...`` cyclically when ``per_class`` (each class requested equally often).
  """
  base = jax.random.fold_in(jax.random.fold_in(state.key, KEY_SAMPLES), stream)
  params = state.g_ema_params if use_ema else state.g_params
  for i, start in enumerate(range(0, num, batch_size)):
    z_key, label_key = jax.random.split(jax.random.fold_in(base, i))
    z = jax.random.normal(z_key, (batch_size, latent_dim), jnp.float32)
    labels = None
    if num_classes and per_class:
      labels = jnp.asarray((start + np.arange(batch_size)) % num_classes, jnp.int32)
    elif num_classes:
      labels = jax.random.randint(label_key, (batch_size,), 0, num_classes, jnp.int32)
    images = _generate(state.g_apply, params, state.g_batch_stats, z, labels)
    yield {"image": images, "label": labels}


def real_batches(config: Any, batch_size: int = EVAL_BATCH) -> Iterator[dict[str, np.ndarray]]:
  """The run's training data at its resolution, in a fixed shuffled order (seed ``config.seed``)."""
  from jaxgan.data.images import make_image_iterator  # pylint: disable=import-outside-toplevel
  return make_image_iterator(
      None if config.dataset == "digits" else config.dataset, batch_size=batch_size,
      resolution=config.resolution, seed=config.seed, data_dir=config.data_dir,
      manual_dir=config.manual_dir, download=config.download)


def _conditional_accuracy(predict: Callable[[Array], Array], batches: Iterable[dict[str, Any]],
                          num: int, *, stacked: bool) -> float:
  """Fraction of the first ``num`` samples whose predicted class is the requested one."""
  correct = seen = 0
  for batch in batches:
    take = min(num - seen, batch["image"].shape[0])
    if stacked:
      predicted = stacked_lib.stacked_modes(predict, batch["image"])
    else:
      predicted = np.asarray(jnp.argmax(predict(batch["image"]), axis=-1))
    correct += int(np.sum(predicted[:take] == np.asarray(batch["label"])[:take]))
    seen += take
    if seen >= num:
      break
  return correct / seen


def _classifier_metrics(state: GANState, config: Any, classifier: Any, *, num_classes: int | None,
                        use_ema: bool, stacked_samples: int,
                        skipped: dict[str, str]) -> dict[str, Any]:
  """The metrics of the saved classifier (see the module docstring)."""
  result: dict[str, Any] = {"classifier_dataset": classifier.meta.get("dataset"),
                            "classifier_test_accuracy": classifier.meta.get("test_accuracy")}
  num = config.num_eval_samples
  gen = functools.partial(generated_batches, state, latent_dim=config.latent_dim,
                          num_classes=num_classes, use_ema=use_ema)
  stacked = config.dataset == STACKED_MNIST
  if stacked:
    reason = ("Stacked MNIST is measured by modes/kl (each channel classified); the classifier's "
              "features are defined for one-digit images")
    skipped.update({name: reason for name in CLASSIFIER_METRICS})
    modes = stacked_lib.stacked_mnist_metrics(
        classifier.predict_fn(), gen(num=stacked_samples, stream=_STREAM_STACKED),
        num_samples=stacked_samples)
    result.update({"modes": modes["modes"], "kl": modes["kl"], "modes_num_samples": stacked_samples})
  else:
    metrics = features_lib.compute_feature_metrics(
        classifier.feature_fn(), real_batches(config), gen(num=num, stream=_STREAM_FEATURES), num,
        seed=config.seed)
    result.update({"classifier_fid": metrics["fd"], "kid": metrics["kid_mean"],
                   "kid_std": metrics["kid_std"], "precision": metrics["precision"],
                   "recall": metrics["recall"], "density": metrics["density"],
                   "coverage": metrics["coverage"]})
  if num_classes:
    classes = classifier.module.num_classes
    if stacked or classes == num_classes:
      result["conditional_accuracy"] = _conditional_accuracy(
          classifier.predict_fn(), gen(num=num, stream=_STREAM_CONDITIONAL, per_class=True), num,
          stacked=stacked)
    else:
      skipped["conditional_accuracy"] = (f"the classifier has {classes} classes, the model "
                                         f"{num_classes}; use a classifier of --dataset={config.dataset}")
  return result


def evaluate_images(state: GANState, config: Any, *, num_classes: int | None, use_ema: bool,
                    stacked_samples: int = stacked_lib.DEFAULT_NUM_SAMPLES) -> dict[str, Any]:
  """End-of-run metrics of an image GAN (merged into eval.json); see the module docstring.

  Args:
    state: the final GANState (on the host).
    config: the resolved run config (dataset, resolution, latent_dim, num_eval_samples, seed,
      data location, classifier_dir, inception_weights).
    num_classes: the model's number of classes (None for unconditional models).
    use_ema: evaluate the EMA generator.
    stacked_samples: samples for Stacked MNIST modes/kl (the protocol's 26,000; tests use fewer).
  """
  result: dict[str, Any] = {}
  skipped: dict[str, str] = {}
  stacked = config.dataset == STACKED_MNIST
  classifier_names = (("modes", "kl") if stacked else CLASSIFIER_METRICS) + (
      ("conditional_accuracy",) if num_classes else ())
  classifier = None
  if not config.classifier_dir:
    reason = ("no --classifier_dir: train one with python -m jaxgan.metrics.classifier "
              "--dataset=mnist --manual_dir=DIR --out=DIR and pass --classifier_dir=DIR")
    skipped.update({name: reason for name in classifier_names})
  else:
    from jaxgan.metrics import classifier as classifier_lib  # pylint: disable=import-outside-toplevel
    try:
      classifier = classifier_lib.load_classifier(config.classifier_dir)
    except (FileNotFoundError, ValueError, KeyError) as e:
      logging.warning("Image metrics skipped: cannot load --classifier_dir=%s: %s", config.classifier_dir, e)
      skipped.update({name: f"cannot load --classifier_dir={config.classifier_dir}: {e}"
                      for name in classifier_names})
  if classifier is not None:
    result.update(_classifier_metrics(state, config, classifier, num_classes=num_classes,
                                      use_ema=use_ema, stacked_samples=stacked_samples,
                                      skipped=skipped))
  if not config.inception_weights:
    skipped["inception_fid"] = ("no --inception_weights: pass an Inception-v3 FID weights file "
                                "(see jaxgan/metrics/inception.py; nothing is downloaded)")
  else:
    from jaxgan.metrics import inception  # pylint: disable=import-outside-toplevel
    num = config.num_eval_samples
    feature_fn = inception.inception_feature_fn(config.inception_weights)
    fake = generated_batches(state, num=num, latent_dim=config.latent_dim, num_classes=num_classes,
                             use_ema=use_ema, stream=_STREAM_FEATURES)
    real = features_lib.collect_features(feature_fn, real_batches(config), num)
    fake = features_lib.collect_features(feature_fn, fake, num)
    result["inception_fid"] = features_lib.frechet_distance_from_stats(real.stats, fake.stats)
  if skipped:
    result["metrics_skipped"] = skipped
  return result
