"""DCGAN generator and discriminator (Radford, Metz & Chintala 2016), pytorch/examples ``dcgan`` layout.

At 64x64 the networks reproduce pytorch/examples/dcgan/main.py layer for layer (3,576,704 G and
2,765,568 D parameters for nz=100, ngf=ndf=64, nc=3):

* G: z -> [ConvT(nz, 8ngf, 4, 1, 0) == dense to 4x4x8ngf] BN ReLU -> ConvT(4, 2, 1) 8->16 (4ngf) BN ReLU
  -> 16->32 (2ngf) -> 32->64 (ngf) ... -> last ConvT to ``channels``, tanh (no BN).
* D: Conv(4, 2, 1) to ndf, LeakyReLU(0.2) (no BN) -> Conv(4, 2, 1) 2ndf / 4ndf / 8ndf with BN + LeakyReLU
  -> Conv(4, 1, 0) to 1 logit. All convs bias-free, weights N(0, 0.02), BN scale N(1, 0.02), bias 0.

Other resolutions: ``resolution = start * 2**n`` where ``start`` is the first size in 4..7 reached by
halving (64 -> 4, n=4; 32 -> 4, n=3; 28 -> 7, n=2; 48 -> 6, n=3). G projects to ``start x start`` with
``ngf * 2**(n-1)`` channels and halves the channels at each of its ``n`` stride-2 up-samplings (the last
one outputs ``channels``); D mirrors it (``n`` stride-2 convs with ``ndf * 2**i`` channels) and ends with a
``start x start`` valid conv. So 32x32 is 4 -> 8 -> 16 -> 32 (4ngf, 2ngf, ngf) and 28x28 (MNIST) is
7 -> 14 -> 28 (2ngf, ngf) with a 7x7 final D conv, as in the classic MNIST DCGANs that start at 7x7.

Conditional (``num_classes`` set; Mirza & Osindero 2014 / the original DCGAN MNIST code): G concatenates
a one-hot label to z and D concatenates one-hot label maps as extra input channels. A learned label
embedding in G would be redundant: the first layer is linear, so one-hot concatenation already learns
a per-class 4x4xC offset.

BatchNorm follows PyTorch (``momentum=0.9`` in flax terms == PyTorch 0.1, ``epsilon=1e-5``, batch
statistics when ``train``); statistics live in ``'batch_stats'``. One difference: PyTorch's running
variance uses the unbiased batch variance, flax the biased one (irrelevant for batch >= 32).
"""

from __future__ import annotations

from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models.layers import ConvImpl, Conv4x4S2, ConvTranspose2x, Impl, SpatialProjection, dcgan_normal

Array = jax.Array


def resolution_plan(resolution: int) -> tuple[int, int]:
  """(start, n): ``resolution == start * 2**n`` with the smallest ``start >= 4`` reachable by halving."""
  start, n = resolution, 0
  while start % 2 == 0 and start // 2 >= 4:
    start //= 2
    n += 1
  if n == 0:
    raise ValueError(f'resolution {resolution} must be start * 2**n with n >= 1 and start >= 4')
  return start, n


def _batch_norm(train: bool, dtype: Any, axis_name: str | None, name: str) -> nn.BatchNorm:
  """PyTorch-like BatchNorm2d with DCGAN init (scale N(1, 0.02), bias 0); ``axis_name`` averages the
  batch statistics across devices (pmap/shard_map axis), None = per device."""
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                      scale_init=dcgan_normal(1.0, 0.02), dtype=dtype, axis_name=axis_name, name=name)


def _one_hot_labels(labels: Array | None, num_classes: int, batch: int, dtype: Any) -> Array:
  if labels is None:
    raise ValueError('a conditional model (num_classes set) needs labels')
  chex.assert_shape(labels, (batch,))
  chex.assert_type(labels, int)
  return jax.nn.one_hot(labels, num_classes, dtype=dtype)


class DCGANGenerator(nn.Module):
  """z [B, latent_dim] (+ labels [B]) -> images [B, resolution, resolution, channels] in [-1, 1]."""

  resolution: int = 64
  latent_dim: int = 100
  ngf: int = 64
  channels: int = 3
  num_classes: int | None = None
  dtype: Any = jnp.float32  # computation dtype; params and outputs stay float32
  conv_impl: Impl = 'auto'  # see jaxgan.models.layers
  axis_name: str | None = None  # BatchNorm cross-device axis

  @nn.compact
  def __call__(self, z: Array, labels: Array | None = None, *, train: bool) -> Array:
    chex.assert_shape(z, (None, self.latent_dim))
    batch = z.shape[0]
    h = z
    if self.num_classes is not None:
      h = jnp.concatenate([z, _one_hot_labels(labels, self.num_classes, batch, z.dtype)], axis=-1)
    start, n = resolution_plan(self.resolution)
    features = self.ngf * 2 ** (n - 1)
    h = SpatialProjection(start, features, dtype=self.dtype, name='project')(h)
    h = nn.relu(_batch_norm(train, self.dtype, self.axis_name, 'bn_0')(h))
    for i in range(1, n):
      features //= 2
      h = ConvTranspose2x(features, impl=self.conv_impl, dtype=self.dtype, name=f'deconv_{i}')(h)
      h = nn.relu(_batch_norm(train, self.dtype, self.axis_name, f'bn_{i}')(h))
    h = ConvTranspose2x(self.channels, impl=self.conv_impl, dtype=self.dtype, name='deconv_out')(h)
    images = jnp.tanh(h).astype(jnp.float32)
    chex.assert_shape(images, (batch, self.resolution, self.resolution, self.channels))
    return images


class DCGANDiscriminator(nn.Module):
  """images [B, resolution, resolution, channels] (+ labels [B]) -> logits [B] (no sigmoid)."""

  resolution: int = 64
  ndf: int = 64
  channels: int = 3
  num_classes: int | None = None
  dtype: Any = jnp.float32  # computation dtype; params and outputs stay float32
  axis_name: str | None = None  # BatchNorm cross-device axis
  conv_impl: ConvImpl = 'auto'  # the stride-2 convs' formulation, see jaxgan.models.layers

  @nn.compact
  def __call__(self, x: Array, labels: Array | None = None, *, train: bool) -> Array:
    chex.assert_shape(x, (None, self.resolution, self.resolution, self.channels))
    batch = x.shape[0]
    h = x
    if self.num_classes is not None:
      maps = _one_hot_labels(labels, self.num_classes, batch, x.dtype)[:, None, None, :]
      maps = jnp.broadcast_to(maps, (batch, self.resolution, self.resolution, self.num_classes))
      h = jnp.concatenate([h, maps], axis=-1)
    start, n = resolution_plan(self.resolution)
    for i in range(n):
      h = Conv4x4S2(self.ndf * 2 ** i, kernel_init=dcgan_normal(), impl=self.conv_impl, dtype=self.dtype,
                    name=f'conv_{i}')(h)
      if i > 0:
        h = _batch_norm(train, self.dtype, self.axis_name, f'bn_{i}')(h)
      h = nn.leaky_relu(h, 0.2)
    h = nn.Conv(1, (start, start), padding='VALID', use_bias=False, kernel_init=dcgan_normal(),
                dtype=self.dtype, name='conv_out')(h)
    chex.assert_shape(h, (batch, 1, 1, 1))
    return h.reshape(batch).astype(jnp.float32)
