"""Shared helpers of the experiment scripts: machine description, Markdown tables, result files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from typing import Any, Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(REPO_ROOT, "experiments", "results")


def cpu_model() -> str:
  """The CPU model name (``lscpu``), or the platform's processor string where lscpu is missing."""
  try:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
      if line.startswith("Model name:"):
        return line.split(":", 1)[1].strip()
  except (OSError, subprocess.CalledProcessError):
    pass
  return platform.processor() or "unknown"


def machine_line(start_load: Sequence[float]) -> str:
  """One line: CPU model, core count, JAX backend and the 1-min load average at start and end."""
  import jax  # pylint: disable=import-outside-toplevel
  end_load = os.getloadavg()
  return (f"{cpu_model()}, {os.cpu_count()} cores, JAX {jax.__version__} on "
          f"{jax.default_backend()} ({jax.devices()[0].device_kind}); 1-min load average "
          f"{start_load[0]:.1f} at start, {end_load[0]:.1f} at end (the machine was shared)")


def command_line() -> str:
  """The command that ran this script, as typed (python + argv)."""
  return "python " + " ".join(sys.argv)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
  """A Markdown table as lines."""
  return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
          + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def write_results(name: str, results_dir: str, markdown: Sequence[str], rows: list[dict[str, Any]]
                  ) -> tuple[str, str]:
  """Writes ``<results_dir>/<name>.md`` and ``<name>.json``; returns their paths."""
  os.makedirs(results_dir, exist_ok=True)
  md_path = os.path.join(results_dir, f"{name}.md")
  json_path = os.path.join(results_dir, f"{name}.json")
  with open(md_path, "w", encoding="utf-8") as f:
    f.write("\n".join(markdown) + "\n")
  with open(json_path, "w", encoding="utf-8") as f:
    json.dump(rows, f, indent=2)
  return md_path, json_path


def run_section(*, machine: str, seconds: float, command: str, wall_time_note: str) -> list[str]:
  """The "## Run" lines every result file ends with: machine, wall time (+ note) and the exact command."""
  return ["## Run", "",
          f"- Machine: {machine}",
          f"- Wall time: {seconds / 60:.1f} min ({seconds:.0f} s){wall_time_note}",
          f"- Command: `{command}`"]


def publish(name: str, results_dir: str, markdown: Sequence[str], rows: list[dict[str, Any]],
            seconds: float) -> None:
  """Writes the result files (``write_results``), logs where they went and prints the Markdown."""
  from absl import logging  # pylint: disable=import-outside-toplevel
  md_path, json_path = write_results(name, results_dir, markdown, rows)
  logging.info("Wrote %s and %s in %.0f s", md_path, json_path, seconds)
  print("\n".join(markdown))


class Timer:
  """Wall time since construction, and the load average at the start."""

  def __init__(self):
    self.start = time.perf_counter()
    self.start_load = os.getloadavg()

  @property
  def seconds(self) -> float:
    return time.perf_counter() - self.start


def ensure_classifier(path: str, *, manual_dir: str | None, data_dir: str | None,
                      epochs: int) -> Any:
  """Loads the classifier at ``path``, training (and saving) it on MNIST first if there is none."""
  from absl import logging  # pylint: disable=import-outside-toplevel
  from jaxgan.metrics import classifier as classifier_lib  # pylint: disable=import-outside-toplevel
  if os.path.isfile(os.path.join(path, classifier_lib.META_FILE)):
    return classifier_lib.load_classifier(path)
  logging.info("Training the MNIST classifier into %s", path)
  return classifier_lib.train_classifier("mnist", manual_dir=manual_dir, data_dir=data_dir,
                                         config=classifier_lib.TrainConfig(epochs=epochs), out=path)


def classifier_from_flags(flag_values: Any) -> tuple[str, Any]:
  """(absolute classifier dir, classifier) from ``define_mnist_experiment_flags``' flags, trained if missing."""
  path = os.path.abspath(flag_values.classifier_dir or os.path.join(flag_values.workdir, "classifier"))
  return path, ensure_classifier(path, manual_dir=flag_values.manual_dir, data_dir=flag_values.data_dir,
                                 epochs=flag_values.classifier_epochs)


def define_mnist_experiment_flags(name: str, *, workdir_help: str) -> None:
  """The flags every MNIST experiment shares: data, workdir, classifier and where results go."""
  from absl import flags

  from jaxgan.metrics import classifier as classifier_lib
  flags.DEFINE_string("manual_dir", None, "Directory with the four MNIST IDX files (else TFDS mnist).")
  flags.DEFINE_string("data_dir", None, "TFDS data dir holding a prepared mnist (when no --manual_dir).")
  flags.DEFINE_string("workdir", f"runs/{name}", workdir_help)
  flags.DEFINE_string("classifier_dir", None, "Saved MNIST classifier; trained there if missing "
                      "(default <workdir>/classifier).")
  flags.DEFINE_integer("classifier_epochs", classifier_lib.TrainConfig.epochs, "Classifier epochs.")
  flags.DEFINE_string("results_dir", RESULTS_DIR, f"Where {name}.md / .json go.")
  flags.DEFINE_string("name", name, "Base name of the result files.")

