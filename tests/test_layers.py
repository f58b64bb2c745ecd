"""Tests for jaxgan.models.layers: ConvTranspose2x == PyTorch ConvTranspose2d(4, 2, 1), Conv4x4S2 == lax's
strided conv, SpatialProjection."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxgan.models.layers import (Conv4x4S2, ConvTranspose2x, SpatialProjection, _auto_transpose_impl, conv_4x4_s2,
                                  conv_transpose_2x, dcgan_normal)

DN = ('NHWC', 'HWIO', 'NHWC')
IMPLS = ['col2im', 'gemm', 'conv2x2', 'conv', 'auto']
BACKWARDS = ['conv', 'autodiff']
# (batch, H, W, in, out): square/non-square, odd sizes (at these sizes 'auto' is 'col2im'; the rule
# itself is tested in test_auto_picks_col2im_for_small_tap_tensors_and_deep_or_thin_layers).
SHAPES = [(2, 4, 4, 8, 16), (3, 5, 7, 3, 1), (2, 9, 8, 4, 16)]


def torch_conv_transpose_numpy(x: np.ndarray, w_torch: np.ndarray, stride: int, pad: int) -> np.ndarray:
  """PyTorch ConvTranspose2d definition (NHWC in/out, weight (I, O, kh, kw)), as an explicit scatter."""
  b, h, w, _ = x.shape
  _, co, kh, kw = w_torch.shape
  ho, wo = (h - 1) * stride - 2 * pad + kh, (w - 1) * stride - 2 * pad + kw
  full = np.zeros((b, (h - 1) * stride + kh, (w - 1) * stride + kw, co))
  for iy in range(h):
    for ix in range(w):
      # full[s*iy + ky, s*ix + kx, o] += sum_i x[iy, ix, i] W[i, o, ky, kx]
      full[:, stride * iy:stride * iy + kh, stride * ix:stride * ix + kw] += np.einsum(
          'bi,ioyx->byxo', x[:, iy, ix].astype(np.float64), w_torch.astype(np.float64))
  return full[:, pad:pad + ho, pad:pad + wo]


def lax_reference(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """lax.conv_transpose correlates a 2-dilated input: flip the kernel, pad k - 1 - p = 2 per side."""
  return lax.conv_transpose(x, kernel[::-1, ::-1], (2, 2), ((2, 2), (2, 2)), dimension_numbers=DN)


def _inputs(shape, seed=0):
  b, h, w, ci, co = shape
  kx, kk = jax.random.split(jax.random.key(seed))
  return jax.random.normal(kx, (b, h, w, ci)), 0.1 * jax.random.normal(kk, (4, 4, ci, co))


@pytest.mark.parametrize('impl', IMPLS + ['lax'])
def test_matches_pytorch_definition(impl):
  x, kernel = _inputs((2, 3, 4, 2, 3))
  w_torch = np.asarray(kernel).transpose(2, 3, 0, 1)  # kernel[ky, kx, i, o] == W_torch[i, o, ky, kx]
  want = torch_conv_transpose_numpy(np.asarray(x), w_torch, stride=2, pad=1)
  got = jax.jit(lambda x, k: conv_transpose_2x(x, k, impl=impl))(x, kernel)
  assert got.shape == (2, 6, 8, 3)
  np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize('backward', BACKWARDS)
@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('impl', IMPLS)
def test_forward_and_grads_match_lax(impl, shape, backward):
  x, kernel = _inputs(shape)
  b, h, w, _, co = shape
  # cotangent scaled so that all gradients are O(1): the 1e-5 tolerance is then ~50x float32 rounding
  cot = 0.1 * jax.random.normal(jax.random.key(7), (b, 2 * h, 2 * w, co))

  def fwd_vjp(f):
    y, vjp = jax.vjp(f, x, kernel)
    return (y, *vjp(cot))

  got = jax.jit(lambda: fwd_vjp(lambda x, k: conv_transpose_2x(x, k, impl=impl, backward=backward)))()
  want = jax.jit(lambda: fwd_vjp(lax_reference))()
  for name, g, r in zip(['y', 'dx', 'dkernel'], got, want):
    assert g.shape == r.shape and g.dtype == jnp.float32, name
    # <= 1e-5 absolute for O(1) values, relative for the larger kernel-gradient sums (float32 order)
    np.testing.assert_allclose(g, r, atol=1e-5, rtol=1e-5, err_msg=name)


def test_is_adjoint_of_strided_conv():
  """PyTorch's ConvTranspose2d is the input-gradient of Conv2d(k=4, s=2, p=1) with in/out swapped."""
  x, kernel = _inputs((2, 4, 4, 8, 16))
  y = jax.random.normal(jax.random.key(3), (2, 8, 8, 16))
  conv = lambda y: lax.conv_general_dilated(y, kernel.swapaxes(2, 3), (2, 2), ((1, 1), (1, 1)),
                                            dimension_numbers=DN)
  lhs = jnp.vdot(jax.jit(conv_transpose_2x)(x, kernel), y)
  rhs = jnp.vdot(x, conv(y))
  np.testing.assert_allclose(lhs, rhs, rtol=1e-5)


