"""Multi-process training: two ``jax.distributed`` processes on localhost (CPU) train one run.

Each process reads its own shard of the data and pmaps over its device; gradients are averaged over
both processes, so both must end with identical parameters, and only process 0 writes files.
"""

import json
import os
import re
import socket
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_two_processes_on_localhost_agree_on_the_params(tmp_path):
  port = _free_port()
  workdir = tmp_path / "run"
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  procs = [subprocess.Popen(
      [sys.executable, os.path.join(ROOT, "launch.py"), f"--coordinator_address=localhost:{port}",
       "--num_processes=2", f"--process_id={i}", "--steps=60", "--batch_size=64",
       "--log_every=20", "--eval_every=60", "--ckpt_every=30", f"--workdir={workdir}"],
      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
  outputs = []
  for p in procs:
    try:
      out, _ = p.communicate(timeout=300)
    except subprocess.TimeoutExpired:
      for q in procs:
        q.kill()
      pytest.fail("the two-process run did not finish in 300 s")
    outputs.append(out)
  for i, (p, out) in enumerate(zip(procs, outputs)):
    assert p.returncode == 0, f"process {i} failed:\n{out[-3000:]}"
  hashes = [re.findall(r"'g_params_sha256': '([0-9a-f]{64})'", out) for out in outputs]
  assert hashes[0] and hashes[0] == hashes[1], hashes
  assert "on 2 device(s)" in outputs[0]
  result = json.loads((workdir / "eval.json").read_text())
  assert result["g_params_sha256"] == hashes[0][0] and result["step"] == 60
  assert sorted(os.listdir(workdir / "checkpoints")) == ["30", "60"]
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows if "d_loss" in r] == [20, 40, 60]  # written once, by process 0
