"""Tests for jaxgan.recipes.pix2pix: a run through jaxgan.train writes its outputs, exact resume, the
step under jit (the adversarial weight gates D's influence on G), and the config checks."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxgan import train as train_lib
from jaxgan.config import Config, ConfigError
from jaxgan.recipes import pix2pix


def _config(tmp_path, name="run", **overrides):
  values = dict(arch="pix2pix", steps=2, batch_size=4, width=4, resolution=28, num_eval_samples=8,
                log_every=1, eval_every=2, ckpt_every=2, workdir=str(tmp_path / name))
  values.update(overrides)
  return Config(**values)


def test_a_run_writes_eval_grid_and_checkpoint(tmp_path):
  result = train_lib.train(_config(tmp_path))
  workdir = tmp_path / "run"
  evaluation = json.loads((workdir / "eval.json").read_text())
  assert evaluation == result
  for key in ("l1", "psnr", "sharpness", "target_sharpness", "sharpness_ratio", "g_params_sha256"):
    assert key in evaluation
  assert 0 <= evaluation["l1"] <= 2 and evaluation["psnr"] > 0 and evaluation["num_eval_examples"] == 8
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows if "l1" in r] == [1, 2]
  assert {"d_loss", "g_loss", "l1", "d_real", "d_fake", "g_grad_norm"} <= set(rows[-1])
  assert os.path.isdir(workdir / "checkpoints" / "2")
  # 8 held-out examples as (input | output | target) triplets, 4 a row: 12 tiles x 2 rows of 28 px.
  with Image.open(workdir / "samples" / "latest.png") as png:
    width, height = png.size
  assert width * (2 * 30 + 2) == height * (12 * 30 + 2)
  saved = json.loads((workdir / "config.json").read_text())
  assert saved["dataset"] == "edges2digits" and saved["l1_weight"] == 100.0


def test_resume_equals_an_uninterrupted_run(tmp_path):
  full = train_lib.train(_config(tmp_path, "full", steps=4))
  train_lib.train(_config(tmp_path, "resumed", steps=2))
  resumed = train_lib.train(_config(tmp_path, "resumed", steps=4))
  assert resumed["g_params_sha256"] == full["g_params_sha256"]
  assert resumed["psnr"] == full["psnr"]


def _state_and_batch(**overrides):
  config = Config(arch="pix2pix", batch_size=4, width=4, resolution=28, num_eval_samples=4,
                  **overrides).resolve()
  source = pix2pix.make_source(config)
  return config, source, pix2pix.create_state(config, source), source.next(0)


def test_the_adversarial_weight_gates_what_g_learns_from_d():
  config, source, state, batch = _state_and_batch()
  step = jax.jit(pix2pix.make_train_step(config, source))
  other_d = jax.tree_util.tree_map(lambda p: p + 0.05, state.d_params)

  def g_after(state):
    return step(state, batch)[0].g_params

  def differs(a, b):
    return any(not np.allclose(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))

  # With the adversarial term, another D gives another G update ...
  assert differs(g_after(state), g_after(state.replace(d_params=other_d)))
  # ... with adv_weight = 0 (the L1-only baseline) G's update ignores D entirely.
  l1_only = state.replace(hparams=dict(state.hparams, adv_weight=jnp.float32(0.0)))
  assert not differs(g_after(l1_only), g_after(l1_only.replace(d_params=other_d)))
  new_state, metrics = step(state, batch)
  assert int(new_state.step) == 1
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert differs(new_state.d_params, state.d_params)


def test_adv_weight_is_read_from_configs_that_have_it():
  @dataclasses.dataclass(frozen=True)
  class WithAdvWeight(Config):
    adv_weight: float | None = None

  config = WithAdvWeight(arch="pix2pix", adv_weight=0.0).resolve()
  assert pix2pix.adv_weight(config) == 0.0
  assert pix2pix.adv_weight(WithAdvWeight(arch="pix2pix").resolve()) == 1.0  # the recipe's default
  assert pix2pix.adv_weight(Config(arch="pix2pix").resolve()) == 1.0


@pytest.mark.parametrize("overrides,match", [
    (dict(dataset="digits2inverted"), "paired"),
    (dict(objective="wgan"), "weight clipping"),
    (dict(cycle_weight=3.0), "cycle_weight"),
    (dict(l1_weight=-1.0), "l1_weight"),
    (dict(resolution=30), "resolution"),
    (dict(n_critic=2), "n_critic"),
])
def test_invalid_configs_are_refused_with_the_fix(overrides, match):
  with pytest.raises(ConfigError, match=match):
    Config(arch="pix2pix", **overrides).resolve()


def test_defaults_are_the_papers_optimizer_and_a_cpu_sized_run():
  config = Config(arch="pix2pix").resolve()
  assert (config.optimizer, config.lr_g, config.lr_d, config.beta1) == ("adam", 2e-4, 2e-4, 0.5)
  assert config.objective == "nonsaturating" and config.l1_weight == 100.0
  assert config.dataset == "edges2digits" and config.resolution == 32
