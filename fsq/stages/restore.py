"""Loading a finished run from its workdir: lean as a frozen model, or whole for evaluation."""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections

from fsq import data as data_lib
from fsq.config import apply_overrides
from fsq.stages.base import Stage, make_stage, stage_class
from fsq.train.checkpoint import Checkpointer


def load_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{workdir!r} has no config.json: is it the workdir of a run?")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def load_frozen(workdir: str) -> Any:
  """The frozen model of the run in `workdir` at its latest checkpoint.

  Reads only the parts of the checkpoint its stage's `export_paths` names (e.g. a tokenizer's
  EMA generator weights and quantizer state: no discriminator, optimizer or perceptual
  network) and builds nothing else, so no dataset or loss network needs to be present.
  """
  config = load_config(workdir)
  cls = stage_class(config.stage)
  checkpointer = Checkpointer(workdir, keep=None, keep_every=None, read_only=True)
  try:
    restored = checkpointer.restore_parts(cls.export_paths(config))
  finally:
    checkpointer.close()
  if restored is None:
    raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints: train that run first.")
  step, variables = restored
  return cls.frozen(config, variables, workdir=os.path.abspath(workdir), step=step)


def load_run(workdir: str, overrides: Sequence[str] = ()
             ) -> tuple[Stage, Any, ml_collections.ConfigDict]:
  """(stage, whole state, config) of the latest checkpoint in `workdir`, on the default device.

  `overrides` ("key=value", as --config.key=value) change the run's config before its stage
  is built, e.g. a larger held-out split for scripts.evaluate.
  """
  config = load_config(workdir)
  apply_overrides(config, overrides)
  stage = make_stage(config)
  source = data_lib.make_source(config.data.train)
  batch = data_lib.batch_for_step(source, 0, global_batch_size=1, seed=0)
  abstract = jax.eval_shape(stage.init, jax.random.key(0), batch)
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                          abstract)
  checkpointer = Checkpointer(workdir, keep=None, keep_every=None, read_only=True)
  try:
    restored = checkpointer.restore_latest(abstract)
  finally:
    checkpointer.close()
  if restored is None:
    raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints: train that run first.")
  return stage, restored[1], config
