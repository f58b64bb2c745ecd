"""Sweeps: definition format and errors, grouping, vmapped members equal single runs, outputs, re-runs."""

import csv
import dataclasses
import glob
import json
import os

import jax
import numpy as np
import pytest

from jaxgan import sweep as sweep_lib
from jaxgan import train as train_lib
from jaxgan.checkpoint import Checkpointer
from jaxgan.config import Config, ConfigError

_BASE = dict(dataset="grid25", steps=10, batch_size=16, width=8, log_every=5, eval_every=5,
             num_eval_samples=200)
# One compiled group of 6: lr_d and seed vary; gp is on for one list entry only, so the penalty is
# switched on for the whole group with weight 0 for the others; lr_d=1e8 makes D diverge.
_SWEEP = {"base": _BASE,
          "list": [{"lr_d": 2e-4}, {"lr_d": 1e-3, "gp_weight": 1.0}, {"lr_d": 1e8}],
          "seeds": [0, 1]}


def _final_state(config: Config):
  """The final checkpoint of a run, restored against a fresh state of its config."""
  config = config.resolve()
  target = train_lib.create_state(config, train_lib.make_batch_source(config))
  checkpointer = Checkpointer(os.path.join(config.workdir, "checkpoints"))
  _, state, _ = checkpointer.restore_latest(target)
  checkpointer.close()
  return state


def _assert_close(a, b, rtol=1e-5, atol=1e-11):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    x, y = np.asarray(x), np.asarray(y)
    assert x.shape == y.shape
    assert np.max(np.abs(x - y)) <= max(rtol * np.max(np.abs(x)), atol), (x, y)


def test_expand_crosses_list_grid_and_seeds_in_order(tmp_path):
  runs = sweep_lib.expand({"base": {"dataset": "ring8", "steps": 7},
                           "list": [{"objective": "hinge"}, {"objective": "lsgan"}],
                           "grid": {"lr_g": [1e-4, 1e-3], "width": [8]},
                           "seeds": [3, 4]}, str(tmp_path))
  assert len(runs) == 2 * 2 * 2
  assert [(r.config.objective, r.config.lr_g, r.config.seed) for r in runs[:3]] == [
      ("hinge", 1e-4, 3), ("hinge", 1e-4, 4), ("hinge", 1e-3, 3)]
  assert runs[0].name == "000-objective=hinge,lr_g=0.0001,width=8,seed=3"
  assert runs[-1].config.workdir == str(tmp_path / runs[-1].name)
  assert all(r.config.steps == 7 and r.config.batch_size == 256 for r in runs)  # base, then resolved


def test_grouping_keeps_structure_apart_and_merges_penalties(tmp_path):
  runs = sweep_lib.expand({"base": {"dataset": "ring8"},
                           "list": [{}, {"gp_weight": 5.0, "lr_d": 1e-3, "seed": 1, "ema_decay": 0.0},
                                    {"width": 64}, {"objective": "hinge"}, {"pack": 2},
                                    {"objective": "wgan"}]}, str(tmp_path))
  groups = sweep_lib.group_runs(runs)
  # hinge shares the nonsaturating runs' program (a lax.switch); WGAN (RMSProp, n_critic 5, clipping) cannot.
  assert [[r.name[:3] for r in g] for g in groups] == [["000", "001", "003"], ["002"], ["004"], ["005"]]
  merged = sweep_lib.group_step_config([r.config for r in groups[0]])
  assert merged.gradient_penalty and merged.ema and merged.objectives == ("nonsaturating", "hinge")
  assert not train_lib.step_config(runs[0].config, None).gradient_penalty


