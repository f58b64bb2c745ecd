"""Tests for jaxgan.models.cyclegan and the CycleGAN losses: shapes, instance-norm PatchGAN, zero cycle and
identity losses for identity generators."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.models.cyclegan import ResNetGenerator, default_blocks
from jaxgan.models.pix2pix import PatchDiscriminator
from jaxgan.recipes.cyclegan import cycle_losses


@pytest.mark.parametrize("resolution,channels", [(32, 1), (64, 3), (256, 3)])
def test_resnet_generator_output_shape_equals_input_shape(resolution, channels):
  # Traced like jit (shapes only, nothing computed).
  g = ResNetGenerator(out_channels=channels, ngf=4, n_blocks=2)
  x = jax.ShapeDtypeStruct((2, resolution, resolution, channels), jnp.float32)
  params = jax.eval_shape(lambda x: g.init(jax.random.PRNGKey(1), x), x)["params"]
  y = jax.eval_shape(lambda p, x: g.apply({"params": p}, x), params, x)
  assert y.shape == x.shape
  assert len([k for k in params if k.startswith("block_")]) == 2


def test_resnet_generator_is_residual_and_bounded():
  g = ResNetGenerator(out_channels=1, ngf=4, n_blocks=1)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 16, 1))
  params = jax.jit(lambda x: g.init(jax.random.PRNGKey(1), x))(x)["params"]
  y = jax.jit(lambda p, x: g.apply({"params": p}, x))(params, x)
  assert y.shape == x.shape and float(jnp.abs(y).max()) <= 1.0
  # Zeroing a block's last conv makes it the identity: the output is then that of a 0-block generator.
  zeroed = jax.tree_util.tree_map(jnp.zeros_like, params["block_0"]["conv_1"])
  no_block = ResNetGenerator(out_channels=1, ngf=4, n_blocks=0)
  params0 = {k: v for k, v in params.items() if k != "block_0"}
  y_zeroed = g.apply({"params": dict(params, block_0=dict(params["block_0"], conv_1=zeroed))}, x)
  np.testing.assert_allclose(y_zeroed, no_block.apply({"params": params0}, x), atol=1e-5)


def test_resnet_generator_refuses_sizes_it_cannot_restore():
  g = ResNetGenerator(out_channels=1, ngf=4, n_blocks=1)
  with pytest.raises(ValueError, match="divisible by 4"):
    g.init(jax.random.PRNGKey(0), jnp.zeros((1, 30, 30, 1)))


def test_default_blocks_are_the_papers():
  assert default_blocks(256) == 9 and default_blocks(128) == 6 and default_blocks(32) == 6


def test_instance_norm_patch_discriminator_is_per_example():
  d = PatchDiscriminator(ndf=4, n_layers=1, norm="instance")
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 32, 32, 1))
  variables = d.init(jax.random.PRNGKey(1), x, train=True)
  assert "batch_stats" not in variables
  full = d.apply(variables, x, train=True)
  single = d.apply(variables, x[:1], train=True)
  np.testing.assert_allclose(full[:1], single, rtol=1e-4, atol=1e-5)  # no statistics across the batch


def _identity_apply(variables, x):
  del variables
  return x


def _negate_apply(variables, x):
  del variables
  return -x


def test_cycle_and_identity_losses_are_zero_for_identity_generators():
  a = jax.random.normal(jax.random.PRNGKey(0), (4, 8, 8, 1))
  b = jax.random.normal(jax.random.PRNGKey(1), (4, 8, 8, 1))
  params = {"a2b": {}, "b2a": {}}
  images, losses = jax.jit(lambda a, b: cycle_losses(_identity_apply, params, a, b))(a, b)
  for name, value in losses.items():
    assert float(value) == 0.0, name
  np.testing.assert_array_equal(images["fake_b"], a)
  # Negation is its own inverse: cycles are exact, but the identity losses see |-x - x| = 2|x|.
  _, losses = cycle_losses(_negate_apply, params, a, b)
  assert float(losses["cycle_a"]) == 0.0 and float(losses["cycle_b"]) == 0.0
  np.testing.assert_allclose(losses["identity_a"], 2 * jnp.mean(jnp.abs(a)), rtol=1e-6)
  np.testing.assert_allclose(losses["identity_b"], 2 * jnp.mean(jnp.abs(b)), rtol=1e-6)
