"""PacGAN Table 2 side by side: DCGAN and packed DCGAN on Stacked MNIST (1000 modes), modes and KL.

One command trains the MNIST classifier (once; reused from ``--classifier_dir`` when it exists), then
DCGAN with each ``--packs`` value through ``jaxgan.train.train`` (``--dataset=stacked_mnist``), and
writes ``experiments/results/stacked_mnist.md`` (jaxgan next to PacGAN Table 2, protocol, machine,
wall time, command) and ``stacked_mnist.json`` (one row per model). The modes/KL are those of each
run's ``eval.json`` (``jaxgan.evaluate.evaluate_images``: 26,000 samples, each channel classified).

    python experiments/stacked_mnist.py --manual_dir=/path/to/mnist --workdir=runs/stacked_mnist

MNIST comes from the four IDX files in ``--manual_dir`` or, without it, from TFDS ``mnist``
(``--data_dir``); nothing is downloaded.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import time  # noqa: E402
from typing import Any, Sequence  # noqa: E402

from absl import app, flags, logging  # noqa: E402

from experiments import common  # noqa: E402
from jaxgan import train as train_lib  # noqa: E402
from jaxgan.config import Config  # noqa: E402
from jaxgan.data import stacked_mnist as stacked_data  # noqa: E402
from jaxgan.metrics import stacked_mnist as stacked_metrics  # noqa: E402

# PacGAN Table 2 (Lin et al. 2018; VEEGAN's setting): (model, modes, KL).
PACGAN_TABLE2 = (
    ("DCGAN (VEEGAN's)", "99", "3.40"),
    ("ALI", "16", "5.40"),
    ("Unrolled GAN", "48.7", "4.32"),
    ("VEEGAN", "150", "2.95"),
    ("DCGAN (PacGAN's)", "78.9±6.46", "4.50±0.13"),
    ("PacDCGAN2", "1000.0±0.00", "0.06±0.01"),
    ("PacDCGAN3", "1000.0±0.00", "0.06±0.01"),
    ("PacDCGAN4", "1000.0±0.00", "0.07±0.01"),
)
PUBLISHED = {1: ("DCGAN (VEEGAN's) / DCGAN (PacGAN's)", "99 / 78.9±6.46", "3.40 / 4.50±0.13"),
             2: ("PacDCGAN2", "1000", "0.06"), 3: ("PacDCGAN3", "1000", "0.06"),
             4: ("PacDCGAN4", "1000", "0.07")}

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the flags (only when run as a script: importing the module has no side effects)."""
  common.define_mnist_experiment_flags("stacked_mnist", workdir_help="Runs go to <workdir>/pack<k>.")
  flags.DEFINE_list("packs", ["1", "2"], "Packing degrees (1 = DCGAN).")
  flags.DEFINE_integer("steps", 2000, "Generator updates per run (PacGAN: 50 epochs of 128k = 100k).")
  flags.DEFINE_integer("width", 16, "DCGAN ngf = ndf.")
  flags.DEFINE_integer("batch", 64, "D inputs per step (PacGAN: 64); batch_size = batch * pack.")
  flags.DEFINE_integer("num_samples", stacked_metrics.DEFAULT_NUM_SAMPLES,
                       "Real images for the reference row (generated: the 26,000 of eval.json).")
  flags.DEFINE_integer("seed", 0, "Seed of every run.")


def real_reference(predict, *, manual_dir: str | None, data_dir: str | None, num_samples: int,
                   seed: int) -> dict[str, Any]:
  """Modes/KL of real Stacked MNIST under the same classifier: the ceiling a perfect G reaches."""
  data = stacked_data.make_stacked_mnist_iterator(batch_size=500, seed=seed + 1, resolution=28,
                                                  manual_dir=manual_dir, data_dir=data_dir)
  return stacked_metrics.stacked_mnist_metrics(predict, data, num_samples=num_samples)


def run_config(pack: int, *, workdir: str, classifier_dir: str) -> Config:
  """The Config of one row (PacGAN's DCGAN settings where the library has them)."""
  return Config(objective="nonsaturating", arch="dcgan", dataset="stacked_mnist", resolution=28,
                pack=pack, batch_size=FLAGS.batch * pack, steps=FLAGS.steps, width=FLAGS.width,
                latent_dim=100, lr_g=2e-4, lr_d=2e-4, beta1=0.5, seed=FLAGS.seed,
                manual_dir=FLAGS.manual_dir, data_dir=FLAGS.data_dir, classifier_dir=classifier_dir,
                eval_every=FLAGS.steps, ckpt_every=FLAGS.steps, num_eval_samples=1000,
                workdir=os.path.join(workdir, f"pack{pack}"))


