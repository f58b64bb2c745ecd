"""StyleGAN2-style generator and discriminator at small resolutions (Karras et al. 2020, "Analyzing and
Improving the Image Quality of StyleGAN"; config E/F: skip G, residual D), written with plain XLA ops.

Pieces (all layers use the *equalized learning rate*: weights are stored N(0, 1/lr_mul) and scaled at
run time by ``lr_mul / sqrt(fan_in)``, so Adam's step is relative to each layer's scale):

* ``MappingNetwork``: z -> normalise (2nd moment) -> 8 x (dense + lReLU) -> w, lr multiplier 0.01.
* ``ModulatedConv``: style ``s = A(w)`` (affine, bias 1) scales the input channels, the conv runs with
  one shared kernel and, with ``demodulate``, each output channel of each example is multiplied by
  ``1 / sqrt(sum_{k, i} (W[k, i, o] s_i)^2 + 1e-8)`` (the non-fused form of Eq. 3, equal to the
  per-example weight demodulation), so unit-variance inputs give unit-variance outputs.
* ``SynthesisNetwork``: a learned constant at ``start`` px (``dcgan.resolution_plan``: 4 for 32/64, 7
  for 28), a modulated conv, then per 2x level: a modulated 3x3 conv fused with FIR 2x upsampling
  (``up_conv``, [1, 3, 3, 1]), a modulated conv; every conv adds per-pixel noise times a learned
  per-layer scale (init 0), a bias and lReLU*sqrt(2); skip architecture: ``img = upsample_2x(img) +
  toRGB(x)`` at every level.
  ``num_ws = 2 n + 2`` styles (convs 0..2n, toRGB of level i uses style 2i + 1).
* ``StyleDiscriminator``: fromRGB 1x1, residual blocks (conv, then a 3x3 conv fused with FIR 2x
  downsampling, ``down_conv``; skip: FIR downsample + 1x1 conv; sum / sqrt 2) down to ``start`` px,
  minibatch standard deviation (groups of 4), conv, dense, dense -> 1 logit.

The resampling convs reproduce stylegan2-ada-pytorch's ``conv2d_resample`` exactly, borders included
(``tests/test_models_stylegan.py`` checks them against outputs of the reference op); with weights
transferred from the reference ``Generator``/``Discriminator`` both networks agree with it to ~1e-5.

Style mixing (``mix_styles``) and truncation (``truncate``) are pure functions of w's. Noise uses the
``'noise'`` RNG stream (``rngs={'noise': key}``), or is off with ``noise=False``.

``dtype`` (every module) is the computation dtype, e.g. bfloat16: convs, dense layers, FIR resampling,
noise, biases and activations run in it, with the equalized-lr scale applied to the float32 weights
before the cast. Parameters stay float32, and so do the parts that are statistics or feed the losses:
the mapping input's normalisation, the demodulation coefficients, the minibatch standard deviation,
and the outputs (w from ``map``, images, logits).
"""

from __future__ import annotations

import math
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxgan.models.dcgan import resolution_plan

Array = jax.Array
SQRT2 = math.sqrt(2.0)
_DN = ("NHWC", "HWIO", "NHWC")


def lrelu(x: Array) -> Array:
  """LeakyReLU(0.2) with StyleGAN's gain sqrt(2) (keeps activations' second moment)."""
  return nn.leaky_relu(x, 0.2) * SQRT2


# --- FIR resampling ([1, 3, 3, 1], zero padding, as upfirdn2d) -------------------------------------


def _up_axis(x: Array, axis: int, border: int = 0) -> Array:
  """Zero-insertion 2x upsampling along ``axis`` then the [1, 3, 3, 1] filter (gain 2 per axis).

  ``border`` extra output samples on each side (at most 1) keep the filter's tails past the edge, so a
  following 'VALID' conv sees the same values as the one fused op of the reference (``conv2d_resample``).
  """
  n = x.shape[axis]
  pad = [(0, 0)] * x.ndim
  pad[axis] = (2, 2)
  xp = jnp.pad(x, pad)  # xp[j] = x[j - 2]
  take = lambda a: lax.slice_in_dim(xp, a, a + n + 2, axis=axis)  # noqa: E731  i = -1 .. n
  prev, cur, nxt = take(0), take(1), take(2)
  even, odd = 0.25 * prev + 0.75 * cur, 0.75 * cur + 0.25 * nxt  # outputs 2i and 2i + 1
  out = jnp.stack([even, odd], axis=axis + 1)
  out = out.reshape(x.shape[:axis] + (2 * n + 4,) + x.shape[axis + 1:])  # outputs -2 .. 2n + 1
  return lax.slice_in_dim(out, 2 - border, 2 + 2 * n + border, axis=axis)


