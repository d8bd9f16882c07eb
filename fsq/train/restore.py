"""Loading a finished run (e.g. a frozen Stage I tokenizer) from its workdir."""
from __future__ import annotations

import json
import os
from typing import Any

import jax
import ml_collections

from fsq import data as data_lib
from fsq.train.checkpoint import Checkpointer


def load_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{workdir!r} has no config.json: is it the workdir of a run?")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def load_run(workdir: str) -> tuple[Any, Any, ml_collections.ConfigDict]:
  """(stage, state, config) of the latest checkpoint in `workdir`, on the default device.

  The stage is rebuilt from the run's config.json, so a Stage II run needs nothing but the
  Stage I workdir.
  """
  from fsq.stages import make_stage  # Stages import this module's users; avoid a cycle.
  config = load_config(workdir)
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
