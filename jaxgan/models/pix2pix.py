"""Pix2Pix networks (Isola et al. 2017): a U-Net generator and a PatchGAN discriminator.

Both follow the authors' PyTorch code (junyanz/pytorch-CycleGAN-and-pix2pix, ``models/networks.py``):

* ``UNetGenerator``: ``levels`` stride-2 4x4 convolutions down (``ngf * min(2**i, 8)`` channels, LeakyReLU
  0.2 before each but the first, norm after each but the first and the innermost), then the mirror image
  up with ``ConvTranspose2x`` (4x4, stride 2, ReLU before, norm after) where each decoder output is
  concatenated with the encoder activation of the same size (the skip connections); the last layer maps
  to ``out_channels`` with tanh. Dropout 0.5 on the ``min(3, levels - 3)`` decoder layers right after the
  innermost one (the reference's 3 of 8 at 256 px; 2 of 5 at 32 px) is G's only noise ("we provide noise
  only in the form of dropout", Sec. 3.1); it is on in train mode only (a ``'dropout'`` rng must then be
  passed).
  The paper uses 8 levels at 256x256 (down to 1x1). Here ``levels`` defaults to the number of halvings
  the resolution allows, at most 8 (``unet_levels``): 32 -> 5 (down to 1x1), 64 -> 6, 256 -> 8, and
  28 -> 2 (28 -> 14 -> 7: odd sizes cannot be halved and restored exactly).
* ``PatchDiscriminator``: ``n_layers`` stride-2 4x4 convs (``ndf * min(2**i, 8)`` channels), one stride-1
  4x4 conv, and a stride-1 4x4 conv to one logit per patch; LeakyReLU 0.2, norm on all but the first
  and last. ``n_layers=3`` is the paper's 70x70 PatchGAN: ``receptive_field(patch_layers(3)) == 70``;
  ``n_layers=1`` is its 16x16 PatchGAN. For pix2pix D sees the input and the (real or generated) output
  concatenated along channels (a conditional GAN).

Normalisation: ``'batch'`` (pix2pix, as the paper; running statistics for evaluation) or ``'instance'``
(CycleGAN; no affine parameters, as the reference code). With instance norm, convolutions have biases.
Weights are N(0, 0.02) (the reference ``init_type='normal'``).

``dtype`` is the layers' computation dtype (e.g. bfloat16); parameters stay float32, both norms compute
their statistics in float32 (flax), and G's images and D's logits are float32.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models.layers import ConvTranspose2x, dcgan_normal

Array = jax.Array
NormKind = Literal["batch", "instance"]

MAX_UNET_LEVELS = 8


def unet_levels(resolution: int) -> int:
  """U-Net depth for a square image: the halvings ``resolution`` allows (exactly), at most 8."""
  levels, size = 0, resolution
  while size % 2 == 0 and size > 1 and levels < MAX_UNET_LEVELS:
    size //= 2
    levels += 1
  if levels < 1:
    raise ValueError(f"resolution {resolution} must be even for a U-Net")
  return levels


def patch_layers(n_layers: int) -> list[tuple[int, int]]:
  """(kernel, stride) of every convolution of a PatchGAN with ``n_layers`` stride-2 layers."""
  return [(4, 2)] * n_layers + [(4, 1), (4, 1)]


def receptive_field(layers: Sequence[tuple[int, int]]) -> int:
  """Receptive field (pixels) of one output of a stack of ``(kernel, stride)`` convolutions.

  Walks back from one output pixel: a layer with kernel k and stride s maps a window of r outputs to
  ``(r - 1) * s + k`` inputs.
  """
  r = 1
  for kernel, stride in reversed(list(layers)):
    r = (r - 1) * stride + kernel
  return r


def default_patch_layers(resolution: int) -> int:
  """PatchGAN depth for a resolution: 70x70 patches from 128 px up, 34x34 at 64, 16x16 below.

  The paper's 70x70 patches cover ~27% of a 256x256 image's side; on a 28/32-px image a 70-px patch
  would see the whole image (an image GAN), so small images get the paper's 16x16 PatchGAN.
  """
  if resolution >= 128:
    return 3
  return 2 if resolution >= 64 else 1


def _norm(kind: NormKind, train: bool, axis_name: str | None, name: str, dtype: Any = jnp.float32
          ) -> Callable[[Array], Array]:
  """BatchNorm (DCGAN init) or affine-free InstanceNorm; flax computes either's statistics in float32."""
  if kind == "batch":
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                        scale_init=dcgan_normal(1.0, 0.02), dtype=dtype, axis_name=axis_name, name=name)
  if kind == "instance":
    return nn.InstanceNorm(epsilon=1e-5, use_scale=False, use_bias=False, dtype=dtype, name=name)
  raise ValueError(f"Unknown norm {kind!r}; valid: batch, instance")