def test_flax_conv_transpose_equals_flipped_kernel():
  """flax.linen.ConvTranspose(k=4, s=2, padding='SAME') is this layer with a spatially flipped kernel."""
  x, kernel = _inputs((2, 4, 4, 8, 16))
  flax_layer = nn.ConvTranspose(16, (4, 4), (2, 2), padding='SAME', use_bias=False)
  got = jax.jit(flax_layer.apply)({'params': {'kernel': kernel[::-1, ::-1]}}, x)
  np.testing.assert_allclose(got, conv_transpose_2x(x, kernel), atol=1e-5, rtol=0)


def test_module_params_bias_and_init():
  x = jnp.ones((2, 4, 4, 64))
  layer = ConvTranspose2x(32, use_bias=True, bias_init=nn.initializers.constant(0.5))
  variables = layer.init(jax.random.key(0), x)
  params = variables['params']
  assert set(variables) == {'params'}
  assert params['kernel'].shape == (4, 4, 64, 32) and params['bias'].shape == (32,)
  assert sum(p.size for p in jax.tree.leaves(params)) == 16 * 64 * 32 + 32  # PyTorch's count
  # DCGAN init N(0, 0.02): 32768 samples -> sample std within a few % of 0.02
  assert abs(float(params['kernel'].std()) - 0.02) < 0.001
  assert abs(float(params['kernel'].mean())) < 0.001
  y = jax.jit(layer.apply)(variables, x)
  np.testing.assert_allclose(y, conv_transpose_2x(x, params['kernel']) + 0.5, atol=1e-5, rtol=0)
  no_bias = ConvTranspose2x(32).init(jax.random.key(0), x)['params']
  assert set(no_bias) == {'kernel'}


def test_module_dtype():
  x = jnp.ones((1, 4, 4, 8))
  variables = ConvTranspose2x(4).init(jax.random.key(0), x)
  assert variables['params']['kernel'].dtype == jnp.float32
  assert ConvTranspose2x(4).apply(variables, x).dtype == jnp.float32
  assert ConvTranspose2x(4, dtype=jnp.bfloat16).apply(variables, x).dtype == jnp.bfloat16


def test_rejects_bad_impl_and_kernel():
  x, kernel = jnp.zeros((1, 2, 2, 3)), jnp.zeros((4, 4, 3, 4))
  with pytest.raises(ValueError, match='unknown impl'):
    conv_transpose_2x(x, kernel, impl='fft')
  with pytest.raises(AssertionError):
    conv_transpose_2x(x, kernel[:3])


