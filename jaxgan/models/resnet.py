"""ResNet generator/discriminator of SNGAN (Miyato et al. 2018, Table 4 / Appendix B.4) and WGAN-GP
(Gulrajani et al. 2017, Appendix F), with the conditional variants of Miyato & Koyama 2018
(categorical conditional BatchNorm in G, projection discriminator in D).

Layout (following the authors' Chainer code, ``pfnet-research/sngan_projection``, ``resnet_32.py``):

* G: ``z -> Dense -> [s, s, ch]`` -> ``n_up`` x ResBlockUp(ch) -> BN -> ReLU -> conv3x3(channels)
  -> tanh, where ResBlockUp = ``BN-ReLU-up2-conv3x3-BN-ReLU-conv3x3`` + ``conv1x1(up2(x))``.
  In conditional G the blocks' BNs are ``ConditionalBatchNorm``; the final BN is plain (as in the
  reference code).
* D: OptimizedBlock(ch) (``conv3x3-ReLU-conv3x3-avgpool`` + ``conv1x1(avgpool(x))``) ->
  ResBlockDown(ch) x (n_down - 1) -> ResBlock(ch) x 2 (no resampling, identity shortcut) -> ReLU ->
  global sum pool -> Dense(1). Conditional D adds ``<embed(y), phi(x)>`` (projection, eq. 3 of
  Miyato & Koyama 2018). With ``spectral_norm`` every Dense/Conv/Embed of D is spectrally normalised.

Supported ``resolution`` (all blocks have constant width ``ch``):

====  ========================  ======================================================
res   G                         D (spatial size after each block)
====  ========================  ======================================================
28    7x7 start, 2 up-blocks    28 -> 14 (opt) -> 7 (down) -> 7 -> 7
32    4x4 start, 3 up-blocks    32 -> 16 (opt) -> 8 (down) -> 8 -> 8   (SNGAN CIFAR-10)
64    4x4 start, 4 up-blocks    64 -> 32 (opt) -> 16 -> 8 (down) -> 8 -> 8
====  ========================  ======================================================

The 64 variant is a constant-width extension, not SNGAN's channel-multiplier 64x64 model.
Initialisers follow the reference code: Glorot-uniform with gain sqrt(2) for 3x3 convs of the blocks,
Glorot-uniform (gain 1) elsewhere, zero biases.

``dtype`` is the computation dtype of every layer (e.g. bfloat16); parameters, BatchNorm statistics and
spectral norm's power iteration stay float32, and the outputs (images, logits) are float32.
"""

from __future__ import annotations

from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models.normalization import ConditionalBatchNorm, spectral_norm

Array = jax.Array

# resolution -> (start spatial size, number of 2x up-blocks) for G.
_G_LAYOUT: dict[int, tuple[int, int]] = {28: (7, 2), 32: (4, 3), 64: (4, 4)}
# resolution -> number of 2x down-sampling blocks in D (including the OptimizedBlock).
_D_LAYOUT: dict[int, int] = {28: 2, 32: 2, 64: 3}
# Number of non-resampling ResBlocks after the down blocks (SNGAN CIFAR: blocks 3 and 4).
_D_PLAIN_BLOCKS = 2

_glorot = nn.initializers.glorot_uniform()
# Chainer's GlorotUniform(scale=sqrt(2)) multiplies the uniform bound by sqrt(2) -> variance x2.
_glorot_relu = nn.initializers.variance_scaling(2.0, "fan_avg", "uniform")


def _check_resolution(resolution: int, layouts: dict) -> None:
    if resolution not in layouts:
        raise ValueError(
            f"ResNet GAN supports resolution in {sorted(layouts)}; got {resolution}."
        )


