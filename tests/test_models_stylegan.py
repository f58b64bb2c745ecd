"""Tests for jaxgan.models.stylegan: demodulation, FIR resampling, style mixing, truncation, shapes, and
agreement with NVIDIA's StyleGAN2 code (outputs stored in ``tests/data/stylegan2_reference.npz``, written
by ``tests/data/make_stylegan2_reference.py``)."""

import functools
import pathlib

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxgan.models import stylegan as sg
from jaxgan.recipes.stylegan import sample

KEY = jax.random.key(0)


def _interior_outputs(demodulate: bool) -> jax.Array:
  conv = sg.ModulatedConv(16, demodulate=demodulate)
  x = jax.random.normal(KEY, (64, 12, 12, 16))
  w = jax.random.normal(jax.random.key(1), (64, 8))
  variables = conv.init(jax.random.key(2), x, w)
  # Styles far from 1 (strong per-example modulation): without demodulation the scale is off.
  affine = variables["params"]["affine"]
  variables = {"params": {**variables["params"], "affine": {**affine, "kernel": affine["kernel"] * 3.0}}}
  y = jax.jit(conv.apply)(variables, x, w)
  interior = y[:, 1:-1, 1:-1, :]  # 'SAME' zero padding lowers the variance at the border
  return interior


def test_demodulation_gives_unit_variance_outputs_for_unit_variance_inputs():
  y = _interior_outputs(demodulate=True)
  # Per example and output channel (each has its own demodulation coefficient): 100 pixels each.
  per_map = jnp.var(y, axis=(1, 2))
  assert abs(float(jnp.mean(jnp.square(y))) - 1.0) < 0.03
  assert abs(float(jnp.median(per_map)) - 1.0) < 0.1


def test_without_demodulation_the_variance_follows_the_styles():
  y = _interior_outputs(demodulate=False)
  assert abs(float(jnp.mean(jnp.square(y))) - 1.0) > 0.5


def _upfirdn_reference(x: jax.Array, up: bool) -> jax.Array:
  """upfirdn2d with f = [1, 3, 3, 1] (outer product, normalised; gain 4 when upsampling), one channel
  at a time via lax's dilated / strided convolution."""
  f = np.array([1.0, 3.0, 3.0, 1.0])
  k = np.outer(f, f) / np.sum(f) ** 2
  c = x.shape[-1]
  kernel = jnp.asarray(np.tile(k[:, :, None, None], (1, 1, 1, c)), jnp.float32)
  dn = ("NHWC", "HWIO", "NHWC")
  if up:  # upfirdn2d pads (2, 1) after zero insertion; lax's dilation drops the trailing zero: (2, 2)
    return lax.conv_general_dilated(x, kernel * 4, (1, 1), ((2, 2), (2, 2)), lhs_dilation=(2, 2),
                                    dimension_numbers=dn, feature_group_count=c)
  return lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=dn,
                                  feature_group_count=c)


def test_fir_upsample_and_downsample_match_upfirdn2d():
  x = jax.random.normal(KEY, (2, 6, 6, 3))
  up = jax.jit(sg.upsample_2x)(x)
  assert up.shape == (2, 12, 12, 3)
  np.testing.assert_allclose(up, _upfirdn_reference(x, up=True), atol=1e-5)
  down = jax.jit(sg.downsample_2x)(x)
  assert down.shape == (2, 3, 3, 3)
  np.testing.assert_allclose(down, _upfirdn_reference(x, up=False), atol=1e-5)
  # Interior of a constant image stays constant (the filter has unit DC gain per output pixel).
  np.testing.assert_allclose(sg.upsample_2x(jnp.ones((1, 6, 6, 1)))[0, 2:-2, 2:-2, 0], 1.0, atol=1e-6)


REFERENCE = pathlib.Path(__file__).parent / "data" / "stylegan2_reference.npz"


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
  with np.load(REFERENCE) as data:
    return dict(data)


def _params(reference: dict[str, np.ndarray], prefix: str) -> dict:
  """The stored flat ``prefix/a/b`` arrays as a nested params dict."""
  flat = {k[len(prefix) + 1:]: jnp.asarray(v) for k, v in reference.items() if k.startswith(prefix + "/")}
  return flax.traverse_util.unflatten_dict(flat, sep="/")