def _conv(features: int, kernel: int, stride: int, padding: int, use_bias: bool, name: str,
          dtype: Any = jnp.float32) -> nn.Conv:
  return nn.Conv(features, (kernel, kernel), (stride, stride), padding=((padding, padding),) * 2,
                 use_bias=use_bias, kernel_init=dcgan_normal(), dtype=dtype, name=name)


class UNetGenerator(nn.Module):
  """x [B, R, R, in] -> y [B, R, R, out_channels] in [-1, 1] (see the module docstring)."""

  out_channels: int
  ngf: int = 64
  levels: int | None = None  # None: unet_levels(R)
  norm: NormKind = "batch"
  dropout_rate: float = 0.5
  axis_name: str | None = None  # BatchNorm cross-device axis
  dtype: Any = jnp.float32  # computation dtype; params, norm statistics and images stay float32

  @nn.compact
  def __call__(self, x: Array, *, train: bool) -> Array:
    chex.assert_rank(x, 4)
    batch, height, width, _ = x.shape
    chex.assert_equal(height, width)
    levels = self.levels or unet_levels(height)
    if height % 2 ** levels:
      raise ValueError(f"{levels} U-Net levels need a resolution divisible by {2 ** levels}, got {height}")
    bias = self.norm == "instance"
    channels = [self.ngf * min(2 ** i, 8) for i in range(levels)]
    skips = []
    h = x
    for i, c in enumerate(channels):
      if i > 0:
        h = nn.leaky_relu(h, 0.2)
      h = _conv(c, 4, 2, 1, bias or i == 0 or i == levels - 1, f"down_{i}", self.dtype)(h)
      if 0 < i < levels - 1:
        h = _norm(self.norm, train, self.axis_name, f"down_norm_{i}", self.dtype)(h)
      skips.append(h)
    num_dropout = min(3, max(levels - 3, 0))
    for i in reversed(range(1, levels)):  # decoder layer i restores the size of encoder output i - 1
      inner = i == levels - 1
      h = nn.relu(h if inner else jnp.concatenate([h, skips[i]], axis=-1))
      h = ConvTranspose2x(channels[i - 1], use_bias=bias, dtype=self.dtype, name=f"up_{i}")(h)
      h = _norm(self.norm, train, self.axis_name, f"up_norm_{i}", self.dtype)(h)
      if 1 <= levels - 1 - i <= num_dropout:
        h = nn.Dropout(self.dropout_rate, deterministic=not train)(h)
    h = nn.relu(jnp.concatenate([h, skips[0]], axis=-1) if levels > 1 else h)
    h = ConvTranspose2x(self.out_channels, use_bias=True, dtype=self.dtype, name="up_0")(h)
    y = jnp.tanh(h).astype(jnp.float32)
    chex.assert_shape(y, (batch, height, width, self.out_channels))
    return y


class PatchDiscriminator(nn.Module):
  """x [B, R, R, C] -> logits [B, P, P], one per (overlapping) patch of ``receptive_field`` pixels."""

  ndf: int = 64
  n_layers: int = 3
  norm: NormKind = "batch"
  axis_name: str | None = None  # BatchNorm cross-device axis
  dtype: Any = jnp.float32  # computation dtype; params, norm statistics and logits stay float32

  @nn.compact
  def __call__(self, x: Array, *, train: bool) -> Array:
    chex.assert_rank(x, 4)
    bias = self.norm == "instance"
    layers = patch_layers(self.n_layers)
    h = x
    for i, (kernel, stride) in enumerate(layers[:-1]):
      first = i == 0
      h = _conv(self.ndf * min(2 ** i, 8), kernel, stride, 1, bias or first, f"conv_{i}", self.dtype)(h)
      if not first:
        h = _norm(self.norm, train, self.axis_name, f"norm_{i}", self.dtype)(h)
      h = nn.leaky_relu(h, 0.2)
    kernel, stride = layers[-1]
    h = _conv(1, kernel, stride, 1, True, "logits", self.dtype)(h)
    return h[..., 0].astype(jnp.float32)


def conditional_input(condition: Array, image: Array) -> Array:
  """What pix2pix's D sees: the condition and the image concatenated along channels."""
  chex.assert_equal_shape_prefix([condition, image], 3)
  return jnp.concatenate([condition, image], axis=-1)

