"""Tests for jaxgan.models.pix2pix: U-Net shapes, dropout noise, PatchGAN receptive field (computed and
checked against the gradient support of one output)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.models.pix2pix import (PatchDiscriminator, UNetGenerator, conditional_input, default_patch_layers,
                                   patch_layers, receptive_field, unet_levels)


@pytest.mark.parametrize("resolution,in_ch,out_ch", [(28, 1, 1), (32, 1, 3), (64, 3, 3), (256, 3, 3)])
def test_unet_output_shape_equals_input_shape(resolution, in_ch, out_ch):
  # Traced like jit (shapes only, nothing computed): cheap at every resolution, 256 included.
  g = UNetGenerator(out_channels=out_ch, ngf=4)
  x = jax.ShapeDtypeStruct((2, resolution, resolution, in_ch), jnp.float32)
  variables = jax.eval_shape(lambda x: g.init(jax.random.PRNGKey(1), x, train=False), x)
  y = jax.eval_shape(
      lambda v, x: g.apply(v, x, train=True, rngs={"dropout": jax.random.PRNGKey(2)}, mutable=["batch_stats"])[0],
      variables, x)
  assert y.shape == (2, resolution, resolution, out_ch)
  levels = unet_levels(resolution)
  assert len([k for k in variables["params"] if k.startswith("down_") and "norm" not in k]) == levels


def test_unet_levels_follow_the_resolution():
  assert [unet_levels(r) for r in (28, 32, 64, 256, 512)] == [2, 5, 6, 8, 8]
  with pytest.raises(ValueError):
    unet_levels(7)


def test_unet_skip_connections_reach_the_output_from_the_first_layer():
  # With 2 levels the output pixel (0, 0) depends on the input only through 4x4 convolutions; a pixel far
  # away cannot influence it, a nearby one does (the shallow skip path), at every depth.
  g = UNetGenerator(out_channels=1, ngf=4, levels=2)
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 32, 32, 1))
  variables = jax.jit(lambda x: g.init(jax.random.PRNGKey(1), x, train=False))(x)
  grad = jax.jit(jax.grad(lambda x: g.apply(variables, x, train=False)[0, 0, 0, 0]))(x)[0, ..., 0]
  assert float(jnp.abs(grad[:2, :2]).sum()) > 0
  assert float(jnp.abs(grad[16:, 16:]).sum()) == 0


def test_dropout_is_the_noise_in_train_mode_only():
  g = UNetGenerator(out_channels=1, ngf=4, levels=4)  # 4 levels: one dropout layer
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 16, 1))
  variables = jax.jit(lambda x: g.init(jax.random.PRNGKey(1), x, train=False))(x)
  run = jax.jit(lambda k: g.apply(variables, x, train=True, rngs={"dropout": k}, mutable=["batch_stats"])[0])
  assert not np.allclose(run(jax.random.PRNGKey(2)), run(jax.random.PRNGKey(3)))
  np.testing.assert_array_equal(run(jax.random.PRNGKey(2)), run(jax.random.PRNGKey(2)))
  evaluate = jax.jit(lambda x: g.apply(variables, x, train=False))
  np.testing.assert_array_equal(evaluate(x), evaluate(x))
  assert float(jnp.abs(evaluate(x)).max()) <= 1.0


def test_receptive_field_is_computed_from_the_layers():
  assert patch_layers(3) == [(4, 2), (4, 2), (4, 2), (4, 1), (4, 1)]
  assert receptive_field(patch_layers(3)) == 70  # the paper's 70x70 PatchGAN
  assert receptive_field(patch_layers(1)) == 16  # its 16x16 PatchGAN
  assert receptive_field(patch_layers(2)) == 34
  assert receptive_field([(3, 1)]) == 3 and receptive_field([(3, 1), (3, 1)]) == 5
  assert receptive_field([(2, 2), (2, 2)]) == 4
  assert default_patch_layers(256) == 3 and default_patch_layers(32) == 1


@pytest.mark.parametrize("n_layers", [1, 3])
def test_one_patch_output_depends_on_exactly_a_receptive_field_window(n_layers):
  d = PatchDiscriminator(ndf=4, n_layers=n_layers)
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 96, 96, 2))
  variables = d.init(jax.random.PRNGKey(1), x, train=False)
  out = d.apply(variables, x, train=False)
  i = out.shape[1] // 2  # an interior patch, away from the zero padding
  # Eval-mode BatchNorm is a per-channel affine map, so it adds no spatial dependence.
  grad = jax.jit(jax.grad(lambda x: d.apply(variables, x, train=False)[0, i, i]))(x)
  support = np.abs(np.asarray(grad[0])).sum(-1) > 0
  rows, cols = np.flatnonzero(support.any(1)), np.flatnonzero(support.any(0))
  size = receptive_field(patch_layers(n_layers))
  assert rows[-1] - rows[0] + 1 == size and cols[-1] - cols[0] + 1 == size
  assert 0 < rows[0] and rows[-1] < 95  # the whole window lies inside the image
  assert support[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all()  # dense inside the window


def test_patch_discriminator_sees_input_and_output_pairs():
  x, y = jnp.zeros((2, 32, 32, 1)), jnp.ones((2, 32, 32, 3))
  pair = conditional_input(x, y)
  assert pair.shape == (2, 32, 32, 4)
  d = PatchDiscriminator(ndf=4, n_layers=1)
  variables = d.init(jax.random.PRNGKey(0), pair, train=False)
  assert variables["params"]["conv_0"]["kernel"].shape == (4, 4, 4, 4)
  assert d.apply(variables, pair, train=False).shape == (2, 14, 14)
