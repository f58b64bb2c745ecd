"""The training loop end to end on toy data: outputs, determinism, exact resume, NaN stop, refusals."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import pytest

from jaxgan import train as train_lib
from jaxgan.recipes import gan as gan_recipe
from jaxgan.config import Config, ConfigError
from jaxgan.objectives import OBJECTIVES


def _config(tmp_path, name="run", **overrides):
  values = dict(dataset="grid25", steps=40, batch_size=64, width=32, log_every=10, eval_every=20,
                ckpt_every=20, num_eval_samples=500, workdir=str(tmp_path / name))
  values.update(overrides)
  return Config(**values)


def test_a_run_writes_every_documented_output(tmp_path):
  result = train_lib.train(_config(tmp_path))
  workdir = tmp_path / "run"
  saved = json.loads((workdir / "config.json").read_text())
  assert saved["dataset"] == "grid25" and saved["lr_g"] > 0  # resolved values, not None
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  train_rows = [r for r in rows if "d_loss" in r]
  assert [r["step"] for r in train_rows] == [10, 20, 30, 40]
  for key in ("d_loss", "g_loss", "d_real", "d_fake", "steps_per_sec", "d_grad_norm", "g_grad_norm"):
    assert key in train_rows[-1]
  evaluation = json.loads((workdir / "eval.json").read_text())
  assert evaluation == result
  for key in ("modes", "hq_fraction", "reverse_kl", "g_params_sha256", "step"):
    assert key in evaluation
  assert 0 <= evaluation["modes"] <= 25 and len(evaluation["g_params_sha256"]) == 64
  assert sorted(os.listdir(workdir / "samples")) == ["latest.png", "step_0000020.png", "step_0000040.png"]
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir / "tb"))
  assert sorted(int(s) for s in os.listdir(workdir / "checkpoints") if s.isdigit()) == [20, 40]


def test_same_seed_gives_identical_params_and_resume_equals_uninterrupted(tmp_path):
  full = train_lib.train(_config(tmp_path, "full"))
  again = train_lib.train(_config(tmp_path, "again"))
  assert full["g_params_sha256"] == again["g_params_sha256"]
  other_seed = train_lib.train(_config(tmp_path, "seed1", seed=1))
  assert other_seed["g_params_sha256"] != full["g_params_sha256"]
  # Stop at step 20 (checkpointed), then continue to 40 with the same workdir.
  train_lib.train(_config(tmp_path, "resumed", steps=20))
  resumed = train_lib.train(_config(tmp_path, "resumed", steps=40))
  assert resumed["g_params_sha256"] == full["g_params_sha256"]


def test_a_workdir_of_another_config_is_refused_unless_overwrite(tmp_path):
  train_lib.train(_config(tmp_path, steps=10))
  with pytest.raises(ConfigError, match=r"different config \(lr_g.*--overwrite"):
    train_lib.train(_config(tmp_path, steps=10, lr_g=0.123))
  result = train_lib.train(_config(tmp_path, steps=10, lr_g=0.123, overwrite=True))
  assert result["step"] == 10
  saved = json.loads((tmp_path / "run" / "config.json").read_text())
  assert saved["lr_g"] == 0.123


def _poisoned_steps(poison_from: int):
  """The GAN recipe's make_train_step, with steps that make D's params (and the losses) NaN after ``poison_from``."""
  real_make_train_step = gan_recipe.make_train_step

  def make_train_step(config, source, axis_name=None):
    step_fn = real_make_train_step(config, source, axis_name)

    def train_step(state, batch):
      state, metrics = step_fn(state, batch)
      bad = state.step > poison_from
      poison = lambda x: jnp.where(bad, jnp.nan, x)  # noqa: E731
      metrics = dict(metrics, d_loss=poison(metrics["d_loss"]))
      return state.replace(d_params=jax.tree_util.tree_map(poison, state.d_params)), metrics

    return train_step

  return make_train_step


def test_nan_stops_the_run_naming_step_and_loss_and_keeps_the_good_checkpoint(tmp_path, monkeypatch):
  monkeypatch.setattr(gan_recipe, "make_train_step", _poisoned_steps(poison_from=25))
  with pytest.raises(train_lib.NonFiniteError, match=r"d_loss=nan.* at step 30.*checkpoint \(\[20\]\) is kept"):
    train_lib.train(_config(tmp_path))
  assert sorted(int(s) for s in os.listdir(tmp_path / "run" / "checkpoints") if s.isdigit()) == [20]


def test_non_finite_params_are_never_checkpointed(tmp_path, monkeypatch):
  monkeypatch.setattr(gan_recipe, "make_train_step", _poisoned_steps(poison_from=25))
  with pytest.raises(train_lib.NonFiniteError, match="not finite at step 40"):
    train_lib.train(_config(tmp_path, log_every=1000, steps=50))  # no log before the save at 40
  assert sorted(int(s) for s in os.listdir(tmp_path / "run" / "checkpoints") if s.isdigit()) == [20]


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_every_objective_trains_a_few_steps_without_nan(tmp_path, objective):
  result = train_lib.train(_config(tmp_path, objective=objective, steps=20, ckpt_every=20, eval_every=20))
  assert result["step"] == 20 and 0 <= result["hq_fraction"] <= 1


@pytest.mark.parametrize("arch,conditional", [
    ("dcgan", False), ("dcgan", True),
    pytest.param("resnet", True, marks=pytest.mark.slow),  # ~18 s of compiling; CI's slow pass runs it
])
def test_image_runs_on_the_embedded_digits_write_grids_and_checkpoints(tmp_path, arch, conditional):
  config = Config(arch=arch, conditional=conditional, width=8, steps=2, batch_size=16, log_every=1,
                  eval_every=1, ckpt_every=2, workdir=str(tmp_path / "img"))
  result = train_lib.train(config)
  workdir = tmp_path / "img"
  assert result["step"] == 2 and len(result["g_params_sha256"]) == 64
  assert (workdir / "samples" / "latest.png").exists() and (workdir / "checkpoints" / "2").is_dir()
  from PIL import Image
  with Image.open(workdir / "samples" / "latest.png") as grid:
    # 28x28 tiles with 2px padding; conditional grids are 10 wide (one row per class), else 8 wide.
    cols = 10 if conditional else 8
    assert grid.size[0] % (cols * 30 + 2) == 0