@pytest.mark.parametrize("sweep, message", [
    ({"base": {"lr": 1e-3}}, r"'base': unknown config field 'lr'\. Did you mean 'lr_g' or 'lr_d'"),
    ({"grid": {"objectiv": ["hinge"]}}, r"'grid': unknown config field 'objectiv'. Did you mean 'objective'"),
    ({"list": [{}, {"widht": 3}]}, r"'list' entry 1: unknown config field 'widht'"),
    ({"grids": {}}, r"Unknown sweep keys \['grids'\]"),
    ({"base": {"workdir": "x"}}, r"'workdir' is set by the sweep"),
    ({"grid": {"lr_g": []}}, r"'lr_g' needs a non-empty list"),
    ({"grid": {"seed": [1]}, "seeds": [0]}, r"'seed' is set both"),
    ({"grid": {"seed": [1, 1]}}, r"same config"),
    ({"base": {"arch": "mlp", "dataset": "mnist"}}, r"run 000 .*--dataset must be one of"),
])
def test_bad_sweep_files_raise_clear_errors(tmp_path, sweep, message):
  path = tmp_path / "bad_sweep.py"
  path.write_text(f"SWEEP = {sweep!r}\n")
  with pytest.raises(sweep_lib.SweepError, match=message):
    sweep_lib.run_sweep(str(path), str(tmp_path / "out"))
  assert issubclass(sweep_lib.SweepError, ConfigError)


def test_a_file_without_sweep_dict_is_refused(tmp_path):
  path = tmp_path / "empty.py"
  path.write_text("x = 1\n")
  with pytest.raises(sweep_lib.SweepError, match="must define a dict SWEEP"):
    sweep_lib.load_sweep(str(path))


def test_a_member_does_not_depend_on_the_other_members(tmp_path):
  """Member 0's result is bitwise the same whatever member 1 is (no cross-talk through vmap)."""
  base = Config(**_BASE, workdir=str(tmp_path)).resolve()
  configs = [base, dataclasses.replace(base, seed=1, lr_d=1e-3), dataclasses.replace(base, seed=2, lr_g=1e-3)]
  source = train_lib.make_batch_source(base)
  states = [train_lib.create_state(c, source) for c in configs]
  train = sweep_lib.make_group_train(sweep_lib.group_step_config(configs), source.dataset,
                                     base.batch_size, length=base.steps)
  with_1, _ = train(sweep_lib.stack_states([states[0], states[1]]))
  with_2, _ = train(sweep_lib.stack_states([states[0], states[2]]))
  equal = jax.tree.map(np.array_equal, sweep_lib.member(with_1, 0).g_params,
                            sweep_lib.member(with_2, 0).g_params)
  assert all(jax.tree.leaves(equal))
  assert not np.array_equal(sweep_lib.member(with_1, 1).g_params["Dense_0"]["kernel"],
                            sweep_lib.member(with_2, 1).g_params["Dense_0"]["kernel"])


def test_vmapped_sweep_members_equal_single_runs_and_write_every_output(tmp_path):
  path = tmp_path / "toy_sweep.py"
  path.write_text(f"SWEEP = {_SWEEP!r}\n")
  rows = sweep_lib.run_sweep(str(path), str(tmp_path / "sweep"))
  runs = sweep_lib.expand(_SWEEP, str(tmp_path / "sweep"))
  assert len(sweep_lib.group_runs(runs)) == 1 and [r["name"] for r in rows] == [r.name for r in runs]

  # Members 1 (gp_weight 0 in a group with the penalty on) and 3 (lr_d and gp_weight unlike member 0's)
  # equal the same configs trained alone with jaxgan.train.
  for index in (1, 3):
    alone = Config(**{**_BASE, **runs[index].overrides, "workdir": str(tmp_path / f"alone{index}")})
    result = train_lib.train(alone)
    _assert_close(_final_state(alone).g_params, _final_state(runs[index].config).g_params)
    _assert_close(_final_state(alone).d_params, _final_state(runs[index].config).d_params)
    evaluation = json.loads((tmp_path / "sweep" / runs[index].name / "eval.json").read_text())
    assert set(evaluation) == set(result)  # same keys as a single run's eval.json

  # Different seeds and learning rates give different generators; the diverged member is marked.
  hashes = [json.loads((tmp_path / "sweep" / r.name / "eval.json").read_text())["g_params_sha256"]
            for r in runs]
  assert len(set(hashes[:4])) == 4
  assert [r["status"] for r in rows[:4]] == ["ok"] * 4
  assert all(r["status"].startswith("diverged@") for r in rows[4:]), rows[4:]

  # Metric rows as a single run writes them; the weight-0 member does not report the penalty.
  def metric_rows(i):
    lines = (tmp_path / "sweep" / runs[i].name / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]
  alone_rows = [json.loads(line) for line in (tmp_path / "alone1" / "metrics.jsonl").read_text().splitlines()]
  assert [sorted(r) for r in metric_rows(1)] == [sorted(r) for r in alone_rows]
  assert "gradient_penalty" in metric_rows(3)[0]
  assert os.path.exists(tmp_path / "sweep" / runs[0].name / "samples" / "latest.png")

  # Summary tables: one row per configuration.
  with open(tmp_path / "sweep" / "summary.csv", encoding="utf-8") as f:
    table = list(csv.DictReader(f))
  assert [r["name"] for r in table] == [r.name for r in runs]
  assert {"lr_d", "gp_weight", "seed", "modes", "hq_fraction", "status"} <= set(table[0])
  markdown = (tmp_path / "sweep" / "summary.md").read_text()
  assert sum(line.startswith("| 00") for line in markdown.splitlines()) == len(runs)
  assert "Mean ± std over seeds" in markdown

  # Re-running skips finished runs (nothing is retrained: the files stay untouched).
  before = {p: os.path.getmtime(p) for p in glob.glob(str(tmp_path / "sweep" / "*" / "eval.json"))}
  again = sweep_lib.run_sweep(str(path), str(tmp_path / "sweep"))
  assert all(r["status"].endswith("(earlier run)") for r in again)
  assert before == {p: os.path.getmtime(p) for p in before}