def test_resampling_convs_match_the_reference_conv2d_resample_borders_included(reference):
  """up_conv / down_conv against stylegan2-ada-pytorch's ``conv2d_resample`` (up=2 / down=2, 3x3)."""
  up = jax.jit(sg.up_conv)(reference["up_x"], reference["up_kernel"])
  assert up.shape == reference["up_y"].shape == (2, 14, 14, 5)
  np.testing.assert_allclose(up, reference["up_y"], atol=1e-4)
  down = jax.jit(sg.down_conv)(reference["down_x"], reference["down_kernel"])
  assert down.shape == reference["down_y"].shape == (2, 7, 7, 5)
  np.testing.assert_allclose(down, reference["down_y"], atol=1e-4)
  # The borders are what a plain upsample-then-'SAME'-conv gets wrong: it must differ there.
  plain = lax.conv_general_dilated(sg.upsample_2x(reference["up_x"]), reference["up_kernel"], (1, 1), "SAME",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(plain[:, 2:-2, 2:-2], reference["up_y"][:, 2:-2, 2:-2], atol=1e-4)
  assert float(jnp.max(jnp.abs(plain - reference["up_y"]))) > 0.1


def test_generator_and_discriminator_match_the_reference_networks(reference):
  """Whole 16 px networks (2 mapping layers, 8 channels) with the reference's weights: same outputs."""
  generator = sg.StyleGenerator(resolution=16, channels=1, width=8, w_dim=16, mapping_layers=2)
  images = jax.jit(functools.partial(generator.apply, noise=False))(
      {"params": _params(reference, "g_params")}, reference["g_z"])
  assert images.shape == reference["g_images"].shape == (8, 16, 16, 1)
  np.testing.assert_allclose(images, reference["g_images"], atol=1e-4)
  discriminator = sg.StyleDiscriminator(resolution=16, width=8)
  logits = jax.jit(discriminator.apply)({"params": _params(reference, "d_params")}, reference["d_images"])
  np.testing.assert_allclose(logits, reference["d_logits"], atol=1e-5)
  assert float(np.std(reference["d_logits"])) > 1e-3  # the logits are not all the same value


def test_equalized_dense_stores_weights_at_1_over_lr_mul_and_runs_them_at_he_scale():
  layer = sg.EqDense(256, lr_mul=0.01)
  x = jax.random.normal(KEY, (512, 256))
  variables = layer.init(KEY, x)
  assert abs(float(jnp.std(variables["params"]["kernel"])) - 100.0) < 2.0
  y = layer.apply(variables, x)
  assert abs(float(jnp.var(y)) - 1.0) < 0.1  # He-scaled effective weights: unit variance in/out


def test_mix_styles_switches_w_at_the_crossover_layer():
  w1 = jnp.arange(3 * 4, dtype=jnp.float32).reshape(3, 4)
  w2 = -w1 - 1.0
  crossover = jnp.array([1, 3, 6])  # 6 == num_layers: no mixing for the last example
  ws = jax.jit(sg.mix_styles, static_argnums=3)(w1, w2, crossover, 6)
  assert ws.shape == (3, 6, 4)
  for b, c in enumerate([1, 3, 6]):
    for layer in range(6):
      np.testing.assert_array_equal(ws[b, layer], w1[b] if layer < c else w2[b])


def test_sample_crossover_probability():
  never = sg.sample_crossover(KEY, 1000, 8, 0.0)
  always = sg.sample_crossover(KEY, 1000, 8, 1.0)
  half = sg.sample_crossover(KEY, 4000, 8, 0.9)
  assert bool(jnp.all(never == 8))
  assert int(always.min()) == 1 and int(always.max()) == 7
  assert abs(float(jnp.mean(half < 8)) - 0.9) < 0.03


def _tiny_generator(resolution=14):
  g = sg.StyleGenerator(resolution=resolution, channels=1, width=8, w_dim=16)
  params = g.init(KEY, jnp.zeros((1, 16)), noise=False)["params"]
  # Random (not zero-initialised) noise strengths and biases so every input matters.
  params = jax.tree_util.tree_map_with_path(
      lambda p, v: v + 0.3 if "noise_strength" in jax.tree_util.keystr(p) else v, params)
  return g, params


def test_synthesis_reads_each_layer_style_so_mixing_changes_only_later_layers():
  g, params = _tiny_generator()
  num = sg.num_ws(14)
  w1, w2 = jax.random.normal(KEY, (2, 1, 16))
  synth = lambda ws: g.apply({"params": params}, ws, False, method="synthesize")  # noqa: E731

  @jax.jit
  def run(w1, w2):
    # Crossover c = 1..num (num = no mixing) in one batch, and d out / d ws of the unmixed image.
    crossovers = jnp.arange(1, num + 1)
    ws = sg.mix_styles(jnp.repeat(w1, num, 0), jnp.repeat(w2, num, 0), crossovers, num)
    grad = jax.grad(lambda v: jnp.sum(synth(v)))(jnp.broadcast_to(w1[:, None], (1, num, 16)))
    return synth(ws), grad

  images, grad = run(w1, w2)
  assert all(float(jnp.abs(grad[0, i]).sum()) > 0 for i in range(num))  # every layer's style is read
  base = images[-1]
  for c in range(num - 1):  # switching to w2 at any layer changes the image
    assert float(jnp.abs(images[c] - base).max()) > 1e-4


def test_truncation_psi_zero_returns_the_mean_w_image():
  g, params = _tiny_generator()
  w_avg = jax.random.normal(jax.random.key(3), (16,))
  z = jax.random.normal(KEY, (4, 16))
  noise_key = jax.random.key(4)

  @jax.jit
  def run(params, w_avg, z):
    psi = jnp.array([0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    both = sample(g, params, w_avg, jnp.concatenate([z, z]), psi, noise_key, noise=False)
    ws_avg = jnp.broadcast_to(w_avg, (1, sg.num_ws(14), 16))
    return (both[:4], both[4:], g.apply({"params": params}, ws_avg, False, method="synthesize"),
            g.apply({"params": params}, z, False))

  at_zero, at_one, mean_image, untruncated = run(params, w_avg, z)
  np.testing.assert_allclose(at_zero, jnp.broadcast_to(mean_image, at_zero.shape), atol=1e-5)
  # psi = 1 is the untruncated generator: different z, different images.
  np.testing.assert_allclose(at_one, untruncated, atol=1e-5)
  assert float(jnp.abs(at_one[0] - at_one[1]).max()) > 1e-3


def test_noise_inputs_use_the_noise_rng_and_learned_strength():
  g, params = _tiny_generator()
  z = jax.random.normal(KEY, (2, 16))
  zero = jax.tree_util.tree_map_with_path(
      lambda p, v: 0.0 * v if "noise_strength" in jax.tree_util.keystr(p) else v, params)

  @jax.jit
  def run(params, zero):
    noisy = lambda p, k: g.apply({"params": p}, z, rngs={"noise": jax.random.key(k)})  # noqa: E731
    return noisy(params, 1), noisy(params, 2), noisy(zero, 1), g.apply({"params": zero}, z, False)

  a, b, c, clean = run(params, zero)
  assert float(jnp.abs(a - b).max()) > 1e-4
  np.testing.assert_allclose(c, clean, atol=1e-6)


@pytest.mark.parametrize("resolution,expected_ws", [(28, 6), (32, 8), (64, 10)])
def test_shapes_at_each_resolution(resolution, expected_ws):
  g = sg.StyleGenerator(resolution=resolution, channels=3, width=8, w_dim=16)
  d = sg.StyleDiscriminator(resolution=resolution, width=8)
  z = jnp.zeros((4, 16))
  g_vars = jax.eval_shape(functools.partial(g.init, noise=False), KEY, z)
  x = jax.eval_shape(lambda v: g.apply(v, z, False), g_vars)
  assert x.shape == (4, resolution, resolution, 3)
  assert sg.num_ws(resolution) == expected_ws
  d_vars = jax.eval_shape(d.init, KEY, x)
  assert jax.eval_shape(d.apply, d_vars, x).shape == (4,)
  mapping = g_vars["params"]["mapping"]
  assert len(mapping) == 8  # 8 mapping layers


def test_minibatch_stddev_appends_group_std():
  x = jnp.stack([jnp.full((2, 2, 3), v) for v in [0.0, 1.0, 2.0, 3.0, 10.0, 10.0, 10.0, 10.0]])
  out = sg.minibatch_stddev(x, group_size=2)  # groups {0, 4}, {1, 5}, {2, 6}, {3, 7}
  assert out.shape == (8, 2, 2, 4)
  expected = [5.0, 4.5, 4.0, 3.5, 5.0, 4.5, 4.0, 3.5]  # std of {v, 10} = |10 - v| / 2
  np.testing.assert_allclose(out[:, 0, 0, 3], expected, atol=1e-3)