def markdown(rows: Sequence[dict[str, Any]], reference: dict[str, Any], classifier_meta: dict[str, Any],
             *, seconds: float, machine: str, command: str) -> list[str]:
  body = []
  for r in rows:
    published = PUBLISHED.get(r["pack"], ("–", "–", "–"))
    body.append([r["model"], r["pack"], r["modes"], f"{r['kl']:.2f}", f"{r['train_seconds'] / 60:.1f}",
                 published[0], published[1], published[2]])
  return [
      "# Stacked MNIST mode coverage: jaxgan next to PacGAN Table 2", "",
      *common.table(["jaxgan model", "pack", "modes (of 1000)", "KL", "train min",
                     "published model", "published modes", "published KL"], body), "",
      f"Real Stacked MNIST under the same classifier ({reference['num_samples']} samples): "
      f"{reference['modes']} modes, KL {reference['kl']:.3f} (the best any generator can score here). "
      f"Classifier: jaxgan's MNIST CNN, test accuracy {classifier_meta.get('test_accuracy', float('nan')):.4f} "
      "(PacGAN's: ~99.25%).", "",
      "## Published", "",
      "PacGAN Table 2 (Lin et al. 2018, VEEGAN's setting; numbers as published):", "",
      *common.table(["model", "modes", "KL"], PACGAN_TABLE2), "",
      "## Protocol and where it differs", "",
      f"- Evaluation (the protocol's): {rows[0]['num_samples'] if rows else '?'} generated samples, "
      "each RGB channel classified by the MNIST classifier, modes = distinct digit triples, "
      "KL(generated triple histogram ‖ uniform over 1000) (`jaxgan.metrics.stacked_mnist`).",
      "- Data: 128,000 stacked images, each channel a uniformly random MNIST digit — from the 60k "
      "*train* split (the protocol draws from train+test, 70k), 28×28.",
      f"- DCGAN (`--arch=dcgan`), non-saturating loss, Adam 2e-4 β1 0.5, D sees {FLAGS.batch} "
      f"(packed) inputs per step (batch_size = {FLAGS.batch}·pack), as the protocol; z ~ N(0, I₁₀₀) "
      "instead of U(−1, 1)¹⁰⁰.",
      f"- **Reduced for the CPU budget**: {FLAGS.steps} generator steps (the protocol: 50 epochs of "
      f"128k images at batch 64 = 100k steps) and width {FLAGS.width} (ngf = ndf; DCGAN's is 64). "
      "These rows measure a short run, not the paper's converged models.",
      f"- One seed per row (seed {FLAGS.seed}); PacGAN reports 10 trials.", "",
      *common.run_section(machine=machine, seconds=seconds, command=command,
                          wall_time_note=", classifier training and evaluation included"),
  ]


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  timer = common.Timer()
  classifier_dir, classifier = common.classifier_from_flags(FLAGS)
  reference = real_reference(classifier.predict_fn(), manual_dir=FLAGS.manual_dir,
                             data_dir=FLAGS.data_dir, num_samples=FLAGS.num_samples, seed=FLAGS.seed)
  logging.info("Real Stacked MNIST: %s", reference)
  rows = []
  for pack in (int(k) for k in FLAGS.packs):
    config = run_config(pack, workdir=FLAGS.workdir, classifier_dir=classifier_dir)
    start = time.perf_counter()
    result = train_lib.train(config)
    rows.append({"model": "DCGAN" if pack == 1 else f"PacDCGAN{pack}", "pack": pack,
                 "steps": FLAGS.steps, "width": FLAGS.width, "seed": FLAGS.seed,
                 "modes": result["modes"], "kl": result["kl"],
                 "num_samples": result["modes_num_samples"],
                 "train_seconds": time.perf_counter() - start,
                 "published_model": PUBLISHED.get(pack, ("–",))[0],
                 "published_modes": PUBLISHED.get(pack, ("–", "–"))[1],
                 "published_kl": PUBLISHED.get(pack, ("–", "–", "–"))[2],
                 "workdir": config.workdir})
    logging.info("Stacked MNIST pack %d: %s", pack, rows[-1])
  lines = markdown(rows, reference, classifier.meta, seconds=timer.seconds,
                   machine=common.machine_line(timer.start_load), command=common.command_line())
  common.publish(FLAGS.name, FLAGS.results_dir, lines, rows + [{"model": "real data", **reference}],
                 timer.seconds)


if __name__ == "__main__":
  define_flags()
  app.run(main)
