"""Layers shared by the convolutional GAN models.

``ConvTranspose2x`` is a drop-in for PyTorch's ``ConvTranspose2d(kernel_size=4, stride=2, padding=1)``
(the DCGAN up-sampling layer, Radford et al. 2016) that XLA:CPU differentiates quickly.

Kernel convention (shared with flax/lax ``HWIO``): the parameter ``kernel`` has shape
``(4, 4, in, out)`` and ``kernel[ky, kx, i, o] == W_torch[i, o, ky, kx]`` where ``W_torch`` is the
PyTorch weight of shape ``(in, out, 4, 4)`` (no flip). With that mapping, for NHWC ``x``::

    ConvTranspose2x(...)(x)
      == torch ConvTranspose2d(k=4, s=2, p=1)(x)
         # i.e. y[2iy - 1 + ky, 2ix - 1 + kx, o] += x[iy, ix, i] k[ky, kx, i, o]
      == lax.conv_transpose(x, kernel[::-1, ::-1], (2, 2), ((2, 2), (2, 2)),
                            dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
      == lax.conv_transpose(x, kernel.swapaxes(2, 3), (2, 2), ((2, 2), (2, 2)),
                            dimension_numbers=('NHWC', 'HWIO', 'NHWC'), transpose_kernel=True)
      == the input-gradient (adjoint) of
         lax.conv_general_dilated(., kernel.swapaxes(2, 3), (2, 2), ((1, 1), (1, 1)))

(``lax.conv_transpose`` without ``transpose_kernel`` dilates the input and *correlates*, so the kernel is
flipped; its padding ``k - 1 - p = 2`` on both sides gives an output of exactly ``2H x 2W``, which is
also what ``padding='SAME'`` yields for k=4, s=2. ``flax.linen.ConvTranspose(features, (4, 4), (2, 2))``
with its default ``padding='SAME'`` therefore equals this layer with its kernel flipped.)

Why not ``flax.linen.ConvTranspose``: its weight gradient is an input-dilated convolution that XLA:CPU
runs ~10x slower than PyTorch. Instead we use the sub-pixel decomposition (Shi et al. 2016,
"Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel CNN"): output pixel
``(2m + ry, 2n + rx)`` only sees inputs ``(m + dy, n + dx)`` with ``ky = ry + 1 - 2 dy``, i.e. each of the
four output phases is a stride-1 2x2 correlation of the input. Two formulations (numbers in
``bench/conv_transpose.py``):

* ``'gemm'``: pad the input by 1, take the 2x2 patches (im2col) and do ONE matmul against the 4x4
  kernel rearranged (a pure permutation, no zeros) into ``(2*2*in, 2*2*out)``; phase ``(ry, rx)`` is read
  at window offset ``(ry, rx)``. All gradients are plain GEMMs. Best when ``out`` is not tiny.
* ``'conv'``: ONE stride-1 3x3 'SAME' convolution to ``4*out`` channels whose 3x3 kernel is gathered from
  the 4x4 kernel (20 of its 36 phase taps are structural zeros), then depth-to-space. No patch tensor,
  so it wins when ``out`` is small (e.g. the RGB output layer).
* ``'lax'``: plain ``lax.conv_transpose`` (the reference; slow weight gradient on XLA:CPU, not
  benchmarked on accelerators).
* ``'auto'`` (default): ``'conv'`` if ``features < 16`` else ``'gemm'`` (cross-over measured on XLA:CPU).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.linen.dtypes import promote_dtype
from jax import lax

Array = jax.Array
Initializer = Callable[..., Array]
Impl = Literal['auto', 'gemm', 'conv', 'lax']

_DN = ('NHWC', 'HWIO', 'NHWC')
# Below this many output channels the 'conv' formulation beats 'gemm' on XLA:CPU (bench/conv_transpose.py).
_AUTO_CONV_BELOW = 16

# Index of the 4x4 kernel tap used by output phase r in {0, 1} and input offset d in {-1, 0, 1}:
# ky = r + 1 - 2 d; 4 points at an appended zero row (tap outside the 4x4 kernel).
_TAP_3X3 = np.array([[3, 4], [1, 2], [4, 0]])  # [d + 1, r]


def dcgan_normal(mean: float = 0.0, stddev: float = 0.02) -> Initializer:
  """N(mean, stddev) initializer (DCGAN: conv weights N(0, 0.02), BatchNorm scale N(1, 0.02))."""
  base = nn.initializers.normal(stddev)

  def init(key: Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Array:
    return base(key, shape, dtype) + jnp.asarray(mean, dtype)

  return init


def _kernel_2x2_phases(kernel: Array) -> Array:
  """(4, 4, I, O) -> (2, 2, I, 2*2*O): tap [a, b] of phase (ry, rx) is kernel[3 - 2a - ry, 3 - 2b - rx]."""
  _, _, ci, co = kernel.shape
  k = kernel[::-1, ::-1].reshape(2, 2, 2, 2, ci, co)  # [a, ry, b, rx, i, o]
  return k.transpose(0, 2, 4, 1, 3, 5).reshape(2, 2, ci, 4 * co)


def _kernel_3x3_phases(kernel: Array) -> Array:
  """(4, 4, I, O) -> (3, 3, I, 2*2*O).

  Tap [dy+1, dx+1] of phase (ry, rx) is kernel[ry+1-2dy, rx+1-2dx], or 0 outside the 4x4 kernel.
  """
  _, _, ci, co = kernel.shape
  kp = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # index 4 = zero tap
  k = kp[_TAP_3X3[:, None, :, None], _TAP_3X3[None, :, None, :]]  # [dy, dx, ry, rx, i, o]
  return k.transpose(0, 1, 4, 2, 3, 5).reshape(3, 3, ci, 4 * co)


def _conv_transpose_gemm(x: Array, kernel: Array, precision: Any) -> Array:
  # Hand-written im2col because lax.conv_general_dilated_patches builds patches with a one-hot
  # grouped convolution (a full extra conv); four shifted slices are just copies.
  b, h, w, ci = x.shape
  co = kernel.shape[-1]
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  patches = jnp.concatenate(
      [xp[:, a:a + h + 1, c:c + w + 1] for a in range(2) for c in range(2)], axis=-1
  )  # [B, H+1, W+1, (a, b, i)]
  z = jnp.dot(patches.reshape(-1, 4 * ci), _kernel_2x2_phases(kernel).reshape(4 * ci, 4 * co),
              precision=precision)
  z = z.reshape(b, h + 1, w + 1, 2, 2, co)
  # Phase (ry, rx) of output block (m, n) comes from window (m + ry, n + rx).
  rows = [jnp.stack([z[:, ry:ry + h, rx:rx + w, ry, rx] for rx in range(2)], axis=3)
          for ry in range(2)]  # each [B, H, W, rx, O]
  return jnp.stack(rows, axis=2).reshape(b, 2 * h, 2 * w, co)


def _conv_transpose_conv(x: Array, kernel: Array, precision: Any) -> Array:
  b, h, w, _ = x.shape
  co = kernel.shape[-1]
  z = lax.conv_general_dilated(x, _kernel_3x3_phases(kernel), (1, 1), ((1, 1), (1, 1)),
                               dimension_numbers=_DN, precision=precision)  # [B, H, W, (ry, rx, o)]
  # depth-to-space (pixel shuffle)
  z = z.reshape(b, h, w, 2, 2, co).transpose(0, 1, 3, 2, 4, 5)
  return z.reshape(b, 2 * h, 2 * w, co)


def _conv_transpose_lax(x: Array, kernel: Array, precision: Any) -> Array:
  return lax.conv_transpose(x, kernel[::-1, ::-1], (2, 2), ((2, 2), (2, 2)),
                            dimension_numbers=_DN, precision=precision)


_IMPLS = {'gemm': _conv_transpose_gemm, 'conv': _conv_transpose_conv, 'lax': _conv_transpose_lax}


def conv_transpose_2x(x: Array, kernel: Array, *, impl: Impl = 'auto', precision: Any = None) -> Array:
  """PyTorch ``ConvTranspose2d(k=4, s=2, p=1, bias=False)`` on NHWC ``x`` with an HWIO (4, 4, I, O) kernel."""
  chex.assert_rank(x, 4)
  chex.assert_shape(kernel, (4, 4, x.shape[-1], None))
  if impl == 'auto':
    impl = 'conv' if kernel.shape[-1] < _AUTO_CONV_BELOW else 'gemm'
  if impl not in _IMPLS:
    raise ValueError(f'unknown impl {impl!r}; expected one of auto, {", ".join(_IMPLS)}')
  y = _IMPLS[impl](x, kernel, precision)
  chex.assert_shape(y, (x.shape[0], 2 * x.shape[1], 2 * x.shape[2], kernel.shape[-1]))
  return y


class ConvTranspose2x(nn.Module):
  """Stride-2 4x4 transposed convolution, padding 1: [B, H, W, I] -> [B, 2H, 2W, features].

  Equals PyTorch ``ConvTranspose2d(I, features, 4, 2, 1, bias=use_bias)`` with
  ``kernel[ky, kx, i, o] == W_torch[i, o, ky, kx]``; see the module docstring for the lax mapping and
  the choice of ``impl``. Same parameter count as PyTorch (16 * I * features [+ features]).
  """

  features: int
  use_bias: bool = False
  kernel_init: Initializer = dcgan_normal()
  bias_init: Initializer = nn.initializers.zeros_init()
  impl: Impl = 'auto'
  dtype: Any = None
  param_dtype: Any = jnp.float32
  precision: Any = None

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = self.param('kernel', self.kernel_init, (4, 4, x.shape[-1], self.features), self.param_dtype)
    bias = self.param('bias', self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
    x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
    y = conv_transpose_2x(x, kernel, impl=self.impl, precision=self.precision)
    if bias is not None:
      y = y + bias
    return y


class SpatialProjection(nn.Module):
  """Dense map [B, D] -> [B, size, size, features] (DCGAN's first generator layer).

  PyTorch's ``ConvTranspose2d(D, features, size, 1, 0)`` on a 1x1 input is exactly this dense layer:
  ``kernel[d, y, x, o] == W_torch[d, o, y, x]``, D * size^2 * features parameters (no bias by default).
  """

  size: int
  features: int
  use_bias: bool = False
  kernel_init: Initializer = dcgan_normal()
  dtype: Any = None
  param_dtype: Any = jnp.float32
  precision: Any = None

  @nn.compact
  def __call__(self, z: Array) -> Array:
    chex.assert_rank(z, 2)
    return nn.DenseGeneral(
        (self.size, self.size, self.features), use_bias=self.use_bias, kernel_init=self.kernel_init,
        dtype=self.dtype, param_dtype=self.param_dtype, precision=self.precision, name='dense',
    )(z)