def test_spatial_projection_is_torch_first_layer():
  """SpatialProjection == PyTorch ConvTranspose2d(D, C, 4, 1, 0) applied to a 1x1 input."""
  nz, c = 10, 6
  z = jax.random.normal(jax.random.key(0), (3, nz))
  layer = SpatialProjection(size=4, features=c)
  variables = layer.init(jax.random.key(1), z)
  kernel = variables['params']['dense']['kernel']
  assert kernel.shape == (nz, 4, 4, c)
  assert sum(p.size for p in jax.tree.leaves(variables)) == nz * 16 * c  # no bias
  got = jax.jit(layer.apply)(variables, z)
  # transposed conv, k=4, s=1, p=0 on a 1x1 image: flip + pad k - 1 - p = 3.
  hwio = kernel.transpose(1, 2, 0, 3)  # [y, x, d, o] == W_torch[d, o, y, x]
  want = lax.conv_transpose(z[:, None, None, :], hwio[::-1, ::-1], (1, 1), ((3, 3), (3, 3)),
                            dimension_numbers=DN)
  assert got.shape == (3, 4, 4, c)
  np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_dcgan_normal_mean():
  w = dcgan_normal(1.0, 0.02)(jax.random.key(0), (4096,))
  assert abs(float(w.mean()) - 1.0) < 0.002 and abs(float(w.std()) - 0.02) < 0.002


def _vjp_all(f, x, kernel, cot):
  y, vjp = jax.vjp(f, x, kernel)
  return (y, *vjp(cot))


@pytest.mark.parametrize('backward', BACKWARDS)
@pytest.mark.parametrize('shape', [(2, 8, 8, 3, 16), (3, 6, 10, 16, 8), (2, 4, 4, 40, 1)])
@pytest.mark.parametrize('impl', ['gemm', 'lax', 'auto'])
def test_conv_4x4_s2_forward_and_grads_match_lax(impl, shape, backward):
  """Conv4x4S2's formulations == lax.conv_general_dilated(stride 2, pad 1) in value and both gradients."""
  b, h, w, ci, co = shape
  kx, kk, kc = jax.random.split(jax.random.key(5), 3)
  x, kernel = jax.random.normal(kx, (b, h, w, ci)), 0.1 * jax.random.normal(kk, (4, 4, ci, co))
  cot = 0.1 * jax.random.normal(kc, (b, h // 2, w // 2, co))
  reference = lambda x, k: lax.conv_general_dilated(x, k, (2, 2), ((1, 1), (1, 1)), dimension_numbers=DN)
  got = jax.jit(lambda: _vjp_all(lambda x, k: conv_4x4_s2(x, k, impl=impl, backward=backward), x, kernel, cot))()
  want = jax.jit(lambda: _vjp_all(reference, x, kernel, cot))()
  for name, g, r in zip(['y', 'dx', 'dkernel'], got, want):
    assert g.shape == r.shape and g.dtype == jnp.float32, name
    np.testing.assert_allclose(g, r, atol=1e-5, rtol=1e-5, err_msg=name)


def test_conv4x4s2_module_is_flax_conv_drop_in():
  """Same parameter tree and init as nn.Conv(k=4, s=2, p=1, no bias), same function."""
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
  ours = Conv4x4S2(32, kernel_init=dcgan_normal())
  flax_conv = nn.Conv(32, (4, 4), (2, 2), padding=((1, 1), (1, 1)), use_bias=False, kernel_init=dcgan_normal())
  v_ours, v_flax = ours.init(jax.random.key(1), x), flax_conv.init(jax.random.key(1), x)
  assert jax.tree.map(jnp.shape, v_ours) == jax.tree.map(jnp.shape, v_flax) == {'params': {'kernel': (4, 4, 3, 32)}}
  np.testing.assert_array_equal(v_ours['params']['kernel'], v_flax['params']['kernel'])
  np.testing.assert_allclose(jax.jit(ours.apply)(v_ours, x), jax.jit(flax_conv.apply)(v_flax, x), atol=1e-5, rtol=0)
  assert Conv4x4S2(32, dtype=jnp.bfloat16).apply(v_ours, x).dtype == jnp.bfloat16


def _grad_penalty_grad(layer, x, kernel):
  """d/dkernel of |d sum(sin(layer(x, k)))/dx|^2: the reverse-over-reverse pattern of R1 and WGAN-GP."""
  inner = lambda k: jnp.sum(jax.grad(lambda x: jnp.sum(jnp.sin(layer(x, k))))(x) ** 2)
  return jax.grad(inner)(kernel)


def test_custom_vjps_differentiate_twice_like_lax():
  """The custom VJPs (backward='conv') are themselves differentiable: gradient penalties stay exact."""
  x, kernel = _inputs((2, 5, 6, 8, 16))
  got = jax.jit(lambda: _grad_penalty_grad(lambda x, k: conv_transpose_2x(x, k, impl='conv2x2'), x, kernel))()
  want = jax.jit(lambda: _grad_penalty_grad(lax_reference, x, kernel))()
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(want))))
  x = jax.random.normal(jax.random.key(2), (2, 8, 6, 16))
  kernel = 0.1 * jax.random.normal(jax.random.key(3), (4, 4, 16, 8))
  reference = lambda x, k: lax.conv_general_dilated(x, k, (2, 2), ((1, 1), (1, 1)), dimension_numbers=DN)
  got = jax.jit(lambda: _grad_penalty_grad(lambda x, k: conv_4x4_s2(x, k, impl='lax'), x, kernel))()
  want = jax.jit(lambda: _grad_penalty_grad(reference, x, kernel))()
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(want))))