def _fir_axis(x: Array, axis: int, pad: int, stride: int = 1) -> Array:
  """The [1, 3, 3, 1] / 8 filter along ``axis`` after ``pad`` zeros on each side, keeping every
  ``stride``-th output."""
  count = (x.shape[axis] + 2 * pad - 4) // stride + 1
  padding = [(0, 0)] * x.ndim
  padding[axis] = (pad, pad)
  xp = jnp.pad(x, padding)
  span = (count - 1) * stride + 1
  take = lambda a: lax.slice_in_dim(xp, a, a + span, stride=stride, axis=axis)  # noqa: E731
  return (take(0) + 3.0 * take(1) + 3.0 * take(2) + take(3)) / 8.0


def _down_axis(x: Array, axis: int) -> Array:
  if x.shape[axis] % 2:
    raise ValueError(f"downsample_2x needs even sizes, got {x.shape}")
  return _fir_axis(x, axis, pad=1, stride=2)


def upsample_2x(x: Array, border: int = 0) -> Array:
  """[B, H, W, C] -> [B, 2H, 2W, C]: zero-insertion then the [1, 3, 3, 1] filter (gain 4), zero borders.

  ``border=1`` also returns the filter's one-pixel tails: [B, 2H + 2, 2W + 2, C] (see ``up_conv``).
  """
  chex.assert_rank(x, 4)
  return _up_axis(_up_axis(x, 1, border), 2, border)


def downsample_2x(x: Array) -> Array:
  """[B, H, W, C] -> [B, H/2, W/2, C]: the [1, 3, 3, 1] filter (sum 1) then every second pixel."""
  chex.assert_rank(x, 4)
  return _down_axis(_down_axis(x, 1), 2)


def up_conv(x: Array, kernel: Array) -> Array:
  """2x FIR upsampling fused with a stride-1 3x3 conv [B, H, W, I] -> [B, 2H, 2W, O], as the reference.

  StyleGAN2's ``conv2d_resample(up=2)`` pads once, at the input: the output equals a transposed conv
  followed by the filter, so the border pixels see the filter's tails. Upsampling to 2H + 2 (the tails
  kept) and a 'VALID' conv gives exactly that, without an input-dilated (transposed) conv, the kind
  whose weight gradient XLA:CPU computes slowly.
  """
  chex.assert_rank(x, 4)
  chex.assert_shape(kernel, (3, 3, x.shape[-1], None))
  return lax.conv_general_dilated(upsample_2x(x, border=1), kernel, (1, 1), "VALID", dimension_numbers=_DN)


def down_conv(x: Array, kernel: Array) -> Array:
  """3x3 conv with 2x FIR downsampling [B, H, W, I] -> [B, H/2, W/2, O], as the reference's
  ``conv2d_resample(down=2)``: the [1, 3, 3, 1] filter over 2-pixel zero padding, then a stride-2 conv."""
  chex.assert_rank(x, 4)
  chex.assert_shape(kernel, (3, 3, x.shape[-1], None))
  if x.shape[1] % 2 or x.shape[2] % 2:
    raise ValueError(f"down_conv needs even sizes, got {x.shape}")
  blurred = _fir_axis(_fir_axis(x, 1, pad=2), 2, pad=2)  # [B, H + 1, W + 1, I]
  return lax.conv_general_dilated(blurred, kernel, (2, 2), "VALID", dimension_numbers=_DN)


# --- equalized-learning-rate layers -----------------------------------------------------------------


