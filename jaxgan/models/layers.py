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
runs ~10x slower than PyTorch. Instead the forward pass uses the sub-pixel decomposition (Shi et al. 2016,
"Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel CNN"): output pixel
``(2m + ry, 2n + rx)`` only sees inputs ``(m + dy, n + dx)`` with ``ky = ry + 1 - 2 dy``, i.e. each of the
four output phases is a stride-1 2x2 correlation of the input. Forward formulations (``impl``):

* ``'col2im'``: ONE matmul of the input pixels against the kernel as ``(in, 4*4*out)`` (exactly the
  transposed conv's FLOPs), then overlap-add of the 16 taps: each 2x2 block of taps is shifted by one
  input pixel and summed (four pads and adds that XLA fuses), then depth-to-space. This is how PyTorch's
  CPU ConvTranspose2d works (gemm + col2im). Its ``[B, H, W, 16*out]`` tap tensor makes it memory-bound
  once that tensor outgrows the caches.
* ``'conv2x2'``: pad the input by 1 and run ONE stride-1 2x2 VALID convolution to ``2*2*out`` channels
  with the 4x4 kernel rearranged (a pure permutation, no zeros) into ``(2, 2, in, 4*out)``; phase
  ``(ry, rx)`` of output block ``(m, n)`` is read at window ``(m + ry, n + rx)``. ``(H+1)(W+1)/(HW)``
  times the exact FLOPs, no patch tensor.
* ``'gemm'``: the same product as 'conv2x2' with the 2x2 patches built explicitly (im2col) and one
  matmul; the patch copy makes it slower than 'conv2x2' everywhere measured (kept for comparison).
* ``'conv'``: ONE stride-1 3x3 'SAME' convolution to ``4*out`` channels whose 3x3 kernel is gathered from
  the 4x4 kernel (20 of its 36 phase taps are structural zeros), then depth-to-space (kept for comparison).
* ``'lax'``: plain ``lax.conv_transpose``, differentiated by JAX (the reference).
* ``'auto'`` (default): ``'col2im'`` while its tap tensor is at most 32 MiB and the layer has at least
  256 input channels (XLA:CPU's GEMM is slow at fewer) or fewer than 16 output channels, else ``'conv2x2'``.

Backward (``backward='conv'``, the default, a ``jax.custom_vjp``): the transposed conv is the adjoint of
the strided convolution ``conv_4x4_s2(., K^T)``, so its input gradient IS that strided convolution of the
cotangent and its kernel gradient is the strided convolution's weight gradient with input and cotangent
swapped; both are ordinary convolutions that XLA:CPU runs well, where autodiff of the forward forms gives
col2im's scatter or large patch transposes. ``backward='autodiff'`` differentiates the forward instead.
The custom VJP is itself differentiable (gradient penalties such as R1 and WGAN-GP stay exact; tested)
but has no forward-mode (``jax.jvp``) rule.

``Conv4x4S2`` is the discriminator's ``Conv2d(k=4, s=2, p=1, bias=False)`` (flax ``nn.Conv`` parameter
layout, HWIO kernel). ``'lax'`` = ``conv_general_dilated`` forward; with ``backward='conv'`` its input
gradient is ``conv_transpose_2x`` of the cotangent with ``K^T`` (the fast sub-pixel forms above) instead
of XLA's input-dilated convolution, and its kernel gradient is XLA's own. ``'gemm'`` = space-to-depth (a
stride-2 4x4 conv is a stride-1 2x2 conv of the 2x2 space-to-depth input) plus a 2x2 im2col and one
matmul, differentiated by JAX (all GEMMs). ``'auto'`` picks ``'gemm'`` for thin inputs (``in < 16``: D's
first layer, where the patch tensor is small) and ``'lax'`` otherwise.

Measurements behind these choices (per layer: forward, input gradient and kernel gradient timed
separately against PyTorch on the same 2 cores) are in ``bench/RESULTS.md``; they assume the XLA:CPU flags
of ``jaxgan.xla_flags`` (YNNPACK off for convolutions), which ``launch.py`` sets.
"""

from __future__ import annotations

import functools
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
Impl = Literal['auto', 'col2im', 'conv2x2', 'gemm', 'conv', 'lax']
ConvImpl = Literal['auto', 'gemm', 'lax']
Backward = Literal['conv', 'autodiff']
_BACKWARDS = ('conv', 'autodiff')

_DN = ('NHWC', 'HWIO', 'NHWC')
# 'auto' thresholds measured on XLA:CPU (module docstring, bench/conv_layers.py, bench/RESULTS.md): the
# transposed conv uses 'col2im' while its tap tensor is at most this many bytes (memory-bound beyond)...
_AUTO_COL2IM_MAX_BYTES = 32 * 2**20
# ...and its GEMM contracts at least this many input channels (XLA:CPU's GEMM is slow at K = 128) or the
# layer has fewer output channels than this (then 'conv2x2''s 4 * out channels are too few)...
_AUTO_COL2IM_MIN_IN = 256
_AUTO_COL2IM_THIN_OUT = 16
# ...and the strided conv uses 'gemm' below this many input channels.
_AUTO_CONV_GEMM_BELOW = 16

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


def _read_phases(z: Array, h: int, w: int) -> Array:
  """[B, H+1, W+1, (ry, rx, O)] window products -> [B, 2H, 2W, O] ('gemm' and 'conv2x2').

  Phase (ry, rx) of output block (m, n) comes from window (m + ry, n + rx).
  """
  b, co = z.shape[0], z.shape[-1] // 4
  z = z.reshape(b, h + 1, w + 1, 2, 2, co)
  rows = [jnp.stack([z[:, ry:ry + h, rx:rx + w, ry, rx] for rx in range(2)], axis=3)
          for ry in range(2)]  # each [B, H, W, rx, O]
  return jnp.stack(rows, axis=2).reshape(b, 2 * h, 2 * w, co)


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
  return _read_phases(z.reshape(b, h + 1, w + 1, 4 * co), h, w)


def _conv_transpose_conv2x2(x: Array, kernel: Array, precision: Any) -> Array:
  _, h, w, _ = x.shape
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  # The 'gemm' product without its patch tensor: a stride-1 2x2 VALID convolution of the padded input.
  z = lax.conv_general_dilated(xp, _kernel_2x2_phases(kernel), (1, 1), 'VALID', dimension_numbers=_DN,
                               precision=precision)
  return _read_phases(z, h, w)


def _conv_transpose_conv(x: Array, kernel: Array, precision: Any) -> Array:
  b, h, w, _ = x.shape
  co = kernel.shape[-1]
  z = lax.conv_general_dilated(x, _kernel_3x3_phases(kernel), (1, 1), ((1, 1), (1, 1)),
                               dimension_numbers=_DN, precision=precision)  # [B, H, W, (ry, rx, o)]
  # depth-to-space (pixel shuffle)
  z = z.reshape(b, h, w, 2, 2, co).transpose(0, 1, 3, 2, 4, 5)
  return z.reshape(b, 2 * h, 2 * w, co)


def _conv_transpose_col2im(x: Array, kernel: Array, precision: Any) -> Array:
  b, h, w, ci = x.shape
  co = kernel.shape[-1]
  # z[b, iy, ix, (ky, kx, o)] = x[b, iy, ix] @ kernel[ky, kx]: the 16 taps of every input pixel.
  z = jnp.dot(x.reshape(-1, ci), kernel.transpose(2, 0, 1, 3).reshape(ci, 16 * co), precision=precision)
  z = z.reshape(b, h, w, 2, 2, 2, 2, co)  # [b, iy, ix, a, ry, c, rx, o] with ky = 2a + ry, kx = 2c + rx
  # Output row 2 iy - 1 + ky = 2 (iy + a) + ry - 1: tap block (a, c) lands one input pixel further
  # down/right per unit of a/c. Sum in an output padded by one pixel each side, blocked by 2x2 phases.
  y = None
  for a in range(2):
    for c in range(2):
      t = jnp.pad(z[:, :, :, a, :, c], ((0, 0), (a, 1 - a), (c, 1 - c), (0, 0), (0, 0), (0, 0)))
      y = t if y is None else y + t  # [b, m, n, ry, rx, o]
  y = y.transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h + 2, 2 * w + 2, co)
  return y[:, 1:2 * h + 1, 1:2 * w + 1]


def _conv_transpose_lax(x: Array, kernel: Array, precision: Any) -> Array:
  return lax.conv_transpose(x, kernel[::-1, ::-1], (2, 2), ((2, 2), (2, 2)),
                            dimension_numbers=_DN, precision=precision)


_IMPLS = {'col2im': _conv_transpose_col2im, 'gemm': _conv_transpose_gemm, 'conv2x2': _conv_transpose_conv2x2,
          'conv': _conv_transpose_conv, 'lax': _conv_transpose_lax}


def _check_backward(backward: str) -> None:
  if backward not in _BACKWARDS:
    raise ValueError(f"unknown backward {backward!r}; expected one of {', '.join(_BACKWARDS)}")


def _auto_transpose_impl(x_shape: tuple[int, ...], features: int, itemsize: int = 4) -> str:
  """'col2im' while its [B, H, W, 16 * features] tap tensor stays cache-sized and its GEMM is deep
  enough (or the output too thin for 'conv2x2''s 4 * features channels), else 'conv2x2'."""
  b, h, w, ci = x_shape
  small = b * h * w * 16 * features * itemsize <= _AUTO_COL2IM_MAX_BYTES
  return 'col2im' if small and (ci >= _AUTO_COL2IM_MIN_IN or features < _AUTO_COL2IM_THIN_OUT) else 'conv2x2'


def _strided_conv_kernel_grad(x: Array, kernel_shape: tuple[int, ...], dtype: Any, g: Array,
                              precision: Any) -> Array:
  """d<conv_4x4_s2(x, K), g>/dK: XLA's own weight gradient of the strided conv (a window-dilated conv)."""
  _, vjp = jax.vjp(lambda k: _conv_s2_lax(x, k, precision), jnp.zeros(kernel_shape, dtype))
  return vjp(g)[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_transpose_conv_vjp(x: Array, kernel: Array, impl: str, precision: Any) -> Array:
  return _IMPLS[impl](x, kernel, precision)


def _conv_transpose_fwd(x, kernel, impl, precision):
  return _IMPLS[impl](x, kernel, precision), (x, kernel)


def _conv_transpose_bwd(impl, precision, residuals, g):
  # The transposed conv is the adjoint of conv_4x4_s2(., K^T) (module docstring), so its input gradient
  # is that strided convolution of g and its kernel gradient is the strided conv's weight gradient with
  # the roles of input and cotangent swapped: no input-dilated convolution anywhere.
  x, kernel = residuals
  kt = kernel.swapaxes(2, 3)
  dx = _conv_s2_lax(g, kt, precision)
  dk = _strided_conv_kernel_grad(g, kt.shape, kt.dtype, x, precision).swapaxes(2, 3)
  return dx.astype(x.dtype), dk.astype(kernel.dtype)


_conv_transpose_conv_vjp.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)


def conv_transpose_2x(x: Array, kernel: Array, *, impl: Impl = 'auto', backward: Backward = 'conv',
                      precision: Any = None) -> Array:
  """PyTorch ``ConvTranspose2d(k=4, s=2, p=1, bias=False)`` on NHWC ``x`` with an HWIO (4, 4, I, O) kernel.

  ``impl`` picks the forward formulation; ``backward='conv'`` differentiates through strided
  convolutions (a custom VJP, reverse mode only), ``'autodiff'`` lets JAX differentiate the forward.
  ``impl='lax'`` is always differentiated by JAX (the reference).
  """
  chex.assert_rank(x, 4)
  chex.assert_shape(kernel, (4, 4, x.shape[-1], None))
  if impl == 'auto':
    impl = _auto_transpose_impl(x.shape, kernel.shape[-1], jnp.dtype(x.dtype).itemsize)
  if impl not in _IMPLS:
    raise ValueError(f'unknown impl {impl!r}; expected one of auto, {", ".join(_IMPLS)}')
  _check_backward(backward)
  if backward == 'conv' and impl != 'lax':
    y = _conv_transpose_conv_vjp(x, kernel, impl, precision)
  else:
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
  backward: Backward = 'conv'
  dtype: Any = None
  param_dtype: Any = jnp.float32
  precision: Any = None

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = self.param('kernel', self.kernel_init, (4, 4, x.shape[-1], self.features), self.param_dtype)
    bias = self.param('bias', self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
    x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
    y = conv_transpose_2x(x, kernel, impl=self.impl, backward=self.backward, precision=self.precision)
    if bias is not None:
      y = y + bias
    return y


def _conv_s2_gemm(x: Array, kernel: Array, precision: Any) -> Array:
  b, h, w, ci = x.shape
  co = kernel.shape[-1]
  ho, wo = h // 2, w // 2
  # Space-to-depth of the padded input: xs[b, m, n, (ry, rx, i)] = xp[b, 2m + ry, 2n + rx, i].
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  xs = xp.reshape(b, ho + 1, 2, wo + 1, 2, ci).transpose(0, 1, 3, 2, 4, 5).reshape(b, ho + 1, wo + 1, 4 * ci)
  # 2x2 im2col of xs: window (a, c) of output (m, n) is xs[m + a, n + c] (kernel tap ky = 2a + ry).
  patches = jnp.concatenate([xs[:, a:a + ho, c:c + wo] for a in range(2) for c in range(2)], axis=-1)
  k = kernel.reshape(2, 2, 2, 2, ci, co).transpose(0, 2, 1, 3, 4, 5).reshape(16 * ci, co)  # [a, c, ry, rx, i]
  return jnp.dot(patches.reshape(-1, 16 * ci), k, precision=precision).reshape(b, ho, wo, co)


def _conv_s2_lax(x: Array, kernel: Array, precision: Any) -> Array:
  return lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_DN,
                                  precision=precision)


_CONV_IMPLS = {'gemm': _conv_s2_gemm, 'lax': _conv_s2_lax}


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_s2_conv_vjp(x: Array, kernel: Array, precision: Any) -> Array:
  return _conv_s2_lax(x, kernel, precision)


def _conv_s2_fwd(x, kernel, precision):
  return _conv_s2_lax(x, kernel, precision), (x, kernel)


def _conv_s2_bwd(precision, residuals, g):
  # Input gradient = the transposed conv of g with K^T (fast sub-pixel forms) instead of XLA's
  # input-dilated convolution; kernel gradient = XLA's own (a window-dilated conv, fast on CPU).
  x, kernel = residuals
  kt = kernel.swapaxes(2, 3)
  dx = conv_transpose_2x(g, kt, impl='auto', backward='conv', precision=precision)
  dk = _strided_conv_kernel_grad(x, kernel.shape, kernel.dtype, g, precision)
  return dx.astype(x.dtype), dk.astype(kernel.dtype)


_conv_s2_conv_vjp.defvjp(_conv_s2_fwd, _conv_s2_bwd)


def conv_4x4_s2(x: Array, kernel: Array, *, impl: ConvImpl = 'auto', backward: Backward = 'conv',
                precision: Any = None) -> Array:
  """PyTorch ``Conv2d(k=4, s=2, p=1, bias=False)`` on NHWC ``x`` (even H, W) with an HWIO (4, 4, I, O) kernel.

  ``backward='conv'`` (with ``impl='lax'``) takes the input gradient through ``conv_transpose_2x`` (a
  custom VJP, reverse mode only); ``'autodiff'`` lets JAX differentiate the forward. ``impl='gemm'`` is
  always differentiated by JAX (its gradients are GEMMs already).
  """
  chex.assert_rank(x, 4)
  chex.assert_shape(kernel, (4, 4, x.shape[-1], None))
  if x.shape[1] % 2 or x.shape[2] % 2:
    raise ValueError(f'conv_4x4_s2 needs an even height and width, got {x.shape[1:3]}')
  if impl == 'auto':
    impl = 'gemm' if x.shape[-1] < _AUTO_CONV_GEMM_BELOW else 'lax'
  if impl not in _CONV_IMPLS:
    raise ValueError(f'unknown impl {impl!r}; expected one of auto, {", ".join(_CONV_IMPLS)}')
  _check_backward(backward)
  if impl == 'lax' and backward == 'conv':
    y = _conv_s2_conv_vjp(x, kernel, precision)
  else:
    y = _CONV_IMPLS[impl](x, kernel, precision)
  chex.assert_shape(y, (x.shape[0], x.shape[1] // 2, x.shape[2] // 2, kernel.shape[-1]))
  return y


class Conv4x4S2(nn.Module):
  """Stride-2 4x4 convolution, padding 1: [B, H, W, I] -> [B, H/2, W/2, features] (H, W even).

  Same parameters as ``nn.Conv(features, (4, 4), (2, 2), padding=((1, 1), (1, 1)), use_bias=False)``
  (one ``kernel`` of shape (4, 4, I, features)), so it is a drop-in for it in a parameter tree; see the
  module docstring for ``impl``.
  """

  features: int
  kernel_init: Initializer = dcgan_normal()
  impl: ConvImpl = 'auto'
  backward: Backward = 'conv'
  dtype: Any = None
  param_dtype: Any = jnp.float32
  precision: Any = None

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = self.param('kernel', self.kernel_init, (4, 4, x.shape[-1], self.features), self.param_dtype)
    x, kernel = promote_dtype(x, kernel, dtype=self.dtype)
    return conv_4x4_s2(x, kernel, impl=self.impl, backward=self.backward, precision=self.precision)


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
