"""Run outputs: metrics.jsonl rows (deduplicated on resume) and the background writer thread."""

import json
import threading

import pytest

from jaxgan.writers import BackgroundWork, RunWriter, drop_rows_after


def _steps(path):
  return [json.loads(line)["step"] for line in path.read_text().splitlines()]


def test_a_resumed_run_rewrites_no_step_twice(tmp_path):
  writer = RunWriter(str(tmp_path))
  for step in (10, 20, 20, 30, 40):  # 20 twice: a train row and an eval row of the same step
    writer.scalars(step, {"d_loss": 1.0})
  writer.close()
  with open(tmp_path / "metrics.jsonl", "a", encoding="utf-8") as f:
    f.write('{"step": 50, "d_lo')  # a row cut off by SIGKILL
  resumed = RunWriter(str(tmp_path), resume_step=20)  # the newest checkpoint was at step 20
  resumed.scalars(30, {"d_loss": 2.0})
  resumed.close()
  assert _steps(tmp_path / "metrics.jsonl") == [10, 20, 20, 30]
  assert drop_rows_after(str(tmp_path / "metrics.jsonl"), 100) == 0
  assert drop_rows_after(str(tmp_path / "missing.jsonl"), 0) == 0


def test_background_work_keeps_order_and_reraises_errors():
  done, main = [], threading.get_ident()
  work = BackgroundWork()
  for i in range(20):
    work.submit(lambda i=i: done.append((i, threading.get_ident() != main)))
  work.wait()
  assert done == [(i, True) for i in range(20)]  # in order, off the calling thread

  def fail():
    raise OSError("disk full")

  work.submit(fail)
  with pytest.raises(OSError, match="disk full"):
    work.wait()