def _upsample(x: Array) -> Array:
    """Nearest-neighbour 2x upsampling of NHWC images."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _downsample(x: Array) -> Array:
    """2x2 average pooling, stride 2 (NHWC)."""
    return nn.avg_pool(x, (2, 2), strides=(2, 2))


def _conv(features: int, kernel: int, init: nn.initializers.Initializer, name: str, dtype: Any) -> nn.Conv:
    return nn.Conv(features, (kernel, kernel), padding="SAME", kernel_init=init, dtype=dtype, name=name)


class _GBlock(nn.Module):
    """Pre-activation up-sampling residual block of the generator."""

    features: int
    num_classes: int | None
    bn_momentum: float
    axis_name: str | None = None
    dtype: Any = jnp.float32

    def _bn(self, x: Array, labels: Array | None, train: bool, name: str) -> Array:
        if self.num_classes is None:
            return nn.BatchNorm(
                use_running_average=not train, momentum=self.bn_momentum,
                axis_name=self.axis_name, dtype=self.dtype, name=name
            )(x)
        return ConditionalBatchNorm(self.num_classes, momentum=self.bn_momentum,
                                    axis_name=self.axis_name, dtype=self.dtype, name=name)(
            x, labels, train=train
        )

    @nn.compact
    def __call__(self, x: Array, labels: Array | None, *, train: bool) -> Array:
        h = nn.relu(self._bn(x, labels, train, "bn1"))
        h = _conv(self.features, 3, _glorot_relu, "conv1", self.dtype)(_upsample(h))
        h = nn.relu(self._bn(h, labels, train, "bn2"))
        h = _conv(self.features, 3, _glorot_relu, "conv2", self.dtype)(h)
        sc = _conv(self.features, 1, _glorot, "shortcut", self.dtype)(_upsample(x))
        return h + sc


class ResNetGenerator(nn.Module):
    """SNGAN / WGAN-GP ResNet generator: ``z [B, latent_dim] -> images [B, res, res, channels]``.

    ``ch=256`` is SNGAN's CIFAR-10 width (WGAN-GP uses 128). ``num_classes`` switches the blocks'
    BatchNorms to ``ConditionalBatchNorm`` (labels then required).
    """

    resolution: int = 32
    latent_dim: int = 128
    ch: int = 256
    channels: int = 3
    num_classes: int | None = None
    bn_momentum: float = 0.9
    axis_name: str | None = None  # pmap axis: BatchNorm statistics over all devices' batches
    dtype: Any = jnp.float32  # computation dtype; params, BatchNorm statistics and images stay float32

    @nn.compact
    def __call__(self, z: Array, labels: Array | None = None, *, train: bool) -> Array:
        _check_resolution(self.resolution, _G_LAYOUT)
        chex.assert_shape(z, (None, self.latent_dim))
        if self.num_classes is not None:
            if labels is None:
                raise ValueError("Conditional ResNetGenerator requires labels.")
            chex.assert_shape(labels, (z.shape[0],))
        else:
            labels = None
        start, n_up = _G_LAYOUT[self.resolution]
        h = nn.Dense(start * start * self.ch, kernel_init=_glorot, dtype=self.dtype, name="dense")(z)
        h = h.reshape(z.shape[0], start, start, self.ch)
        for i in range(n_up):
            h = _GBlock(self.ch, self.num_classes, self.bn_momentum, self.axis_name, self.dtype,
                        name=f"block{i}")(
                h, labels, train=train
            )
        h = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                         axis_name=self.axis_name, dtype=self.dtype, name="bn_out")(h)
        h = _conv(self.channels, 3, _glorot, "conv_out", self.dtype)(nn.relu(h))
        out = jnp.tanh(h).astype(jnp.float32)
        chex.assert_shape(out, (z.shape[0], self.resolution, self.resolution, self.channels))
        return out


class _DBlock(nn.Module):
    """Residual block of the discriminator.

    ``optimized=True`` is SNGAN's first block (no pre-activation, avg-pool before the 1x1 shortcut
    conv); otherwise a pre-activation block, optionally down-sampling (1x1 shortcut conv then
    avg-pool); the shortcut is the identity when neither resampling nor a width change happens.
    """

    features: int
    downsample: bool
    optimized: bool
    use_sn: bool
    sn_steps: int
    dtype: Any = jnp.float32

    def _conv(self, train: bool, features: int, kernel: int, init, name: str):
        return spectral_norm(
            _conv(features, kernel, init, name, self.dtype), enabled=self.use_sn, train=train,
            n_steps=self.sn_steps
        )

    @nn.compact
    def __call__(self, x: Array, *, train: bool) -> Array:
        h = x if self.optimized else nn.relu(x)
        h = self._conv(train, self.features, 3, _glorot_relu, "conv1")(h)
        h = self._conv(train, self.features, 3, _glorot_relu, "conv2")(nn.relu(h))
        if self.downsample:
            h = _downsample(h)
        if self.optimized:
            sc = self._conv(train, self.features, 1, _glorot, "shortcut")(_downsample(x))
        elif self.downsample or x.shape[-1] != self.features:
            sc = self._conv(train, self.features, 1, _glorot, "shortcut")(x)
            if self.downsample:
                sc = _downsample(sc)
        else:
            sc = x
        return h + sc


class ResNetDiscriminator(nn.Module):
    """SNGAN / WGAN-GP ResNet discriminator: ``x [B, res, res, C] -> logits [B]`` (no sigmoid).

    ``spectral_norm=True`` (SNGAN) normalises every conv/dense/embedding with flax's SpectralNorm
    (``sn_power_iterations`` power iterations per call; ``u`` updated only when ``train=True``, in
    ``'batch_stats'``, so pass ``mutable=['batch_stats']`` then). ``spectral_norm=False`` gives the
    plain WGAN-GP critic. ``num_classes`` enables the projection discriminator.
    """

    resolution: int = 32
    ch: int = 128
    channels: int = 3
    num_classes: int | None = None
    spectral_norm: bool = True
    sn_power_iterations: int = 1
    dtype: Any = jnp.float32  # computation dtype; params, spectral norm statistics and logits stay float32

    @nn.compact
    def __call__(self, x: Array, labels: Array | None = None, *, train: bool) -> Array:
        _check_resolution(self.resolution, _D_LAYOUT)
        chex.assert_shape(x, (None, self.resolution, self.resolution, self.channels))
        batch = x.shape[0]
        if self.num_classes is not None:
            if labels is None:
                raise ValueError("Conditional ResNetDiscriminator requires labels.")
            chex.assert_shape(labels, (batch,))
        n_down = _D_LAYOUT[self.resolution]
        specs = [(True, True)] + [(True, False)] * (n_down - 1) + [(False, False)] * _D_PLAIN_BLOCKS
        h = x
        for i, (down, optimized) in enumerate(specs):
            h = _DBlock(
                self.ch, down, optimized, self.spectral_norm, self.sn_power_iterations, self.dtype,
                name=f"block{i}"
            )(h, train=train)
        phi = jnp.sum(nn.relu(h), axis=(1, 2))  # global sum pooling -> [B, ch]
        sn = dict(enabled=self.spectral_norm, train=train, n_steps=self.sn_power_iterations)
        dense = nn.Dense(1, kernel_init=_glorot, dtype=self.dtype, name="dense")
        logits = spectral_norm(dense, **sn)(phi)[:, 0]
        if self.num_classes is not None:
            embed = nn.Embed(self.num_classes, self.ch, embedding_init=_glorot, dtype=self.dtype,
                             name="embed")
            logits = logits + jnp.sum(spectral_norm(embed, **sn)(labels) * phi, axis=-1)
        chex.assert_shape(logits, (batch,))
        return logits.astype(jnp.float32)