class EqDense(nn.Module):
  """Dense layer with equalized learning rate: y = x (W * lr_mul / sqrt(in)) + b * lr_mul, in ``dtype``."""

  features: int
  lr_mul: float = 1.0
  bias_init: float = 0.0
  use_bias: bool = True
  dtype: Any = jnp.float32  # computation dtype (the scaled float32 weights are cast to it)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    fan_in = x.shape[-1]
    w = self.param("kernel", nn.initializers.normal(1.0 / self.lr_mul), (fan_in, self.features))
    y = x.astype(self.dtype) @ (w * (self.lr_mul / math.sqrt(fan_in))).astype(self.dtype)
    if self.use_bias:
      b = self.param("bias", nn.initializers.constant(self.bias_init / self.lr_mul), (self.features,))
      y = y + (b * self.lr_mul).astype(self.dtype)
    return y


class EqConv(nn.Module):
  """Convolution with equalized learning rate: stride-1 'SAME', or with ``down`` a 3x3 conv fused with
  2x FIR downsampling (``down_conv``), in ``dtype``."""

  features: int
  kernel_size: int = 3
  use_bias: bool = True
  down: bool = False
  dtype: Any = jnp.float32  # computation dtype (the scaled float32 kernel is cast to it)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    k, cin = self.kernel_size, x.shape[-1]
    w = self.param("kernel", nn.initializers.normal(1.0), (k, k, cin, self.features))
    w = (w * (1.0 / math.sqrt(k * k * cin))).astype(self.dtype)
    x = x.astype(self.dtype)
    if self.down:
      y = down_conv(x, w)
    else:
      y = lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=_DN)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros_init(), (self.features,)).astype(self.dtype)
    return y


class ModulatedConv(nn.Module):
  """Modulated (and demodulated) conv of ``x [B, H, W, I]`` with style from ``w [B, D]``; with ``up``
  a 3x3 conv fused with 2x FIR upsampling (``up_conv``), else stride 1 'SAME'."""

  features: int
  kernel_size: int = 3
  demodulate: bool = True
  up: bool = False
  dtype: Any = jnp.float32  # computation dtype of the modulation and the conv (demodulation: float32)

  @nn.compact
  def __call__(self, x: Array, w: Array) -> Array:
    chex.assert_rank([x, w], [4, 2])
    k, cin = self.kernel_size, x.shape[-1]
    styles = EqDense(cin, bias_init=1.0, dtype=self.dtype, name="affine")(w)  # [B, I]
    kernel = self.param("kernel", nn.initializers.normal(1.0), (k, k, cin, self.features))
    kernel = kernel * (1.0 / math.sqrt(k * k * cin))
    x = x.astype(self.dtype) * styles[:, None, None, :]
    if self.up:
      y = up_conv(x, kernel.astype(self.dtype))
    else:
      y = lax.conv_general_dilated(x, kernel.astype(self.dtype), (1, 1), "SAME", dimension_numbers=_DN)
    if self.demodulate:
      # sum_{k, i} (W[k, i, o] s_i)^2 = (s^2) @ sum_k W[k, i, o]^2  -> [B, O], in float32: a sum of
      # squares over k * k * I terms and an rsqrt, which bfloat16's 8-bit mantissa would blur.
      s2 = jnp.square(styles.astype(jnp.float32))
      dcoefs = lax.rsqrt(s2 @ jnp.sum(jnp.square(kernel), axis=(0, 1)) + 1e-8)
      y = y * dcoefs.astype(self.dtype)[:, None, None, :]
    return y


class StyleLayer(nn.Module):
  """Modulated 3x3 conv (optionally fused with a FIR 2x upsample) + scaled noise + bias + lReLU*sqrt2."""

  features: int
  up: bool = False
  dtype: Any = jnp.float32  # computation dtype

  @nn.compact
  def __call__(self, x: Array, w: Array, noise: bool) -> Array:
    y = ModulatedConv(self.features, up=self.up, dtype=self.dtype, name="conv")(x, w)
    strength = self.param("noise_strength", nn.initializers.zeros_init(), ()).astype(self.dtype)
    if noise:
      # Drawn in float32 then cast: the same noise images whatever the compute dtype.
      n = jax.random.normal(self.make_rng("noise"), y.shape[:3] + (1,), jnp.float32)
      y = y + strength * n.astype(self.dtype)
    return lrelu(y + self.param("bias", nn.initializers.zeros_init(), (self.features,)).astype(self.dtype))


