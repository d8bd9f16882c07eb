"""Orbax checkpoints: async saves, keep the last N and every k-th, resume past a corrupt one."""
from __future__ import annotations

import logging
import os
from typing import Any

import shutil

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils


log = logging.getLogger("fsq")

class Checkpointer:
  """Saves the whole train state under WORKDIR/checkpoints/STEP.

  Saves are asynchronous (training continues while files are written); orbax writes to a
  temporary folder and renames it when complete, so a run killed mid-save leaves the
  previous checkpoint as the latest.
  """

  def __init__(self, workdir: str, keep: int | None, keep_every: int | None,
               read_only: bool = False):
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    self.read_only = read_only
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, keep_period=keep_every or None, create=not read_only,
        read_only=read_only, enable_async_checkpointing=not read_only)
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def save(self, step: int, state: Any, force: bool = False) -> None:
    self.manager.save(step, args=ocp.args.StandardSave(state), force=force)

  def restore_latest(self, abstract_state: Any) -> tuple[int, Any] | None:
    """(step, state) of the newest checkpoint that restores; None when there is none.

    A checkpoint that fails to restore (truncated or corrupt files) is skipped with a
    warning and the one before it is tried; unless read-only, it is also moved aside to
    WORKDIR/corrupt_checkpoints/ so the run can save that step anew.
    """
    for step in sorted(self.manager.all_steps(), reverse=True):
      try:
        state = self.manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
      except Exception as e:  # Orbax/tensorstore raise many types for unreadable files.
        aside = os.path.join(os.path.dirname(self.directory), "corrupt_checkpoints", str(step))
        log.warning("checkpoint %d in %s could not be restored (%s: %s); trying the "
                    "previous one", step, self.directory, type(e).__name__, str(e)[:200])
        if self.read_only:
          continue
        log.warning("moved checkpoint %d to %s", step, aside)
        if jax.process_index() == 0:
          os.makedirs(os.path.dirname(aside), exist_ok=True)
          shutil.move(os.path.join(self.directory, str(step)), aside)
        multihost_utils.sync_global_devices(f"corrupt checkpoint {step} moved")
        self.manager.reload()
        continue
      return step, state
    return None

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()


def abstract_like(state: Any, sharding: jax.sharding.Sharding) -> Any:
  """ShapeDtypeStructs of `state` placed with `sharding`, the target orbax restores into."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), state)
