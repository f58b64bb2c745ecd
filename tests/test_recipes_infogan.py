"""Tests for jaxgan.recipes.infogan: the MI term reaches both players, Hungarian accuracy, grids, a run."""

import dataclasses
import json
import os
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxgan.config import Config, ConfigError
from jaxgan.recipes import infogan as recipe
from jaxgan.train import train

SOURCE = types.SimpleNamespace(example_shape=(28, 28, 1), num_classes=None)


def _tiny_config(**overrides) -> Config:
  values = dict(arch="infogan", width=4, latent_dim=4, batch_size=8, num_categories=3, num_continuous=2)
  values.update(overrides)
  return Config(**values).resolve()


def test_defaults_and_validation():
  config = Config(arch="infogan").resolve()
  assert (config.num_categories, config.num_continuous, config.info_weight) == (10, 2, 1.0)
  assert (config.latent_dim, config.lr_g, config.lr_d, config.dataset) == (62, 1e-3, 2e-4, "digits")
  for bad in (dict(objective="wgan_gp"), dict(num_categories=1), dict(info_weight=-1.0),
              dict(r1_gamma=1.0), dict(style_mixing=0.5)):
    with pytest.raises(ConfigError):
      Config(arch="infogan", **bad).resolve()


@pytest.mark.slow  # ~25-30 s, mostly compiling the recipe's step; runs in CI's slow pass
def test_mi_term_reaches_q_in_the_d_step_and_g_in_the_g_step():
  config = _tiny_config()
  state = recipe.create_state(config, SOURCE)
  real = jax.random.uniform(jax.random.key(1), (8, 28, 28, 1), minval=-1, maxval=1)
  cfg = recipe.step_config(config)
  d_step = jax.jit(recipe.d_step, static_argnames="cfg")
  g_step = jax.jit(recipe.g_step, static_argnames="cfg")
  no_info = dataclasses.replace(cfg, info_weight=0.0)

  q_cat = lambda s: s.d_params["q_cat"]["kernel"]  # noqa: E731
  with_info, metrics = d_step(state, real, cfg=cfg)
  without_info, _ = d_step(state, real, cfg=no_info)
  assert float(jnp.abs(q_cat(with_info) - q_cat(state)).max()) > 0  # Q learns from L_info
  np.testing.assert_array_equal(q_cat(without_info), q_cat(state))  # ... and only from it
  assert int(with_info.d_updates) == 1 and int(with_info.step) == 0
  assert all(np.isfinite(float(v)) for v in metrics.values())

  g_with, g_metrics = g_step(state, real, cfg=cfg)
  g_without, _ = g_step(state, real, cfg=no_info)
  assert int(g_with.step) == 1
  assert float(g_metrics["g_info_loss"]) > 0
  diff = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), g_with.g_params, g_without.g_params)
  assert max(jax.tree.leaves(diff)) > 0  # L_info changes G's update
  jax.tree.map(np.testing.assert_array_equal, g_with.d_params, state.d_params)  # G's step leaves D/Q


def test_train_step_is_pure_under_jit():
  config = _tiny_config()
  state = recipe.create_state(config, SOURCE)
  batch = {"image": jnp.zeros((1, 8, 28, 28, 1))}
  step = jax.jit(recipe.make_train_step(config, SOURCE))
  a, metrics_a = step(state, batch)
  b, metrics_b = step(state, batch)
  assert recipe.eval_lib.params_sha256(a.g_params) == recipe.eval_lib.params_sha256(b.g_params)
  assert float(metrics_a["mi_c1"]) == float(metrics_b["mi_c1"])
  assert {"d_loss", "g_loss", "info_ce", "info_nll", "mi_c1", "g_info_loss"} <= set(metrics_a)


def test_hungarian_accuracy():
  codes = np.repeat(np.arange(4), 5)
  perm = np.array([2, 0, 3, 1])
  accuracy, mapping = recipe.hungarian_accuracy(codes, perm[codes], 4, 4)
  assert accuracy == 1.0 and mapping == {0: 2, 1: 0, 2: 3, 3: 1}
  # Codes 0 and 1 both look like label 0: one-to-one, only one of them can map to it.
  labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
  codes = np.array([0, 0, 1, 1, 1, 1, 2, 2])
  accuracy, mapping = recipe.hungarian_accuracy(codes, labels, 3, 3)
  assert accuracy == pytest.approx(6 / 8)
  assert mapping[2] == 2 and {mapping[0], mapping[1]} == {0, 1}


def test_sweep_codes_rows_are_categories_columns_sweep_one_continuous_code():
  noise = jnp.stack([jnp.full((4,), 7.0), jnp.full((4,), 9.0)])
  codes = recipe.sweep_codes(noise, 3, 2, columns=5)
  assert codes.shape == (2 * 3 * 5, 4 + 3 + 2)
  grid = codes.reshape(2, 3, 5, -1)  # [continuous code j, c1 row, column]
  np.testing.assert_array_equal(grid[0, ..., :4], 7.0)
  np.testing.assert_array_equal(grid[1, ..., :4], 9.0)
  rows = np.broadcast_to(np.arange(3)[:, None], (2, 3, 5))
  np.testing.assert_array_equal(jnp.argmax(grid[..., 4:7], -1), rows)
  sweep = np.linspace(-1, 1, 5)
  np.testing.assert_allclose(grid[0, :, :, 7], np.broadcast_to(sweep, (3, 5)), atol=1e-6)
  np.testing.assert_array_equal(grid[0, :, :, 8], 0.0)
  np.testing.assert_allclose(grid[1, :, :, 8], np.broadcast_to(sweep, (3, 5)), atol=1e-6)
  np.testing.assert_array_equal(grid[1, :, :, 7], 0.0)


def test_recipe_smoke_run_writes_eval_grid_and_checkpoint(tmp_path):
  workdir = str(tmp_path / "run")
  result = train(Config(arch="infogan", steps=2, width=4, latent_dim=4, batch_size=8, num_eval_samples=20,
                        workdir=workdir))
  with open(os.path.join(workdir, "eval.json")) as f:
    saved = json.load(f)
  assert saved["step"] == 2 == result["step"]
  assert saved["categorical_accuracy"] is None and "classifier_dir" in saved["categorical_accuracy_note"]
  assert 0.0 <= saved["q_categorical_accuracy"] <= 1.0 and saved["num_categorical_samples"] == 20
  with Image.open(os.path.join(workdir, "samples", "latest.png")) as png:
    width, height = png.size
  # 2 continuous codes x 10 rows of 11 columns of 28 px tiles with 2 px padding (then upscaled).
  assert width * (2 * 10 * 30 + 2) == height * (11 * 30 + 2)
  assert os.listdir(os.path.join(workdir, "checkpoints"))
