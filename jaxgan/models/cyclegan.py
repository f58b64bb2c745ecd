"""CycleGAN networks (Zhu et al. 2017): a ResNet generator; the discriminators are PatchGANs.

``ResNetGenerator`` follows the authors' ``ResnetGenerator`` (junyanz/pytorch-CycleGAN-and-pix2pix,
``models/networks.py``; Johnson et al. 2016's layout): reflection pad 3 + 7x7 conv (``ngf``), two stride-2
3x3 convs (``2 ngf``, ``4 ngf``), ``n_blocks`` residual blocks (reflection pad 1, 3x3 conv, norm, ReLU,
reflection pad 1, 3x3 conv, norm; added to the input), two up-sampling layers back to ``ngf`` channels,
reflection pad 3 + 7x7 conv to ``out_channels`` and tanh. Instance norm without affine parameters (the
paper's choice) after every conv but the last, whose bias is kept.

One deviation: the up-sampling layers are ``ConvTranspose2x`` (4x4 kernel, stride 2, padding 1: exactly
2x) instead of the reference 3x3 transposed conv with ``output_padding=1``; both double the size, and
ours is the layer XLA:CPU differentiates quickly (``jaxgan.models.layers``).

``n_blocks``: the paper uses 9 blocks at 256x256 and 6 at 128x128; ``default_blocks`` keeps 6 below 256.

The discriminators are ``jaxgan.models.pix2pix.PatchDiscriminator`` with ``norm='instance'`` (on the
image alone: CycleGAN's D is unconditional).

``dtype`` is the computation dtype of every layer (e.g. bfloat16); parameters stay float32, instance norm
computes its statistics in float32 (flax) and the images are float32.
"""

from __future__ import annotations

from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models.layers import ConvTranspose2x, dcgan_normal
from jaxgan.models.pix2pix import PatchDiscriminator, default_patch_layers  # noqa: F401 (re-exported)

Array = jax.Array


def default_blocks(resolution: int) -> int:
  """Residual blocks of the paper: 9 at 256x256 and above, 6 below."""
  return 9 if resolution >= 256 else 6


def _reflect(x: Array, pad: int) -> Array:
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def _instance_norm(name: str, dtype: Any = jnp.float32) -> nn.InstanceNorm:
  """Affine-free instance norm; flax computes its statistics in float32 whatever ``dtype`` is."""
  return nn.InstanceNorm(epsilon=1e-5, use_scale=False, use_bias=False, dtype=dtype, name=name)


def _conv(features: int, kernel: int, stride: int, name: str, padding: int = 0,
          dtype: Any = jnp.float32) -> nn.Conv:
  return nn.Conv(features, (kernel, kernel), (stride, stride), padding=((padding, padding),) * 2,
                 kernel_init=dcgan_normal(), dtype=dtype, name=name)


class ResidualBlock(nn.Module):
  """x + norm(conv(relu(norm(conv(x))))) with reflection padding (shape-preserving)."""

  dtype: Any = jnp.float32  # computation dtype

  @nn.compact
  def __call__(self, x: Array) -> Array:
    c, dt = x.shape[-1], self.dtype
    h = nn.relu(_instance_norm("norm_0", dt)(_conv(c, 3, 1, "conv_0", dtype=dt)(_reflect(x, 1))))
    h = _instance_norm("norm_1", dt)(_conv(c, 3, 1, "conv_1", dtype=dt)(_reflect(h, 1)))
    return x + h


class ResNetGenerator(nn.Module):
  """x [B, R, R, in] -> y [B, R, R, out_channels] in [-1, 1]; R must be divisible by 4."""

  out_channels: int
  ngf: int = 64
  n_blocks: int = 9
  dtype: Any = jnp.float32  # computation dtype; params, norm statistics and images stay float32

  @nn.compact
  def __call__(self, x: Array, *, train: bool = True) -> Array:
    del train  # instance norm and no dropout: the same function in training and evaluation
    chex.assert_rank(x, 4)
    batch, height, width, _ = x.shape
    if height % 4 or width % 4:
      raise ValueError(f"ResNetGenerator needs sizes divisible by 4 (two stride-2 layers), got {x.shape}")
    dt = self.dtype
    h = nn.relu(_instance_norm("in_norm", dt)(_conv(self.ngf, 7, 1, "in_conv", dtype=dt)(_reflect(x, 3))))
    for i in range(2):
      h = _conv(self.ngf * 2 ** (i + 1), 3, 2, f"down_{i}", padding=1, dtype=dt)(h)
      h = nn.relu(_instance_norm(f"down_norm_{i}", dt)(h))
    for i in range(self.n_blocks):
      h = ResidualBlock(dtype=dt, name=f"block_{i}")(h)
    for i in range(2):
      h = ConvTranspose2x(self.ngf * 2 ** (1 - i), use_bias=True, dtype=dt, name=f"up_{i}")(h)
      h = nn.relu(_instance_norm(f"up_norm_{i}", dt)(h))
    y = jnp.tanh(_conv(self.out_channels, 7, 1, "out_conv", dtype=dt)(_reflect(h, 3))).astype(jnp.float32)
    chex.assert_shape(y, (batch, height, width, self.out_channels))
    return y
