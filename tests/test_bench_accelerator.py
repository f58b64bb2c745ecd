"""bench/accelerator.py --quick: every figure prints its lines, each a number or a skip, never an error."""

import importlib.util
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "bench", "accelerator.py")


def _load_script():
  spec = importlib.util.spec_from_file_location("bench_accelerator", SCRIPT)
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module  # dataclasses resolve the module's annotations through sys.modules
  spec.loader.exec_module(module)  # defines functions only; JAX starts in main()
  return module


@pytest.mark.slow
def test_quick_run_prints_every_figure_without_errors():
  expected = _load_script().expected_names(quick=True)
  proc = subprocess.run([sys.executable, SCRIPT, "--quick"], cwd=ROOT, capture_output=True, text=True,
                        timeout=900)
  assert proc.returncode == 0, proc.stderr[-4000:]
  values = {}
  for line in proc.stdout.splitlines():
    if not line.strip() or line.startswith("#"):
      continue
    name, sep, value = line.partition(": ")
    assert sep and name not in values, f"not one `name: value` line per figure: {line!r}"
    values[name] = value
  assert list(values) == expected, proc.stdout
  for name, value in values.items():
    assert not value.startswith("error"), f"{name}: {value}\n{proc.stderr[-4000:]}"
    if value.startswith("skipped ("):
      continue
    assert math.isfinite(float(value)), f"{name}: {value}"
