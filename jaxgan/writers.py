"""Run outputs: ``metrics.jsonl`` (one JSON object per log step) and TensorBoard event files.

TensorBoard files are written with tensorboardX, which needs no TensorFlow (flax.metrics.tensorboard
and clu.metric_writers both import TensorFlow).
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import os
from typing import Any, Callable, Mapping

import numpy as np
from tensorboardX import SummaryWriter


class RunWriter:
  """Appends scalars to ``<workdir>/metrics.jsonl`` and ``<workdir>/tb``; images to TensorBoard only."""

  def __init__(self, workdir: str, *, enabled: bool = True, resume_step: int | None = None):
    """``resume_step``: the step a run restarts from; rows after it (written before an interruption,
    and about to be written again) are dropped from ``metrics.jsonl`` so each step appears once."""
    self._enabled = enabled
    self._jsonl = None
    self._tb = None
    if enabled:
      os.makedirs(workdir, exist_ok=True)
      path = os.path.join(workdir, "metrics.jsonl")
      if resume_step is not None:
        drop_rows_after(path, resume_step)
      self._jsonl = open(path, "a", encoding="utf-8")
      self._tb = SummaryWriter(os.path.join(workdir, "tb"))

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    """One line ``{"step": step, **values}``; non-finite floats are written as strings ("nan")."""
    if not self._enabled:
      return
    row = {"step": int(step)}
    for name, value in values.items():
      value = float(value)
      row[name] = value if math.isfinite(value) else str(value)
      self._tb.add_scalar(name, value, int(step))
    self._jsonl.write(json.dumps(row) + "\n")
    self._jsonl.flush()

  def image(self, step: int, name: str, image: np.ndarray) -> None:
    """An HWC uint8 image (a sample grid or a scatter plot)."""
    if self._enabled:
      self._tb.add_image(name, image, int(step), dataformats="HWC")

  def flush(self) -> None:
    if self._enabled:
      self._tb.flush()

  def close(self) -> None:
    if self._enabled:
      self._jsonl.close()
      self._tb.close()


def drop_rows_after(path: str, step: int) -> int:
  """Rewrites the metrics file ``path`` without rows whose step exceeds ``step``; returns how many went.

  Unparseable lines (a row cut off by a kill) are dropped too. The file is replaced atomically.
  """
  if not os.path.exists(path):
    return 0
  kept, dropped = [], 0
  with open(path, encoding="utf-8") as f:
    for line in f:
      try:
        row_step = int(json.loads(line)["step"])
      except (ValueError, KeyError, TypeError):
        dropped += 1
        continue
      if row_step <= step:
        kept.append(line if line.endswith("\n") else line + "\n")
      else:
        dropped += 1
  if dropped:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
      f.writelines(kept)
    os.replace(tmp, path)
  return dropped


class BackgroundWork:
  """Runs output work (PNG grids, metric rows, TensorBoard events) in order on one background thread,
  so the training loop never waits on files. ``wait()`` blocks until all of it is done and re-raises the
  first error; ``submit`` re-raises an earlier error at once, so a failing writer stops the run."""

  def __init__(self):
    self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxgan-writer")
    self._pending: list[concurrent.futures.Future] = []

  def _raise_done(self) -> None:
    still = []
    for future in self._pending:
      if future.done():
        future.result()  # raises the work's exception, if any
      else:
        still.append(future)
    self._pending = still

  def submit(self, fn: Callable[..., Any], *args: Any) -> None:
    self._raise_done()
    self._pending.append(self._pool.submit(fn, *args))

  def wait(self) -> None:
    pending, self._pending = self._pending, []
    concurrent.futures.wait(pending)  # all of it, then the first error (later work may need the files)
    for future in pending:
      future.result()

  def shutdown(self) -> None:
    """Waits for the work submitted so far (errors re-raised) and stops the thread."""
    try:
      self.wait()
    finally:
      self._pool.shutdown(wait=True)
