"""Orbax checkpoints of the GANState plus JSON metadata (data-iterator position), with safe fallback.

Each checkpoint is a step directory holding two items: ``state`` (the GANState pytree, restored
against an abstract target built from the same config) and ``meta`` (JSON: the data iterator's state
and anything else the loop needs to continue exactly). Orbax writes into a temporary directory and
renames it when complete, so a run killed mid-save leaves no half-written step visible; a step that is
visible but unreadable (corrupted on disk) is skipped with a warning and the previous one is used.
``save(..., blocking=False)`` (the training loop's) returns once orbax holds the arrays and writes the
files on a background thread while training goes on; the next ``save``, ``restore_latest`` and ``close``
wait for it. Pass
arrays the caller will not donate or modify (``jaxgan.train`` passes a device copy of the state).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging


class CheckpointError(RuntimeError):
  """No usable checkpoint could be restored although some exist."""


class Checkpointer:
  """Saves and restores ``(state, meta)`` pairs under ``directory`` (keeps the last ``max_to_keep``)."""

  def __init__(self, directory: str, *, max_to_keep: int = 3, primary_host: bool = True):
    self._directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=True, enable_async_checkpointing=True)
    del primary_host  # orbax coordinates multi-host saves itself (only process 0 writes metadata).
    self._manager = ocp.CheckpointManager(self._directory, options=options, item_names=("state", "meta"))

  @property
  def directory(self) -> str:
    return self._directory

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def save(self, step: int, state: Any, meta: dict[str, Any], *, blocking: bool = True) -> None:
    """Writes a checkpoint for ``step`` (a no-op if that step is already saved).

    ``blocking=False`` returns while orbax writes the files in the background (see the module docstring).
    """
    self._manager.wait_until_finished()  # one save in flight at a time
    if step in self._manager.all_steps():
      return
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
    if blocking:
      self._manager.wait_until_finished()

  def wait(self) -> None:
    """Blocks until the save in flight (if any) is on disk."""
    self._manager.wait_until_finished()

  def restore_latest(self, abstract_state: Any) -> tuple[int, Any, dict[str, Any]] | None:
    """Restores the newest readable checkpoint as ``(step, state, meta)``; None if there is none.

    Unreadable checkpoints are skipped with a warning naming them; if every one is unreadable a
    CheckpointError says so (and how to start over), rather than silently training from scratch.
    """
    self._manager.wait_until_finished()
    steps = self.all_steps()
    if not steps:
      return None
    errors = []
    for step in reversed(steps):
      try:
        restored = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
        state = restored["state"]
        # Re-attach static fields (apply functions, optimizers) from the target.
        state = jax.tree_util.tree_unflatten(
            jax.tree_util.tree_structure(abstract_state), jax.tree_util.tree_leaves(state))
        if errors:
          logging.warning("Restored checkpoint step %d after skipping unreadable newer ones: %s",
                          step, "; ".join(errors))
        return step, state, restored["meta"]
      except Exception as e:  # noqa: BLE001 - any failure to read means this step is unusable
        msg = f"step {step} in {self._directory} is unreadable ({type(e).__name__}: {e})"
        logging.warning("Checkpoint %s; trying the previous one.", msg)
        errors.append(msg)
    raise CheckpointError(
        "No readable checkpoint: " + "; ".join(errors) +
        ". Restore the files, or start over with --overwrite (deletes this run's checkpoints).")

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
