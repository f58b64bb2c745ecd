"""Tests for jaxgan.recipes.cyclegan: a run through jaxgan.train writes its outputs, exact resume (image
pools included), the learning-rate schedule, the pools filling inside the state, and the config checks."""

import json
import os

import jax
import numpy as np
import pytest
from PIL import Image

from jaxgan import train as train_lib
from jaxgan.config import Config, ConfigError
from jaxgan.recipes import cyclegan


def _config(tmp_path, name="run", **overrides):
  values = dict(arch="cyclegan", objective="lsgan", steps=2, batch_size=2, width=4, pool_size=3,
                num_eval_samples=8, log_every=1, eval_every=2, ckpt_every=2, workdir=str(tmp_path / name))
  values.update(overrides)
  return Config(**values)


@pytest.mark.slow  # ~50 s: three train() runs compiling four networks each
def test_a_run_writes_its_outputs_and_resume_equals_an_uninterrupted_run(tmp_path):
  # One test (each train() compiles the four networks): outputs of a run, then exact resume (pools included).
  full = train_lib.train(_config(tmp_path, "full", steps=4))
  workdir = tmp_path / "full"
  evaluation = json.loads((workdir / "eval.json").read_text())
  assert evaluation == full
  for key in ("cycle_l1", "cycle_l1_a", "cycle_l1_b", "a2b_l1", "a2b_psnr", "g_params_sha256"):
    assert key in evaluation
  assert evaluation["cycle_l1"] == pytest.approx(0.5 * (evaluation["cycle_l1_a"] + evaluation["cycle_l1_b"]))
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert {"d_loss", "g_loss", "cycle_l1", "identity_l1", "lr_g"} <= set(rows[-1])
  assert os.path.isdir(workdir / "checkpoints" / "4")
  # 8 A and 8 B triplets, 4 a row: 12 tiles x 4 rows of 32 px.
  with Image.open(workdir / "samples" / "latest.png") as png:
    width, height = png.size
  assert width * (4 * 34 + 2) == height * (12 * 34 + 2)
  # Stop at step 2 (checkpointed; the pools of size 3 are full by then), continue to 4.
  train_lib.train(_config(tmp_path, "resumed", steps=2))
  resumed = train_lib.train(_config(tmp_path, "resumed", steps=4))
  assert resumed["g_params_sha256"] == full["g_params_sha256"]
  assert resumed["cycle_l1"] == full["cycle_l1"]


@pytest.mark.slow  # ~25-30 s, mostly compiling the recipe's step; runs in CI's slow pass
def test_pools_fill_inside_the_state_and_learning_rates_decay():
  config = _config(__import__("pathlib").Path("/tmp"), steps=4, lr_decay_start=2).resolve()
  source = cyclegan.make_source(config)
  state = cyclegan.create_state(config, source)
  assert state.pool_a.images.shape == (3, 32, 32, 1) and int(state.pool_a.count) == 0
  step = jax.jit(cyclegan.make_train_step(config, source))
  counts, lrs = [], []
  for t in range(4):
    state, metrics = step(state, source.next(t))
    counts.append(int(state.pool_b.count))
    lrs.append(float(metrics["lr_g"]))
    assert all(np.isfinite(float(v)) for v in metrics.values())
  assert counts == [2, 3, 3, 3]
  # The optimizer's count is 0 at the first update: constant until step 2, then linear to 0 at step 4.
  np.testing.assert_allclose(lrs, [2e-4, 2e-4, 2e-4, 1e-4], rtol=1e-5)
  assert set(state.g_params) == {"a2b", "b2a"} and set(state.d_params) == {"a", "b"}


def test_lr_schedule_and_default_decay_start():
  schedule = cyclegan.lr_schedule(2e-4, 100, 50)
  np.testing.assert_allclose([schedule(0), schedule(50), schedule(75), schedule(100)], [2e-4, 2e-4, 1e-4, 0],
                             atol=1e-10)
  config = Config(arch="cyclegan", steps=400).resolve()
  assert config.lr_decay_start == -1 and cyclegan.decay_start(config) == 200
  assert (config.cycle_weight, config.identity_weight, config.pool_size) == (10.0, 0.5, 50)


@pytest.mark.parametrize("overrides,match", [
    (dict(lr_decay_start=500, steps=100), "lr_decay_start"),
    (dict(pool_size=-2), "pool_size"),
    (dict(cycle_weight=-1.0), "cycle_weight"),
    (dict(l1_weight=1.0), "l1_weight"),
    (dict(dataset="cifar10"), "cycle_gan/"),
    (dict(resolution=28), "resolution"),
])
def test_invalid_configs_are_refused_with_the_fix(overrides, match):
  with pytest.raises(ConfigError, match=match):
    Config(arch="cyclegan", **overrides).resolve()
