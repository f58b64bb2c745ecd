"""End-to-end speed of a vmapped sweep vs the same runs one after another, as a user experiences it.

Both sides train the same N toy MLP GAN configs (seeds 0..N-1, four discriminator learning rates) for
the same steps, with the same outputs per run (metrics.jsonl, eval rows and sample plots every
``eval_every``, eval.json, one final checkpoint: ``ckpt_every = steps`` for both), in one process:

* sweep: ``jaxgan.sweep.run_sweep`` (one compiled program for all N runs);
* sequential: ``jaxgan.train.train`` per config (what a user without sweeps runs; each run compiles).

Wall time runs from the start to all N eval.json files, compilation included; the JAX caches are
cleared before each side and an untimed tiny run first warms library imports (orbax, Pillow, ...).
The last line is ``speedup: X.XX`` = sweep throughput / sequential throughput (model-steps per second).

  python bench/sweep_speedup.py --n=16 --steps=2000 --batch_size=256
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import jax
import numpy as np
from absl import app, flags, logging

from jaxgan import sweep as sweep_lib
from jaxgan import train as train_lib
from jaxgan.config import Config

flags.DEFINE_integer("n", 16, "Runs in the sweep.")
flags.DEFINE_integer("steps", 2000, "Training steps of every run.")
flags.DEFINE_integer("batch_size", 256, "Batch size of every run.")
flags.DEFINE_integer("width", 128, "MLP hidden units.")
flags.DEFINE_string("dataset", "ring8", "Toy dataset.")
flags.DEFINE_string("workdir", None, "Where the runs go (default: a temporary directory, deleted after).")
FLAGS = flags.FLAGS

LR_D = (1e-4, 2e-4, 5e-4, 1e-3)


def _load() -> str:
  return "load average (1/5/15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv):
  del argv
  from jaxgan.xla_flags import apply_cpu_defaults
  apply_cpu_defaults()  # as launch.py does; before the first JAX computation
  logging.set_verbosity(logging.WARNING)
  n, steps = FLAGS.n, FLAGS.steps
  root = FLAGS.workdir or tempfile.mkdtemp(prefix="sweep_speedup_")
  base = {"arch": "mlp", "dataset": FLAGS.dataset, "steps": steps, "batch_size": FLAGS.batch_size,
          "width": FLAGS.width, "ckpt_every": steps}
  sweep = {"base": base,
           "list": [{"seed": i, "lr_d": LR_D[i % len(LR_D)]} for i in range(n)]}
  print(f"{n} runs x {steps} steps, batch {FLAGS.batch_size}, width {FLAGS.width}, {FLAGS.dataset}; "
        f"{jax.device_count()} {jax.devices()[0].platform} device(s), {os.cpu_count()} CPUs; {_load()}")

  # Untimed warm-up of the libraries (a different width, so no compiled program is shared).
  train_lib.train(Config(**{**base, "width": 3, "steps": 2, "workdir": os.path.join(root, "warmup")}))

  jax.clear_caches()
  start = time.perf_counter()
  rows = sweep_lib.run_sweep(sweep, os.path.join(root, "sweep"))
  sweep_wall = time.perf_counter() - start
  print(f"sweep (vmapped, 1 program):  {sweep_wall:8.1f} s  {n * steps / sweep_wall:9.0f} model-steps/s  "
        f"mean modes {np.mean([r['modes'] for r in rows]):.2f}; {_load()}")

  jax.clear_caches()
  start = time.perf_counter()
  results = []
  for i, entry in enumerate(sweep["list"]):
    results.append(train_lib.train(Config(**{**base, **entry, "workdir": os.path.join(root, f"seq{i:03d}")})))
  seq_wall = time.perf_counter() - start
  print(f"sequential (train.train x{n}): {seq_wall:7.1f} s  {n * steps / seq_wall:9.0f} model-steps/s  "
        f"mean modes {np.mean([r['modes'] for r in results]):.2f}; {_load()}")

  if FLAGS.workdir is None:
    shutil.rmtree(root, ignore_errors=True)
  print(f"speedup: {seq_wall / sweep_wall:.2f}")


if __name__ == "__main__":
  app.run(main)
