"""Normalisation layers for GAN models.

* ``ConditionalBatchNorm``: categorical conditional batch norm (de Vries et al. 2017; Dumoulin et al.
  2017), as used by the conditional SNGAN generator (Miyato & Koyama 2018): a BatchNorm without affine
  parameters followed by a per-class scale gamma[y] and shift beta[y].
* ``spectral_norm``: optionally wraps a Dense/Conv/Embed in ``flax.linen.SpectralNorm`` (Miyato et al.
  2018, Alg. 1: one power iteration per call, W / sigma(W) with u, v treated as constants for the
  gradient); ``SpectralNorm`` only fixes flax's init so the raw weights keep their initialiser's scale.

Mutable statistics (BatchNorm running mean/var, SpectralNorm's ``u`` vector and ``sigma``) all live in
the ``'batch_stats'`` collection and are only updated when ``train=True``. Both stay float32 under a
bfloat16 compute dtype: ``ConditionalBatchNorm`` normalises in float32 and casts its output to ``dtype``;
``spectral_norm`` runs the power iteration on the float32 parameters and the wrapped layer casts the
normalised weights to its own ``dtype``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array


class ConditionalBatchNorm(nn.Module):
    """Batch norm without affine params + class-conditional scale/bias embeddings.

    ``y = gamma[label] * (x - mean) / sqrt(var + eps) + beta[label]``, normalising over all axes
    but the last (channel) one. ``gamma`` is initialised to 1 and ``beta`` to 0, so at init the layer
    equals ``nn.BatchNorm(use_scale=False, use_bias=False)``.

    Attributes:
      num_classes: number of classes (rows of the gamma/beta embeddings).
      momentum: running-average decay; 0.9 matches Chainer/PyTorch defaults used by SNGAN
        (flax's default is 0.99).
      epsilon: added to the variance.
      axis_name: pmap axis to compute batch statistics over all devices (None = this device's batch).
      dtype: dtype of the output. Statistics, normalisation and the class-conditional affine run in
        float32 whatever ``dtype`` is (a bfloat16 mean/variance loses too much precision).
    """

    num_classes: int
    momentum: float = 0.9
    epsilon: float = 1e-5
    axis_name: str | None = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, labels: Array, *, train: bool) -> Array:
        chex.assert_rank(labels, 1)
        chex.assert_equal(labels.shape[0], x.shape[0])
        features = x.shape[-1]
        h = nn.BatchNorm(
            use_running_average=not train,
            momentum=self.momentum,
            epsilon=self.epsilon,
            use_scale=False,
            use_bias=False,
            axis_name=self.axis_name,
            dtype=jnp.float32,
            name="bn",
        )(x)
        gamma = nn.Embed(
            self.num_classes, features, embedding_init=nn.initializers.ones, name="scale"
        )(labels)
        beta = nn.Embed(
            self.num_classes, features, embedding_init=nn.initializers.zeros, name="bias"
        )(labels)
        # Broadcast [B, C] over the spatial axes of [B, ..., C].
        bshape = (x.shape[0],) + (1,) * (x.ndim - 2) + (features,)
        return (h * gamma.reshape(bshape) + beta.reshape(bshape)).astype(self.dtype)


class SpectralNorm(nn.SpectralNorm):
    """``flax.linen.SpectralNorm`` that stores the *raw* initial weights.

    In flax 0.12.8, ``nn.SpectralNorm.init`` writes the already-normalised weights
    ``W / sigma_hat(u0)`` (one power iteration from the random ``u0``) into ``'params'``, because its
    ``map_variables(..., init=True)`` writes the mapped view back. The forward pass is scale invariant,
    but the raw scale sets the effective step size of the optimiser on ``W`` (SNGAN keeps the Glorot
    init of the raw ``W``). So at init we create the wrapped layer's params and the ``u``/``sigma``
    statistics directly (same names, same RNG streams as flax); apply is flax's unchanged. The value
    returned by ``init`` uses the raw weights.
    """

    @nn.compact
    def __call__(self, *args: Any, update_stats: bool, **kwargs: Any) -> Any:
        if not self.is_initializing():
            return super().__call__(*args, update_stats=update_stats, **kwargs)
        # Hand-written because flax's init path stores normalised weights (see class docstring).
        out = self.layer_instance(*args, **kwargs)
        params = {"params": self.layer_instance.variables["params"]}
        jax.tree_util.tree_map_with_path(
            functools.partial(self._spectral_normalize, update_stats=False), params
        )
        return out


def spectral_norm(
    layer: nn.Module, *, enabled: bool, train: bool, n_steps: int = 1
) -> Callable[..., Any]:
    """Return a callable applying ``layer``, spectrally normalised if ``enabled``.

    Must be called inside a parent's ``@nn.compact`` method. Uses (a raw-init fix of)
    ``flax.linen.SpectralNorm``, which normalises every parameter of ``layer`` with ndim >= 2 (kernels
    reshaped to ``[-1, out]``, embeddings ``[num_classes, features]``), leaves biases alone, keeps the
    wrapped layer's params under the parent's scope (under ``layer.name``) and stores
    ``<layer>/<param>/u`` and ``.../sigma`` in the ``'batch_stats'`` collection of a submodule named
    ``<layer.name>_sn``. ``update_stats=train``: with ``train=False`` it still runs ``n_steps`` power
    iterations from the stored ``u`` (deterministic) but writes nothing back. With ``train=True`` the
    caller must pass ``mutable=['batch_stats']``; every call updates ``u`` once (so a D applied to real
    and fake batches separately advances the power iteration twice per step).
    """
    if not enabled:
        return layer
    wrapped = SpectralNorm(layer, n_steps=n_steps, name=f"{layer.name}_sn")

    def call(*args: Any, **kwargs: Any) -> Any:
        return wrapped(*args, update_stats=train, **kwargs)

    return call