class ToRGB(nn.Module):
  """Modulated 1x1 conv to image channels, no demodulation, + bias."""

  channels: int
  dtype: Any = jnp.float32  # computation dtype

  @nn.compact
  def __call__(self, x: Array, w: Array) -> Array:
    y = ModulatedConv(self.channels, kernel_size=1, demodulate=False, dtype=self.dtype, name="conv")(x, w)
    return y + self.param("bias", nn.initializers.zeros_init(), (self.channels,)).astype(self.dtype)


# --- networks ---------------------------------------------------------------------------------------


def num_ws(resolution: int) -> int:
  """Number of per-layer styles the synthesis network reads: 2 * (number of 2x levels) + 2."""
  return 2 * resolution_plan(resolution)[1] + 2


class MappingNetwork(nn.Module):
  """z [B, Z] -> w [B, W]: 2nd-moment normalisation, ``num_layers`` dense+lReLU at lr multiplier.

  The normalisation runs in float32, the dense layers in ``dtype``; w is returned in float32 (the
  recipe averages it and truncation/mixing interpolate it)."""

  w_dim: int = 128
  num_layers: int = 8
  lr_mul: float = 0.01
  dtype: Any = jnp.float32  # computation dtype of the dense layers

  @nn.compact
  def __call__(self, z: Array) -> Array:
    chex.assert_rank(z, 2)
    z = z.astype(jnp.float32)
    x = z * lax.rsqrt(jnp.mean(jnp.square(z), axis=-1, keepdims=True) + 1e-8)
    for i in range(self.num_layers):
      x = lrelu(EqDense(self.w_dim, lr_mul=self.lr_mul, dtype=self.dtype, name=f"fc{i}")(x))
    return x.astype(jnp.float32)


class SynthesisNetwork(nn.Module):
  """ws [B, num_ws, W] -> images [B, R, R, channels] (skip architecture; see module docstring)."""

  resolution: int = 32
  channels: int = 1
  width: int = 32
  dtype: Any = jnp.float32  # computation dtype; params and the images stay float32

  @nn.compact
  def __call__(self, ws: Array, *, noise: bool = True) -> Array:
    start, levels = resolution_plan(self.resolution)
    chex.assert_shape(ws, (None, 2 * levels + 2, None))
    batch, dt = ws.shape[0], self.dtype
    const = self.param("const", nn.initializers.normal(1.0), (start, start, self.width)).astype(dt)
    x = jnp.broadcast_to(const, (batch,) + const.shape)
    x = StyleLayer(self.width, dtype=dt, name="conv0")(x, ws[:, 0], noise)
    img = ToRGB(self.channels, dtype=dt, name="torgb0")(x, ws[:, 1])
    for level in range(1, levels + 1):
      x = StyleLayer(self.width, up=True, dtype=dt, name=f"conv{level}_up")(x, ws[:, 2 * level - 1], noise)
      x = StyleLayer(self.width, dtype=dt, name=f"conv{level}")(x, ws[:, 2 * level], noise)
      img = upsample_2x(img) + ToRGB(self.channels, dtype=dt, name=f"torgb{level}")(x, ws[:, 2 * level + 1])
    chex.assert_shape(img, (batch, self.resolution, self.resolution, self.channels))
    return img.astype(jnp.float32)


class StyleGenerator(nn.Module):
  """Mapping + synthesis. ``__call__(z)`` maps every layer's style from one z (no mixing, no truncation);
  ``map`` and ``synthesize`` expose the halves (``apply(..., method=StyleGenerator.map)``)."""

  resolution: int = 32
  channels: int = 1
  width: int = 32
  w_dim: int = 128
  mapping_layers: int = 8
  mapping_lr_mul: float = 0.01
  dtype: Any = jnp.float32  # computation dtype of both halves; params, w and images stay float32

  def setup(self):
    self.mapping = MappingNetwork(self.w_dim, self.mapping_layers, self.mapping_lr_mul, dtype=self.dtype)
    self.synthesis = SynthesisNetwork(self.resolution, self.channels, self.width, dtype=self.dtype)

  def map(self, z: Array) -> Array:
    return self.mapping(z)

  def synthesize(self, ws: Array, noise: bool = True) -> Array:
    return self.synthesis(ws, noise=noise)

  def __call__(self, z: Array, noise: bool = True) -> Array:
    w = self.mapping(z)
    ws = jnp.broadcast_to(w[:, None], (w.shape[0], num_ws(self.resolution), w.shape[-1]))
    return self.synthesis(ws, noise=noise)


