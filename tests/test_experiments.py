"""The experiment scripts: their pure parts (sweep definitions, aggregation, tables) and tiny end-to-end runs.

The end-to-end runs execute each script as its one command in a subprocess with a tiny config and are
marked slow; the MNIST ones are skipped when the raw MNIST files are absent.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from experiments import mnist_objectives, toy_table  # noqa: E402
from jaxgan.sweep import expand, group_runs  # noqa: E402

MNIST_DIR = "/work/shared/data/mnist"


def test_toy_table_sweep_has_one_vmapped_group_per_row():
  definition = toy_table.sweep_definition(datasets=["ring8", "grid25"], objectives=["minimax", "wgan"],
                                          packs=[2, 4], steps=100, batch=100, width=16, seeds=3)
  runs = expand(definition, "/tmp/unused")
  groups = group_runs(runs)
  assert len(runs) == 2 * 4 * 3 and len(groups) == 2 * 4
  for members in groups:
    assert sorted(r.config.seed for r in members) == [0, 1, 2]
    config = members[0].config
    assert config.batch_size == 100 * config.pack  # D sees 100 packed inputs, as in PacGAN.
    assert config.pack == 1 or config.objective == "nonsaturating"
    assert config.ema_decay == toy_table.EMA_DECAY
    # Two time-scales for the one-D-step objectives; WGAN keeps its paper's RMSProp 5e-5.
    if config.objective == "wgan":
      assert (config.lr_g, config.lr_d, config.n_critic) == (5e-5, 5e-5, 5)
    else:
      assert (config.lr_g, config.lr_d) == (toy_table.TTUR_LR_G, toy_table.TTUR_LR_D)


@pytest.mark.parametrize("bad", [{"ema_decay": 1.0}, {"ema_decay": -0.1}, {"lr_d": -1.0}])
def test_toy_table_rejects_bad_settings_before_training(bad):
  """--ema_decay / --lr_* values reach Config validation when the sweep is expanded, not mid-run."""
  definition = toy_table.sweep_definition(datasets=["ring8"], objectives=["minimax"], packs=[], steps=100,
                                          batch=100, width=16, seeds=1, **bad)
  name = next(iter(bad))
  with pytest.raises(ValueError, match=name):
    expand(definition, "/tmp/unused")


def test_toy_table_aggregate_mean_and_standard_error():
  runs = [{"dataset": "grid25", "objective": "nonsaturating", "pack": 4, "modes": m, "hq_fraction": h,
           "reverse_kl": k, "status": s}
          for m, h, k, s in [(25, 0.9, 0.1, "ok"), (23, 0.8, 0.3, "ok"), (24, 0.7, 0.2, "diverged@10")]]
  (row,) = toy_table.aggregate(runs)
  assert row["seeds"] == 3 and row["diverged"] == 1
  assert row["modes_mean"] == pytest.approx(24.0)
  assert row["modes_se"] == pytest.approx(1.0 / np.sqrt(3))  # std (ddof=1) = 1.
  assert row["hq_mean"] == pytest.approx(80.0) and row["hq_se"] == pytest.approx(10.0 / np.sqrt(3))
  assert row["rkl_mean"] == pytest.approx(0.2)
  keys = {"dataset", "objective", "pack", "seeds", "modes_mean", "modes_se", "hq_mean", "hq_se",
          "rkl_mean", "rkl_se"}
  assert keys <= set(row)
  lines = toy_table.markdown([row], steps=10, batch=100, width=8, seconds=61.0, machine="cpu",
                             command="python experiments/toy_table.py")
  text = "\n".join(lines)
  assert "24.0±0.6 (1 diverged)" in text and "80.0±5.8" in text
  assert "PacGAN4: 7.8±0.1 / 95.9±1.4 / 0.07±0.02; 24.8±0.2 / 93.6±0.6 / 0.04±0.01" in text
  assert "VEEGAN | 8 | 52.9 | 24.6 | 40" in text and "1.0 min" in text


def test_mnist_objectives_aggregate_skips_unfinished_runs():
  runs = [{"objective": "hinge", "classifier_fid": 4.0, "kid": 0.1, "precision": 0.5, "recall": 0.4,
           "density": 1.0, "coverage": 0.3},
          {"objective": "hinge", "classifier_fid": 6.0, "kid": 0.3, "precision": 0.7, "recall": 0.6,
           "density": 1.2, "coverage": 0.5},
          {"objective": "wgan", "diverged_at_step": 5}]
  hinge, wgan = mnist_objectives.aggregate(runs)
  assert (hinge["finished"], hinge["seeds"]) == (2, 2)
  assert hinge["classifier_fid_mean"] == pytest.approx(5.0)
  assert hinge["classifier_fid_se"] == pytest.approx(1.0)
  assert (wgan["finished"], wgan["seeds"]) == (0, 1) and np.isnan(wgan["kid_mean"])
  assert wgan["published_inception_fid"] == "6.7±0.4"


def _run(script, *args, timeout=900):
  out = subprocess.run([sys.executable, os.path.join(REPO, "experiments", script), *args],
                       capture_output=True, text=True, timeout=timeout, cwd=REPO)
  assert out.returncode == 0, out.stderr[-3000:]
  return out


@pytest.mark.slow
def test_toy_table_one_command(tmp_path):
  _run("toy_table.py", f"--workdir={tmp_path / 'runs'}", f"--results_dir={tmp_path}", "--steps=20",
       "--seeds=2", "--datasets=grid25", "--objectives=nonsaturating", "--packs=2")
  rows = json.loads((tmp_path / "toy_table.json").read_text())
  assert [(r["objective"], r["pack"], r["seeds"]) for r in rows] == [("nonsaturating", 1, 2),
                                                                     ("nonsaturating", 2, 2)]
  text = (tmp_path / "toy_table.md").read_text()
  assert "PacGAN2" in text and "Wall time" in text and "--steps=20" in text


@pytest.fixture
def tiny_classifier(tmp_path):
  from jaxgan.metrics import classifier as C
  module = C.MnistClassifier(conv_features=(4, 8), hidden=16)
  params = module.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"]
  path = str(tmp_path / "classifier")
  C.save_classifier(path, C.TrainedClassifier(params, module, {
      "dataset": "mnist", "test_accuracy": 0.1, "architecture": module.architecture()}))
  return path


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(MNIST_DIR), reason="raw MNIST files not available")
def test_stacked_mnist_one_command(tmp_path, tiny_classifier):
  _run("stacked_mnist.py", f"--manual_dir={MNIST_DIR}", f"--workdir={tmp_path / 'runs'}",
       f"--classifier_dir={tiny_classifier}", f"--results_dir={tmp_path}", "--steps=2", "--width=4",
       "--packs=1", "--num_samples=1000")
  rows = json.loads((tmp_path / "stacked_mnist.json").read_text())
  assert rows[0]["model"] == "DCGAN" and 1 <= rows[0]["modes"] <= 1000
  assert rows[0]["num_samples"] == 26_000 and rows[-1]["model"] == "real data"
  assert "PacDCGAN2" in (tmp_path / "stacked_mnist.md").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(MNIST_DIR), reason="raw MNIST files not available")
def test_mnist_objectives_one_command(tmp_path, tiny_classifier):
  _run("mnist_objectives.py", f"--manual_dir={MNIST_DIR}", f"--workdir={tmp_path / 'runs'}",
       f"--classifier_dir={tiny_classifier}", f"--results_dir={tmp_path}", "--steps=2", "--width=4",
       "--objectives=hinge,lsgan", "--num_eval_samples=200")
  rows = json.loads((tmp_path / "mnist_objectives.json").read_text())
  assert [r["objective"] for r in rows] == ["hinge", "lsgan"]
  assert all(r["finished"] == 1 and np.isfinite(r["classifier_fid_mean"]) for r in rows)


def test_stylegan_collapse_effective_classes():
  from experiments import stylegan_collapse
  assert stylegan_collapse.effective_classes(np.zeros(50, np.int64)) == pytest.approx(1.0)
  assert stylegan_collapse.effective_classes(np.arange(100) % 10) == pytest.approx(10.0)
  assert stylegan_collapse.effective_classes(np.array([0, 0, 1, 1])) == pytest.approx(2.0)


@pytest.mark.parametrize("text, fix", [
    ("n_critic=2", "JSON object"), ("[1]", "JSON object"), ('{"dataset": "mnist"}', "--dataset"),
    ('{"n_critics": 2}', "valid")])
def test_stylegan_collapse_rejects_bad_set(text, fix):
  from experiments import stylegan_collapse
  from jaxgan.config import ConfigError
  with pytest.raises(ConfigError, match=fix):
    stylegan_collapse.parse_overrides(text)
  assert stylegan_collapse.parse_overrides('{"n_critic": 2}') == {"n_critic": 2}


@pytest.mark.parametrize("bad, flag", [
    ({"steps": -1}, "--steps"), ({"every": 0}, "--every"), ({"freeze": "mapping"}, "--freeze"),
    ({"d_width": 0}, "--d_width"), ({"torgb_init_scale": 0.0}, "--torgb_init_scale")])
def test_stylegan_collapse_rejects_bad_settings_before_training(bad, flag):
  from experiments import stylegan_collapse
  from jaxgan.config import ConfigError
  args = dict(steps=10, every=5, freeze="none", d_width=None, torgb_init_scale=1.0)
  stylegan_collapse.check_args(**args)
  with pytest.raises(ConfigError, match=flag):
    stylegan_collapse.check_args(**{**args, **bad})


def test_stylegan_collapse_command_line_names_the_bad_flag():
  result = subprocess.run([sys.executable, os.path.join(REPO, "experiments", "stylegan_collapse.py"),
                           "--dataset=digits", "--every=0"], capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert "--every must be >= 1" in result.stderr


@pytest.mark.slow
def test_stylegan_collapse_probe_freezes_the_chosen_group():
  from experiments import stylegan_collapse
  from jaxgan.config import Config
  from jaxgan.recipes import stylegan as recipe
  overrides = {"width": 8, "latent_dim": 16, "batch_size": 8}
  rows, state = stylegan_collapse.run(dataset="digits", manual_dir=None, classifier_dir=None, steps=2,
                                      every=1, freeze="styles", d_width=16, torgb_init_scale=0.5,
                                      overrides=overrides, print_fn=lambda line: None)
  assert [r["step"] for r in rows] == [0, 1, 2]
  assert all(np.isfinite(r["raw_div"]) and np.isfinite(r["ema_div"]) for r in rows)
  config = Config(arch="stylegan", dataset="digits", **overrides).resolve()
  init = recipe.create_state(config, recipe.make_source(config)).g_params
  same = lambda a, b: bool(np.array_equal(np.asarray(a), np.asarray(b)))  # noqa: E731
  assert same(state.g_params["mapping"]["fc0"]["kernel"], init["mapping"]["fc0"]["kernel"])
  assert same(state.g_params["synthesis"]["conv0"]["conv"]["affine"]["kernel"],
              init["synthesis"]["conv0"]["conv"]["affine"]["kernel"])
  assert not same(state.g_params["synthesis"]["conv0"]["conv"]["kernel"],
                  init["synthesis"]["conv0"]["conv"]["kernel"])
  assert state.discriminator.width == 16
