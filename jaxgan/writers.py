"""Run outputs: ``metrics.jsonl`` (one JSON object per log step) and TensorBoard event files.

TensorBoard files are written with tensorboardX, which needs no TensorFlow (flax.metrics.tensorboard
and clu.metric_writers both import TensorFlow).
"""

from __future__ import annotations

import json
import math
import os
from typing import Mapping

import numpy as np
from tensorboardX import SummaryWriter


class RunWriter:
  """Appends scalars to ``<workdir>/metrics.jsonl`` and ``<workdir>/tb``; images to TensorBoard only."""

  def __init__(self, workdir: str, *, enabled: bool = True):
    self._enabled = enabled
    self._jsonl = None
    self._tb = None
    if enabled:
      os.makedirs(workdir, exist_ok=True)
      self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a", encoding="utf-8")
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