def test_members_of_different_objectives_in_one_program_equal_single_runs(tmp_path):
  # SGD: relativistic losses leave D's last bias with a true gradient of 0 (it cancels in D(x) - D(G(z)));
  # Adam would turn the rounding noise of that 0 (which differs between programs) into +-lr steps.
  sweep = {"base": dict(_BASE, steps=6, log_every=3, eval_every=3, optimizer="sgd", lr_g=0.05, lr_d=0.05),
           "list": [{"objective": o} for o in ("nonsaturating", "hinge", "lsgan", "rsgan")]}
  runs = sweep_lib.expand(sweep, str(tmp_path / "sweep"))
  assert len(sweep_lib.group_runs(runs)) == 1
  sweep_lib.run_sweep(sweep, str(tmp_path / "sweep"))
  for run in runs:
    alone = dataclasses.replace(run.config, workdir=str(tmp_path / f"alone-{run.config.objective}"))
    train_lib.train(alone)
    _assert_close(_final_state(alone).g_params, _final_state(run.config).g_params, atol=1e-8)
    _assert_close(_final_state(alone).d_params, _final_state(run.config).d_params, atol=1e-8)


@pytest.mark.slow  # compiling a vmapped DCGAN step takes ~30 s on 2 cores
def test_an_image_sweep_trains_as_one_vmapped_group_whose_members_equal_single_runs(tmp_path):
  base = dict(arch="dcgan", steps=4, width=8, batch_size=8, log_every=2, eval_every=4, ckpt_every=4,
              num_eval_samples=50)
  sweep = {"base": base, "grid": {"lr_d": [2e-4, 1e-3]}, "seeds": [0, 1]}
  runs = sweep_lib.expand(sweep, str(tmp_path / "sweep"))
  assert len(sweep_lib.group_runs(runs)) == 1  # 4 runs, one program over the embedded digits
  rows = sweep_lib.run_sweep(sweep, str(tmp_path / "sweep"))
  assert [r["status"] for r in rows] == ["ok"] * 4
  for run in runs:
    assert os.path.exists(os.path.join(run.config.workdir, "samples", "latest.png"))
  alone = dataclasses.replace(runs[3].config, workdir=str(tmp_path / "alone"))
  train_lib.train(alone)
  member, single = _final_state(runs[3].config), _final_state(alone)
  _assert_close(member.g_params, single.g_params, rtol=1e-4, atol=1e-6)
  _assert_close(member.d_params, single.d_params, rtol=1e-4, atol=1e-6)
