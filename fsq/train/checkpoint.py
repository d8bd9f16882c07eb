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
    # Orbax warns that a read-only manager is read only: expected here, so quiet.
    absl_log = logging.getLogger("absl")
    level = absl_log.level
    absl_log.setLevel(logging.ERROR if read_only else level)
    try:
      options = ocp.CheckpointManagerOptions(
          max_to_keep=keep, keep_period=keep_every or None, create=not read_only,
          read_only=read_only, enable_async_checkpointing=not read_only)
      self.manager = ocp.CheckpointManager(self.directory, options=options)
    finally:
      absl_log.setLevel(level)

  @staticmethod
  def steps(workdir: str) -> list[int]:
    """The steps of the complete checkpoints in `workdir` ([] without any), read-only."""
    if not os.path.isdir(os.path.join(workdir, "checkpoints")):
      return []
    checkpointer = Checkpointer(workdir, keep=None, keep_every=None, read_only=True)
    try:
      return sorted(checkpointer.manager.all_steps())
    finally:
      checkpointer.close()

  @staticmethod
  def read(workdir: str, step: int) -> Any:
    """The whole saved state of checkpoint `step` as nested dicts of arrays on the default
    device, without knowing its structure (for inspection and tests)."""
    manager = _pytree_manager(os.path.join(workdir, "checkpoints"))
    try:
      target = _abstract(_metadata(manager, step))
      return manager.restore(step, args=_pytree_restore(target))
    finally:
      manager.close()

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

  def restore_parts(self, paths: dict[str, tuple[str, ...]]) -> tuple[int, dict[str, Any]] | None:
    """(step, {name: the subtree at path}) of the newest readable checkpoint, reading nothing
    else from disk; None when there is none. Paths are field names from the saved state's
    root, e.g. ("generator", "ema_params")."""
    manager = _pytree_manager(self.directory)
    try:
      for step in sorted(manager.all_steps(), reverse=True):
        try:
          tree, target = _metadata(manager, step), {}
          for name, path in paths.items():
            node, part = tree, target
            for key in path[:-1]:
              node, part = node[key], part.setdefault(key, {})
            if node.get(path[-1]):  # An empty subtree (e.g. no quantizer state) is not saved.
              part[path[-1]] = _abstract(node[path[-1]])
          restored = manager.restore(step, args=_pytree_restore(target, partial=True))
        except Exception as e:  # As restore_latest: skip what cannot be read.
          log.warning("checkpoint %d in %s could not be read (%s: %s); trying the previous one",
                      step, self.directory, type(e).__name__, str(e)[:200])
          continue
        parts = {}
        for name, path in paths.items():
          node = restored
          for key in path:
            node = node.get(key, {})
          parts[name] = node
        return step, parts
    finally:
      manager.close()
    return None

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()


def _pytree_manager(directory: str) -> ocp.CheckpointManager:
  """A read-only manager that restores any subtree of a saved state by its metadata."""
  return ocp.CheckpointManager(os.path.abspath(directory),
                               options=ocp.CheckpointManagerOptions(read_only=True),
                               item_handlers=ocp.PyTreeCheckpointHandler())


def _metadata(manager: ocp.CheckpointManager, step: int) -> Any:
  tree = manager.item_metadata(step)
  return getattr(tree, "tree", tree)


def _abstract(metadata: Any) -> Any:
  """ShapeDtypeStructs on the first local device for a metadata subtree."""
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                      metadata)


def _pytree_restore(target: Any, partial: bool = False) -> ocp.args.PyTreeRestore:
  return ocp.args.PyTreeRestore(
      target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
      partial_restore=partial)


def abstract_like(state: Any, sharding: jax.sharding.Sharding) -> Any:
  """ShapeDtypeStructs of `state` placed with `sharding`, the target orbax restores into."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), state)
