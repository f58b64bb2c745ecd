"""Tests for jaxgan.models.dcgan: PyTorch-equal parameter counts, shapes/ranges, BatchNorm state, dtypes."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.models.dcgan import DCGANDiscriminator, DCGANGenerator, resolution_plan

KEY = jax.random.key(0)


def _count(tree) -> int:
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(tree))


def _variables(model, *args):
  """Variables with the structure of ``model.init`` but drawn with numpy: ``init`` compiles a random
  normal per parameter shape (seconds on XLA:CPU), which these shape/state tests do not need."""
  shapes = jax.eval_shape(functools.partial(model.init, train=False), KEY, *args)
  rng = np.random.default_rng(0)

  def fill(path, s):
    name = jax.tree_util.keystr(path[-1:])
    if 'scale' in name or 'var' in name:
      return jnp.asarray(rng.uniform(0.9, 1.1, s.shape), s.dtype)
    return jnp.asarray(rng.normal(0.0, 0.02, s.shape), s.dtype)

  return jax.tree_util.tree_map_with_path(fill, shapes)


def _shapes(tree):
  return jax.tree.map(lambda p: tuple(p.shape), tree)


def test_param_counts_match_pytorch_examples_dcgan_64():
  g, d = DCGANGenerator(), DCGANDiscriminator()  # resolution 64, nz=100, ngf=ndf=64, nc=3
  g_vars = jax.eval_shape(functools.partial(g.init, train=False), KEY, jnp.zeros((2, 100)))
  d_vars = jax.eval_shape(functools.partial(d.init, train=False), KEY, jnp.zeros((2, 64, 64, 3)))
  assert _count(g_vars['params']) == 3_576_704
  assert _count(d_vars['params']) == 2_765_568
  # layer for layer: PyTorch weights (in, out, k, k) for ConvTranspose, (out, in, k, k) for Conv
  gp, dp = _shapes(g_vars['params']), _shapes(d_vars['params'])
  assert gp['project']['dense']['kernel'] == (100, 4, 4, 512)
  assert [gp[f'deconv_{i}']['kernel'] for i in (1, 2, 3)] == [(4, 4, 512, 256), (4, 4, 256, 128),
                                                             (4, 4, 128, 64)]
  assert gp['deconv_out'] == {'kernel': (4, 4, 64, 3)}  # no bias, no BN after the last layer
  assert sorted(k for k in gp if k.startswith('bn')) == ['bn_0', 'bn_1', 'bn_2', 'bn_3']
  assert [dp[f'conv_{i}'] for i in range(4)] == [{'kernel': s} for s in [
      (4, 4, 3, 64), (4, 4, 64, 128), (4, 4, 128, 256), (4, 4, 256, 512)]]  # bias-free
  assert dp['conv_out'] == {'kernel': (4, 4, 512, 1)}
  assert sorted(k for k in dp if k.startswith('bn')) == ['bn_1', 'bn_2', 'bn_3']  # none on the first layer
  # BatchNorm running stats are state, not params: 2 * (512 + 256 + 128 + 64) for G
  assert _count(g_vars['batch_stats']) == 2 * (512 + 256 + 128 + 64)


@pytest.mark.parametrize('resolution,start,n', [(64, 4, 4), (32, 4, 3), (28, 7, 2), (48, 6, 3)])
def test_resolution_plan(resolution, start, n):
  assert resolution_plan(resolution) == (start, n)
  assert start * 2 ** n == resolution


@pytest.mark.parametrize('resolution', [4, 7, 9])
def test_resolution_plan_rejects(resolution):
  with pytest.raises(ValueError):
    resolution_plan(resolution)


@pytest.mark.parametrize('num_classes', [None, 10])
@pytest.mark.parametrize('resolution,channels', [(64, 3), (32, 3), (28, 1)])
def test_shapes_ranges_and_conditioning(resolution, channels, num_classes):
  b, nz = 4, 16
  g = DCGANGenerator(resolution=resolution, latent_dim=nz, ngf=8, channels=channels, num_classes=num_classes)
  d = DCGANDiscriminator(resolution=resolution, ndf=8, channels=channels, num_classes=num_classes)
  z = jax.random.normal(jax.random.key(1), (b, nz))
  labels = jnp.arange(b, dtype=jnp.int32) if num_classes else None
  g_vars = _variables(g, z, labels)
  d_vars = _variables(d, jnp.zeros((b, resolution, resolution, channels)), labels)

  @jax.jit
  def run(z, labels, labels2):
    x, _ = g.apply(g_vars, z, labels, train=True, mutable=['batch_stats'])
    logits, _ = d.apply(d_vars, x, labels, train=True, mutable=['batch_stats'])
    if labels2 is None:
      return x, logits, None, None
    x2, _ = g.apply(g_vars, z, labels2, train=True, mutable=['batch_stats'])
    logits2, _ = d.apply(d_vars, x, labels2, train=True, mutable=['batch_stats'])
    return x, logits, x2, logits2

  labels2 = (labels + 1) % num_classes if num_classes else None
  x, logits, x2, logits2 = run(z, labels, labels2)
  assert x.shape == (b, resolution, resolution, channels) and x.dtype == jnp.float32
  assert float(jnp.max(jnp.abs(x))) <= 1.0 and float(jnp.std(x)) > 0  # tanh range, not constant
  assert logits.shape == (b,) and logits.dtype == jnp.float32
  assert bool(jnp.all(jnp.isfinite(logits)))
  if num_classes:
    assert float(jnp.max(jnp.abs(x2 - x))) > 1e-4, 'G ignores labels'
    assert float(jnp.max(jnp.abs(logits2 - logits))) > 1e-4, 'D ignores labels'
    # one-hot concatenation adds num_classes inputs to G's projection and D's first conv
    assert g_vars['params']['project']['dense']['kernel'].shape[0] == nz + num_classes
    assert d_vars['params']['conv_0']['kernel'].shape[2] == channels + num_classes
    with pytest.raises(ValueError, match='labels'):
      g.apply(g_vars, z, train=False)
    with pytest.raises(ValueError, match='labels'):
      d.apply(d_vars, x, train=False)


def test_batch_stats_updated_in_train_and_frozen_in_eval():
  g = DCGANGenerator(resolution=32, latent_dim=8, ngf=8)
  d = DCGANDiscriminator(resolution=32, ndf=8)
  z = jax.random.normal(jax.random.key(2), (8, 8))
  x = jax.random.uniform(jax.random.key(3), (8, 32, 32, 3), minval=-1, maxval=1)
  for model, inp in [(g, z), (d, x)]:
    variables = _variables(model, inp)
    stats = variables['batch_stats']

    @jax.jit
    def run(v, a):
      out_train, new = model.apply(v, a, train=True, mutable=['batch_stats'])
      out_eval, same = model.apply(v, a, train=False, mutable=['batch_stats'])
      out_plain = model.apply(v, a, train=False)  # eval needs no mutable collection at all
      return out_train, new, out_eval, same, out_plain

    out_train, new, out_eval, same, out_plain = run(variables, inp)
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), stats, new['batch_stats'])
    assert all(jax.tree.leaves(changed)), changed
    assert all(jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), stats, same['batch_stats'])))
    assert same['batch_stats'].keys() == stats.keys()
    np.testing.assert_array_equal(out_plain, out_eval)
    # train normalises with batch statistics, eval with the running ones
    assert float(jnp.max(jnp.abs(out_train - out_plain))) > 1e-4


def test_init_statistics():
  g = DCGANGenerator(resolution=32, ngf=16)
  variables = jax.jit(functools.partial(g.init, train=False))(KEY, jnp.zeros((2, 100)))
  kernel = variables['params']['deconv_1']['kernel']  # (4, 4, 64, 32): 32768 samples
  assert abs(float(kernel.std()) - 0.02) < 0.001 and abs(float(kernel.mean())) < 0.001
  scale, bias = variables['params']['bn_1']['scale'], variables['params']['bn_1']['bias']
  assert abs(float(scale.mean()) - 1.0) < 0.01 and 0.01 < float(scale.std()) < 0.03
  assert float(jnp.max(jnp.abs(bias))) == 0.0


def test_dtypes():
  z = jnp.ones((2, 8))
  x = jnp.zeros((2, 28, 28, 1))
  for dtype in (jnp.float32, jnp.bfloat16):
    g = DCGANGenerator(resolution=28, latent_dim=8, ngf=8, channels=1, dtype=dtype)
    d = DCGANDiscriminator(resolution=28, ndf=8, channels=1, dtype=dtype)
    g_vars = jax.eval_shape(functools.partial(g.init, train=False), KEY, z)
    d_vars = jax.eval_shape(functools.partial(d.init, train=False), KEY, x)
    for leaf in jax.tree.leaves((g_vars, d_vars)):
      assert leaf.dtype == jnp.float32  # params and running stats stay float32
    assert jax.eval_shape(lambda v: g.apply(v, z, train=False), g_vars).dtype == jnp.float32
    assert jax.eval_shape(lambda v: d.apply(v, x, train=False), d_vars).dtype == jnp.float32
    assert jax.eval_shape(lambda v: d.apply(v, x, train=True, mutable=['batch_stats']),
                          d_vars)[0].dtype == jnp.float32
  with pytest.raises(AssertionError):  # labels must be integers
    jax.eval_shape(functools.partial(DCGANGenerator(resolution=28, latent_dim=8, ngf=8, num_classes=10).init,
                                     train=False), KEY, z, jnp.zeros((2,), jnp.float32))


def test_axis_name_pools_batch_statistics_across_devices():
  """With axis_name, BatchNorm over 2 shards of 4 == BatchNorm over the whole batch of 8."""
  x = jax.random.uniform(jax.random.key(4), (8, 28, 28, 1), minval=-1, maxval=1)
  d_global = DCGANDiscriminator(resolution=28, ndf=8, channels=1)
  d_sharded = DCGANDiscriminator(resolution=28, ndf=8, channels=1, axis_name='devices')
  variables = _variables(d_global, x)

  @jax.jit
  def run(v, x):
    want = d_global.apply(v, x, train=True, mutable=['batch_stats'])
    apply = lambda xs: d_sharded.apply(v, xs, train=True, mutable=['batch_stats'])
    got = jax.vmap(apply, axis_name='devices')(x.reshape(2, 4, *x.shape[1:]))
    return want, got

  (want_logits, want_stats), (got_logits, got_stats) = run(variables, x)
  np.testing.assert_allclose(got_logits.reshape(8), want_logits, atol=1e-5, rtol=1e-5)
  for w, g in zip(jax.tree.leaves(want_stats), jax.tree.leaves(got_stats)):
    np.testing.assert_allclose(g[0], w, atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(g[1], w, atol=1e-6, rtol=1e-5)


def test_bfloat16_compute_trains_end_to_end():
  """dtype=bfloat16: convs/matmuls run in bf16, while params, BN statistics, optimizer state, outputs and
  losses stay float32 through a jitted train_step, and the losses track the float32 model's."""
  from jaxgan.state import GANState, make_optimizer
  from jaxgan.steps import StepConfig, train_step

  nz, b = 8, 8
  batch = {'image': jax.random.uniform(jax.random.key(5), (1, b, 28, 28, 1), minval=-1, maxval=1)}
  results = {}
  for dtype in (jnp.float32, jnp.bfloat16):
    g = DCGANGenerator(resolution=28, latent_dim=nz, ngf=8, channels=1, dtype=dtype)
    d = DCGANDiscriminator(resolution=28, ndf=8, channels=1, dtype=dtype)
    adam = make_optimizer('adam', learning_rate=2e-4, beta1=0.5)
    state = GANState.create(generator=g, discriminator=d, g_tx=adam, d_tx=adam, key=jax.random.key(0),
                            latent_dim=nz, d_input=jnp.zeros((1, 28, 28, 1)))
    step = jax.jit(functools.partial(train_step, config=StepConfig(latent_dim=nz)))
    new_state, metrics = step(state, batch)
    dtypes = lambda s: jax.tree.map(lambda a: a.dtype, s)  # noqa: E731
    assert dtypes(new_state) == dtypes(state)  # nothing is silently downcast
    assert all(v.dtype == jnp.float32 and bool(jnp.isfinite(v)) for v in metrics.values()), metrics
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state.g_params, new_state.g_params)
    assert all(jax.tree.leaves(moved))
    jaxpr = str(jax.make_jaxpr(lambda v, z: g.apply(v, z, train=False))(
        {'params': state.g_params, 'batch_stats': state.g_batch_stats}, jnp.zeros((2, nz))))
    assert ('bf16[' in jaxpr) == (dtype == jnp.bfloat16)  # the compute dtype is really used
    results[dtype] = metrics
  for name in ('d_loss', 'g_loss', 'd_real', 'd_fake'):
    np.testing.assert_allclose(results[jnp.bfloat16][name], results[jnp.float32][name], atol=0.05, err_msg=name)
