"""Every objective of the registry on MNIST with DCGAN: classifier FID, KID, precision, recall.

One command trains the MNIST classifier (once; reused from ``--classifier_dir`` when it exists), then
one DCGAN run per (objective, seed) through ``jaxgan.sweep.run_sweep`` (image runs train one after
another through ``jaxgan.train.train``; each writes its metrics to ``eval.json`` via
``jaxgan.evaluate.evaluate_images``), and writes ``experiments/results/mnist_objectives.md`` and
``.json`` (one row per objective: mean and standard error over seeds).

    python experiments/mnist_objectives.py --manual_dir=/path/to/mnist --workdir=runs/mnist_objectives

The published column is Lucic et al. 2018's best *Inception* FID on MNIST (a different feature network,
sample count and budget): it is shown for the ranking only, the numbers are not comparable.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from typing import Any, Sequence  # noqa: E402

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from experiments import common  # noqa: E402
from jaxgan import sweep as sweep_lib  # noqa: E402
from jaxgan.objectives import OBJECTIVES  # noqa: E402

METRICS = ("classifier_fid", "kid", "precision", "recall", "density", "coverage")
# Lucic et al. 2018 ("Are GANs created equal?"), best Inception FID on MNIST (secondary copies).
LUCIC_MNIST_FID = {"minimax": "9.8±0.9", "nonsaturating": "6.8±0.5", "lsgan": "7.8±0.6",
                   "wgan": "6.7±0.4", "wgan_gp": "20.3±5.0"}

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the flags (only when run as a script: importing the module has no side effects)."""
  common.define_mnist_experiment_flags(
      "mnist_objectives", workdir_help="Sweep directory (one run per objective, seed).")
  flags.DEFINE_list("objectives", list(OBJECTIVES), "Objectives (default: the whole registry).")
  flags.DEFINE_integer("seeds", 1, "Seeds per objective.")
  flags.DEFINE_integer("steps", 300, "Generator updates per run.")
  flags.DEFINE_integer("width", 16, "DCGAN ngf = ndf.")
  flags.DEFINE_integer("batch_size", 64, "Batch size.")
  flags.DEFINE_integer("num_eval_samples", 2000, "Generated (and real) images per evaluation.")


def sweep_definition(*, objectives: Sequence[str], seeds: int, steps: int, width: int, batch_size: int,
                     num_eval_samples: int, classifier_dir: str, manual_dir: str | None,
                     data_dir: str | None) -> dict[str, Any]:
  """One run per (objective, seed); each objective keeps its registered optimizer settings."""
  return {"base": {"arch": "dcgan", "dataset": "mnist", "steps": steps, "width": width,
                   "batch_size": batch_size, "num_eval_samples": num_eval_samples,
                   "classifier_dir": classifier_dir, "manual_dir": manual_dir, "data_dir": data_dir,
                   "eval_every": steps, "ckpt_every": steps},
          "list": [{"objective": name} for name in objectives], "seeds": list(range(seeds))}


def aggregate(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
  """One row per objective: mean and standard error (std ddof=1 / sqrt(n)) of each metric."""
  groups: dict[str, list[dict[str, Any]]] = {}
  for run in runs:
    groups.setdefault(run["objective"], []).append(run)
  rows = []
  for objective, members in groups.items():
    ok = [m for m in members if all(isinstance(m.get(k), (int, float)) for k in METRICS)]
    row: dict[str, Any] = {"objective": objective, "seeds": len(members), "finished": len(ok)}
    for key in METRICS:
      values = np.array([float(m[key]) for m in ok])
      row[f"{key}_mean"] = float(values.mean()) if len(values) else float("nan")
      row[f"{key}_se"] = (float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1
                          else float("nan"))
    row["published_inception_fid"] = LUCIC_MNIST_FID.get(objective, "–")
    rows.append(row)
  return rows


def _cell(row: dict[str, Any], key: str, digits: int) -> str:
  mean, se = row[f"{key}_mean"], row[f"{key}_se"]
  if not np.isfinite(mean):
    return "–"
  return f"{mean:.{digits}f}±{se:.{digits}f}" if np.isfinite(se) else f"{mean:.{digits}f}"


def markdown(rows: Sequence[dict[str, Any]], classifier_meta: dict[str, Any], *, seconds: float,
             machine: str, command: str) -> list[str]:
  body = [[r["objective"], f"{r['finished']}/{r['seeds']}", _cell(r, "classifier_fid", 2),
           _cell(r, "kid", 4), _cell(r, "precision", 3), _cell(r, "recall", 3),
           _cell(r, "density", 3), _cell(r, "coverage", 3), r["published_inception_fid"]]
          for r in rows]
  return [
      "# MNIST DCGAN, every objective: classifier FID, KID, precision, recall", "",
      *common.table(["objective", "runs ok", "classifier FID", "KID", "precision", "recall", "density",
                     "coverage", "Lucic et al. 2018 MNIST FID (Inception; not comparable)"], body), "",
      f"Metrics on the penultimate layer (128-d) of jaxgan's MNIST classifier (test accuracy "
      f"{classifier_meta.get('test_accuracy', float('nan')):.4f}), {FLAGS.num_eval_samples} generated vs "
      f"{FLAGS.num_eval_samples} real training images; mean ± standard error over seeds where there "
      "is more than one. Precision/recall: Kynkäänniemi et al. 2019 (k = 3); density/coverage: Naeem "
      "et al. 2020; KID: Binkowski et al. 2018 (cubic kernel, 100 subsets).", "",
      "## Protocol", "",
      f"- DCGAN (`--arch=dcgan`), width {FLAGS.width}, batch {FLAGS.batch_size}, {FLAGS.steps} generator "
      "steps, each objective's registered optimizer settings (`jaxgan/objectives.py`), raw generator "
      "weights.",
      "- **Reduced for the CPU budget**: short runs, one or few seeds; Lucic et al. tune each model "
      "over a large hyperparameter search, train far longer and report Inception FID on 10k samples "
      "— their column shows the published ranking, not comparable values.", "",
      *common.run_section(machine=machine, seconds=seconds, command=command,
                          wall_time_note=", classifier training and evaluation included"),
  ]


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  timer = common.Timer()
  classifier_dir, classifier = common.classifier_from_flags(FLAGS)
  definition = sweep_definition(
      objectives=FLAGS.objectives, seeds=FLAGS.seeds, steps=FLAGS.steps, width=FLAGS.width,
      batch_size=FLAGS.batch_size, num_eval_samples=FLAGS.num_eval_samples,
      classifier_dir=classifier_dir, manual_dir=FLAGS.manual_dir, data_dir=FLAGS.data_dir)
  runs = sweep_lib.run_sweep(definition, FLAGS.workdir)
  rows = aggregate(runs)
  lines = markdown(rows, classifier.meta, seconds=timer.seconds,
                   machine=common.machine_line(timer.start_load), command=common.command_line())
  common.publish(FLAGS.name, FLAGS.results_dir, lines, rows, timer.seconds)


if __name__ == "__main__":
  define_flags()
  app.run(main)
