"""Many steps per dispatch (``jaxgan.multistep``): K steps in one call equal K one-step calls."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import multistep
from jaxgan.config import Config, ConfigError

K = 3
# Tiny configurations of every recipe (the step structure is what matters, not the model's size).
RECIPE_CONFIGS = {
    "mlp": dict(width=16),
    "dcgan": dict(width=4, batch_size=8),
    # ResNet G's conv biases feed BatchNorms: their true gradient is 0 and the computed one is rounding
    # noise, which Adam's normalisation blows up to +-lr steps in either path; SGD keeps it noise.
    "resnet": dict(width=8, batch_size=8, optimizer="sgd"),
    "infogan": dict(width=4, batch_size=8, optimizer="sgd"),  # also biases feeding BatchNorms
    "stylegan": dict(width=8, batch_size=4, latent_dim=16, r1_interval=2),
    "pix2pix": dict(width=4, batch_size=4, resolution=28),
    "cyclegan": dict(width=4, batch_size=2, resolution=32, optimizer="sgd"),  # biases before InstanceNorm
}


def _setup(arch, tmp_path, **overrides):
  config = Config(arch=arch, steps=2 * K, log_every=K, eval_every=2 * K, ckpt_every=2 * K, num_eval_samples=8,
                  workdir=str(tmp_path), **{**RECIPE_CONFIGS[arch], **overrides}).resolve()
  recipe = config.recipe
  source = recipe.make_source(config)
  return source, recipe.create_state(config, source, None), recipe.make_train_step(config, source, None)


def _relative_error(a, b) -> float:
  """||a - b|| / ||b|| over every float leaf of two pytrees (e.g. all of G's parameters)."""
  pairs = [(np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel())
           for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))
           if jnp.issubdtype(jnp.result_type(y), jnp.inexact)]
  diff = np.sqrt(sum(np.sum((x - y) ** 2) for x, y in pairs))
  return float(diff / max(np.sqrt(sum(np.sum(y ** 2) for _, y in pairs)), 1e-30))


def _assert_trees_close(a, b, rtol):
  for field in ("g_params", "d_params"):
    error = _relative_error(getattr(a, field), getattr(b, field))
    assert error <= rtol, f"{field}: relative error {error:.2e} > {rtol:.0e}"


# Compiling a scan of the larger recipes takes 20-60 s on 2 cores: those run in the slow pass.
@pytest.mark.parametrize("arch", [a if a in ("mlp", "dcgan") else pytest.param(a, marks=pytest.mark.slow)
                                  for a in RECIPE_CONFIGS])
def test_k_steps_in_one_call_equal_k_single_step_calls(arch, tmp_path):
  source, state, step_fn = _setup(arch, tmp_path)
  assert source.batch_fn is not None, "every recipe's default data is held on the device"
  one = jax.jit(multistep.device_data_steps(step_fn, source.batch_fn, 1))
  many = jax.jit(multistep.device_data_steps(step_fn, source.batch_fn, K))
  stepped = state
  for _ in range(K):
    stepped, last_one = one(stepped, source.device_data)
  scanned, last_many = many(state, source.device_data)
  assert int(scanned.step) == int(stepped.step) == K
  # XLA compiles the scanned body with other fusions, so a few leaves differ in the last bits (measured
  # relative errors after 3 steps, 2-core CPU: 0 for mlp/dcgan, 2e-9 to 2e-8 for the others).
  _assert_trees_close(scanned, stepped, rtol=1e-6)
  for name in last_one:
    np.testing.assert_allclose(last_many[name], last_one[name], rtol=1e-4, atol=1e-6, err_msg=name)
  # The two paths really trained: the parameters moved.
  moved = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), scanned.g_params, state.g_params)
  assert any(jax.tree_util.tree_leaves(moved))


def test_host_batches_stacked_on_a_leading_axis_equal_single_steps(tmp_path):
  source, state, step_fn = _setup("mlp", tmp_path)
  batches = [source.next(t) for t in range(K)]
  stepped = state
  for batch in batches:
    stepped, _ = jax.jit(multistep.host_data_steps(step_fn, 1))(stepped, batch)
  stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *batches)
  scanned, _ = jax.jit(multistep.host_data_steps(step_fn, K))(state, stacked)
  _assert_trees_close(scanned, stepped, rtol=1e-6)


def test_chunks_land_on_every_multiple_and_never_overshoot():
  assert multistep.chunk_length(0, 1000, 100) == 100
  assert multistep.chunk_length(950, 1000, 100) == 50  # last partial call, --steps not a multiple
  assert multistep.chunk_length(250, 1000, 100) == 50  # resumed between multiples: realigns
  steps, total, k = [], 0, 7
  while total < 50:
    total += multistep.chunk_length(total, 50, k)
    steps.append(total)
  assert steps == [7, 14, 21, 28, 35, 42, 49, 50]


def test_automatic_steps_per_call():
  assert multistep.auto_steps_per_call("dcgan", "cpu", 60, 120, 300) == 1
  assert multistep.auto_steps_per_call("mlp", "cpu", 500, 1000, 2500) == 1
  assert multistep.auto_steps_per_call("mlp", "gpu", 500, 1000, 2500) == 125  # largest divisor <= 200
  assert multistep.auto_steps_per_call("dcgan", "gpu", 60, 120, 300) == 60
  assert multistep.auto_steps_per_call("dcgan", "tpu", 7, 14, 21) == 7
  config = Config(arch="dcgan").resolve()
  assert config.steps_per_call is None  # resolved by the loop, which knows the backend
  assert config.with_backend("gpu").steps_per_call == 60
  assert config.with_backend("cpu").steps_per_call == 1
  assert dataclasses.replace(config, steps_per_call=4).with_backend("gpu").steps_per_call == 4


@pytest.mark.parametrize("values, message", [
    (dict(steps_per_call=0), "--steps_per_call must be >= 1"),
    (dict(steps_per_call=7, steps=100, log_every=10, eval_every=14, ckpt_every=14), "must divide --log_every=10"),
    (dict(steps_per_call=5, steps=100, log_every=10, eval_every=10, ckpt_every=12), "must divide --ckpt_every=12"),
    (dict(data_on_device=True), "--data_on_device applies to image datasets"),
])
def test_bad_values_of_the_new_flags_name_the_fix(values, message):
  with pytest.raises(ConfigError, match=message):
    Config(**values).resolve()


def test_the_loop_with_k_steps_per_call_ends_where_one_step_per_call_ends(tmp_path):
  from jaxgan.train import train
  common = dict(arch="dcgan", width=4, batch_size=8, steps=2 * K + 1, log_every=K, eval_every=K,
                ckpt_every=K, num_eval_samples=16)
  one = train(Config(**common, steps_per_call=1, workdir=str(tmp_path / "one")))
  many = train(Config(**common, steps_per_call=K, workdir=str(tmp_path / "many")))
  assert one["step"] == many["step"] == 2 * K + 1  # the last call is a single step: no overshoot
  lines = (tmp_path / "many" / "metrics.jsonl").read_text().splitlines()
  assert [int(l.split('"step": ')[1].split(",")[0]) for l in lines] == [K, 2 * K, 2 * K + 1]
  assert sorted(p.name for p in (tmp_path / "many" / "checkpoints").iterdir() if p.name.isdigit()) == \
      ["3", "6", "7"]
