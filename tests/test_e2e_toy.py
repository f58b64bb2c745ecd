"""Slow end-to-end checks of the README's toy claims (run in CI with `pytest -m slow`)."""

import json
import os
import subprocess
import sys
import time

import pytest

from jaxgan import train as train_lib
from jaxgan.config import Config
from jaxgan.objectives import OBJECTIVES

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # experiments/
from experiments.toy_table import EMA_DECAY, TTUR_LR_D, TTUR_LR_G  # noqa: E402  the table's settings

pytestmark = pytest.mark.slow


def test_default_toy_run_recovers_the_ring_in_under_two_minutes(tmp_path):
  load_before = os.getloadavg()[0]
  start = time.perf_counter()
  subprocess.run([sys.executable, "launch.py", "--objective=nonsaturating", "--arch=mlp", "--dataset=ring8",
                  f"--workdir={tmp_path}"], check=True, timeout=600)
  elapsed = time.perf_counter() - start
  result = json.loads((tmp_path / "eval.json").read_text())
  print(f"default toy run: {elapsed:.1f}s, {result}")
  assert result["modes"] >= 7 and result["hq_fraction"] >= 0.9, result
  # Wall-time claims hold on a 2-core machine without other heavy jobs (as in CI); under more load only report.
  if load_before < 4:
    assert elapsed < 120, f"took {elapsed:.1f}s"


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_every_objective_runs_500_steps_on_grid25_without_nan(tmp_path, objective):
  result = train_lib.train(Config(objective=objective, arch="mlp", dataset="grid25", steps=500,
                                  workdir=str(tmp_path)))
  assert (tmp_path / "eval.json").exists()
  assert result["step"] == 500 and all(v == v for v in result.values())  # no NaN anywhere


def test_packing_keeps_the_grid_modes_that_the_unpacked_gan_drops(tmp_path):
  """PacGAN's Table 1 effect at the toy table's protocol (two time-scales, 20k steps, EMA samples).

  Measured on the 2-core CPU (seed 0): pack 4 covers 24 of 25 modes at 88.8 % HQ, pack 1 sharpens onto
  12 modes at 92.4 % HQ. The bounds leave room for other CPUs' rounding, not for losing the effect.
  """
  results = {}
  for pack in (1, 4):
    config = Config(objective="nonsaturating", arch="mlp", dataset="grid25", pack=pack, batch_size=100 * pack,
                    steps=20_000, lr_g=TTUR_LR_G, lr_d=TTUR_LR_D, ema_decay=EMA_DECAY, eval_every=20_000,
                    log_every=5_000,
                    ckpt_every=20_000, workdir=str(tmp_path / f"pack{pack}"))
    results[pack] = train_lib.train(config)
  print({k: {m: results[k][m] for m in ("modes", "hq_fraction", "reverse_kl")} for k in results})
  assert results[4]["modes"] >= 23 and results[4]["hq_fraction"] >= 0.5, results[4]
  assert results[1]["hq_fraction"] >= 0.8, results[1]  # the unpacked GAN is sharp, not diffuse ...
  assert results[1]["modes"] <= results[4]["modes"] - 5, results  # ... but drops modes.
