"""Tests for jaxgan.recipes.stylegan: lazy R1, mean-w tracking, EMA ramp, defaults, a smoke run."""

import json
import os
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxgan import regularizers
from jaxgan.config import Config, ConfigError
from jaxgan.recipes import stylegan as recipe
from jaxgan.train import train

SOURCE = types.SimpleNamespace(example_shape=(28, 28, 1), num_classes=None)


def test_defaults_and_validation():
  config = Config(arch="stylegan").resolve()
  assert (config.style_mixing, config.r1_interval, config.truncation_psi) == (0.9, 16, 1.0)
  assert (config.beta1, config.beta2, config.objective) == (0.0, 0.99, "nonsaturating")
  assert config.dataset == "digits"
  assert Config(arch="stylegan", resolution=64).resolve().resolution == 64
  for bad in (dict(style_mixing=1.5), dict(r1_interval=0), dict(resolution=48), dict(conditional=True),
              dict(info_weight=1.0)):
    with pytest.raises(ConfigError):
      Config(arch="stylegan", **bad).resolve()


@pytest.mark.slow  # ~50-70 s: compiles StyleGAN train steps
def test_lazy_r1_runs_every_interval_scaled_by_the_interval():
  config = Config(arch="stylegan", width=4, latent_dim=8, batch_size=4, r1_gamma=0.5,
                  r1_interval=2).resolve()
  state = recipe.create_state(config, SOURCE)
  cfg = recipe.step_config(config)
  real = jax.random.uniform(jax.random.key(1), (4, 28, 28, 1), minval=-1, maxval=1)
  d_step = jax.jit(recipe.d_step, static_argnames="cfg")
  first, m0 = d_step(state, real, cfg=cfg)
  second, m1 = d_step(first, real, cfg=cfg)
  third, m2 = d_step(second, real, cfg=cfg)
  d_fn = lambda s: (lambda x: s.discriminator.apply({"params": s.d_params}, x))  # noqa: E731
  # Updates 0 and 2 regularise (the metric is E||grad D(real)||^2 under the params before the update).
  r1 = lambda s: float(regularizers.r1_penalty(d_fn(s), real))  # noqa: E731
  np.testing.assert_allclose(float(m0["r1_penalty"]), r1(state), rtol=1e-4)
  assert float(m1["r1_penalty"]) == 0.0
  np.testing.assert_allclose(float(m2["r1_penalty"]), r1(second), rtol=1e-4)
  assert float(m0["r1_penalty"]) > 0
  assert int(third.d_updates) == 3
  # Adam's lazy-regularisation correction c = 2 / 3: lr * c and beta2 ** c in D's optimizer only.
  hyper = state.d_opt_state.hyperparams
  np.testing.assert_allclose(float(hyper["learning_rate"]), 0.002 * 2 / 3, rtol=1e-6)
  np.testing.assert_allclose(float(hyper["b2"]), 0.99 ** (2 / 3), rtol=1e-6)
  np.testing.assert_allclose(float(state.g_opt_state.hyperparams["learning_rate"]), 0.002, rtol=1e-6)


@pytest.mark.slow  # ~25-30 s, mostly compiling the recipe's step; runs in CI's slow pass
def test_g_step_tracks_mean_w_and_ramps_the_ema():
  config = Config(arch="stylegan", width=4, latent_dim=8, batch_size=4).resolve()
  state = recipe.create_state(config, SOURCE)
  cfg = recipe.step_config(config)
  real = jnp.zeros((4, 28, 28, 1))
  new, metrics = jax.jit(recipe.g_step, static_argnames="cfg")(state, real, cfg=cfg)
  assert int(new.step) == 1 and np.isfinite(float(metrics["g_loss"]))
  # w_avg = lerp(mean w, 0, 0.995) from zero: 0.005 * mean w(z1) of the batch G's step drew.
  key = recipe.player_key(state, recipe.KEY_G, state.step)
  z_key, _, _ = jax.random.split(key, 3)
  z = jax.random.normal(z_key, (2, 4, 8))
  w1 = state.generator.apply({"params": state.g_params}, z[0], method="map")
  np.testing.assert_allclose(new.w_avg, 0.005 * jnp.mean(w1, axis=0), rtol=1e-4, atol=1e-7)
  # EMA decay min(0.995, (1 + t) / (10 + t)): 0.1 at step 0, the configured value later.
  assert float(recipe.ema_decay_at(jnp.array(0), jnp.array(0.995))) == pytest.approx(0.1)
  assert float(recipe.ema_decay_at(jnp.array(10 ** 6), jnp.array(0.995))) == pytest.approx(0.995)
  jax.tree.map(lambda e, p, n: np.testing.assert_allclose(e, 0.1 * p + 0.9 * n, rtol=1e-5, atol=1e-6),
               new.g_ema_params, state.g_ema_params, new.g_params)


@pytest.mark.slow  # ~50-70 s: compiles StyleGAN train steps
def test_recipe_smoke_run_writes_eval_grid_and_checkpoint(tmp_path):
  workdir = str(tmp_path / "run")
  result = train(Config(arch="stylegan", steps=2, width=4, latent_dim=8, batch_size=4, r1_gamma=0.1,
                        r1_interval=2, num_eval_samples=20, workdir=workdir))
  with open(os.path.join(workdir, "eval.json")) as f:
    saved = json.load(f)
  assert saved["step"] == 2 == result["step"] and saved["truncation_psi"] == 1.0
  assert saved["eval_params"] == "ema"
  with Image.open(os.path.join(workdir, "samples", "latest.png")) as png:
    assert png.size[0] == png.size[1]  # 8 x 8 tiles
  assert os.listdir(os.path.join(workdir, "checkpoints"))
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  assert any("r1_penalty" in row for row in rows)