def test_custom_vjps_keep_bfloat16_gradients():
  x, kernel = _inputs((2, 4, 4, 16, 8))
  xb, kb = x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16)
  for layer in (conv_transpose_2x, conv_4x4_s2):
    grads = jax.jit(jax.grad(lambda x, k: jnp.sum(layer(x, k).astype(jnp.float32)), (0, 1)))(xb, kb)
    assert [g.dtype for g in grads] == [jnp.bfloat16, jnp.bfloat16], layer.__name__


def test_auto_picks_col2im_for_small_tap_tensors_and_deep_or_thin_layers():
  """'col2im' writes a [B, H, W, 16 * out] tap tensor (memory-bound once it outgrows the caches) with a
  GEMM over the input channels (slow on XLA:CPU when they are few, unless the output is thin)."""
  assert _auto_transpose_impl((64, 4, 4, 512), 256) == 'col2im'  # 16 MiB, K = 512
  assert _auto_transpose_impl((64, 32, 32, 64), 3) == 'col2im'  # 12 MiB, thin output
  assert _auto_transpose_impl((64, 7, 7, 128), 64) == 'conv2x2'  # 12 MiB but K = 128
  assert _auto_transpose_impl((64, 16, 16, 128), 64) == 'conv2x2'  # 64 MiB
  assert _auto_transpose_impl((256, 4, 4, 512), 256) == 'conv2x2'  # 64 MiB
  assert _auto_transpose_impl((256, 4, 4, 512), 256, itemsize=2) == 'col2im'  # bfloat16: 32 MiB


def test_rejects_bad_backward():
  x, kernel = _inputs((1, 4, 4, 3, 2))
  with pytest.raises(ValueError, match='unknown backward'):
    conv_transpose_2x(x, kernel, backward='fft')
  with pytest.raises(ValueError, match='unknown backward'):
    conv_4x4_s2(jnp.zeros((1, 4, 4, 3)), jnp.zeros((4, 4, 3, 2)), backward='numeric')


def test_conv_4x4_s2_rejects_odd_sizes_and_bad_impl():
  with pytest.raises(ValueError, match='even'):
    conv_4x4_s2(jnp.zeros((1, 5, 4, 3)), jnp.zeros((4, 4, 3, 2)))
  with pytest.raises(ValueError, match='unknown impl'):
    conv_4x4_s2(jnp.zeros((1, 4, 4, 3)), jnp.zeros((4, 4, 3, 2)), impl='col2im')
