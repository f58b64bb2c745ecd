"""SIGKILL mid-run, restart with the same command: same final params as an uninterrupted run (slow)."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

ARGS = ["--dataset=grid25", "--steps=3000", "--ckpt_every=500", "--log_every=100", "--eval_every=1500"]


def _run(workdir, steps_per_call, **kw):
  return subprocess.Popen([sys.executable, "launch.py", *ARGS, f"--steps_per_call={steps_per_call}",
                           f"--workdir={workdir}"], **kw)


def _checkpoints(workdir):
  path = os.path.join(workdir, "checkpoints")
  return sorted(int(s) for s in os.listdir(path) if s.isdigit()) if os.path.isdir(path) else []


@pytest.mark.parametrize("steps_per_call", [1, 50])
def test_sigkill_then_restart_ends_with_the_uninterrupted_params(tmp_path, steps_per_call):
  full = _run(tmp_path / "full", steps_per_call, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  killed = _run(tmp_path / "killed", steps_per_call, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 600
  while not _checkpoints(tmp_path / "killed") and time.time() < deadline:
    time.sleep(0.2)
  # A random moment after the first checkpoint, possibly in the middle of a call or of the next save.
  time.sleep(random.uniform(0.1, 1.5))
  killed.send_signal(signal.SIGKILL)
  killed.wait()
  assert killed.returncode == -signal.SIGKILL
  assert _checkpoints(tmp_path / "killed") and not (tmp_path / "killed" / "eval.json").exists()
  subprocess.run([sys.executable, "launch.py", *ARGS, f"--steps_per_call={steps_per_call}",
                  f"--workdir={tmp_path / 'killed'}"], check=True,
                 timeout=900, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  assert full.wait(timeout=900) == 0
  resumed = json.loads((tmp_path / "killed" / "eval.json").read_text())
  uninterrupted = json.loads((tmp_path / "full" / "eval.json").read_text())
  assert resumed["g_params_sha256"] == uninterrupted["g_params_sha256"]
  # Each logged step once: the rows an interrupted attempt wrote after its last checkpoint are replaced.
  rows = [json.loads(line) for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows if "d_loss" in r] == list(range(100, 3001, 100))