def minibatch_stddev(x: Array, group_size: int = 4) -> Array:
  """Appends one channel: the mean over features of the std over each group of examples (ProGAN).

  The statistic is computed in float32 and appended in ``x``'s dtype."""
  b, h, w, c = x.shape
  g = math.gcd(min(group_size, b), b)
  y = x.astype(jnp.float32).reshape(g, b // g, h, w, c)
  y = jnp.sqrt(jnp.var(y, axis=0) + 1e-8)  # [B/g, H, W, C]
  y = jnp.mean(y, axis=(1, 2, 3))  # [B/g]
  y = jnp.tile(y, g)[:, None, None, None].astype(x.dtype)  # example j of a group sits at j * (B/g) + m
  return jnp.concatenate([x, jnp.broadcast_to(y, (b, h, w, 1))], axis=-1)


class StyleDiscriminator(nn.Module):
  """images [B, R, R, C] -> logits [B] (residual D; see module docstring)."""

  resolution: int = 32
  width: int = 32
  mbstd_group: int = 4
  dtype: Any = jnp.float32  # computation dtype; params and the logits stay float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    chex.assert_rank(x, 4)
    start, levels = resolution_plan(self.resolution)
    dt = self.dtype
    h = lrelu(EqConv(self.width, 1, dtype=dt, name="fromrgb")(x))
    for level in range(levels):
      y = lrelu(EqConv(self.width, dtype=dt, name=f"block{level}_conv0")(h))
      y = lrelu(EqConv(self.width, down=True, dtype=dt, name=f"block{level}_conv1")(y))
      skip = EqConv(self.width, 1, use_bias=False, dtype=dt, name=f"block{level}_skip")(downsample_2x(h))
      h = (y + skip) / SQRT2
    chex.assert_shape(h, (x.shape[0], start, start, self.width))
    h = minibatch_stddev(h, self.mbstd_group)
    h = lrelu(EqConv(self.width, dtype=dt, name="epilogue_conv")(h)).reshape(x.shape[0], -1)
    h = lrelu(EqDense(self.width, dtype=dt, name="epilogue_fc")(h))
    return EqDense(1, dtype=dt, name="out")(h)[:, 0].astype(jnp.float32)


# --- style mixing and truncation --------------------------------------------------------------------


def mix_styles(w1: Array, w2: Array, crossover: Array, num_layers: int) -> Array:
  """ws[b, i] = w1[b] for layers i < crossover[b], else w2[b]  -> [B, num_layers, W].

  ``crossover = num_layers`` means no mixing (Karras et al. 2019, Sec. 3.1).
  """
  chex.assert_equal_shape([w1, w2])
  chex.assert_shape(crossover, (w1.shape[0],))
  first = jnp.arange(num_layers)[None, :] < crossover[:, None]  # [B, L]
  return jnp.where(first[..., None], w1[:, None], w2[:, None])


def sample_crossover(key: Array, batch: int, num_layers: int, prob: Array | float) -> Array:
  """Per example: with probability ``prob`` a crossover uniform in [1, num_layers), else num_layers."""
  mix_key, point_key = jax.random.split(key)
  point = jax.random.randint(point_key, (batch,), 1, num_layers)
  return jnp.where(jax.random.uniform(mix_key, (batch,)) < prob, point, num_layers)


def truncate(ws: Array, w_avg: Array, psi: Array | float) -> Array:
  """The truncation trick: w' = w_avg + psi (w - w_avg) (psi = 1: unchanged, 0: the mean w)."""
  return w_avg + psi * (ws - w_avg)
