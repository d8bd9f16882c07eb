"""Evaluators built from `config.evals`, each with its own cadence and held-out data.

  config.evals = {
      "recon": {"type": "fsq.evaluators.reconstruction", "network": "scenes"},
      "sample": {"type": "fsq.evaluators.sampling", "every": 10_000,
                 "data": {"num_examples": 1024}, "network": "scenes", "guidance": 0.2},
  }

`type` is the module that defines `Evaluator(stage, *, batch_size, seed, **options)` with
`run(state, batches) -> (metrics, images)`; `every` is its cadence in steps (0: the config's
eval_every; every evaluator also runs at the last step); `data` overrides keys of
`config.data.eval` for it. Everything else is the evaluator's options. Metrics and images are
written as `eval/<name>/<metric>`.
"""
from __future__ import annotations

import importlib
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from fsq import data as data_lib
from fsq.distributed import global_batch

RESERVED = ("type", "every", "data")


def make_evaluators(config: ml_collections.ConfigDict, stage: Any) -> dict[str, Any]:
  """name -> evaluator, in the config's order."""
  evaluators = {}
  for name, cfg in config.get("evals", {}).items():
    module = importlib.import_module(cfg.type)
    options = {k: v for k, v in cfg.items() if k not in RESERVED}
    try:
      evaluators[name] = module.Evaluator(stage, batch_size=config.eval_batch_size,
                                          seed=config.seed, **options)
    except TypeError as e:
      raise ValueError(f"evals.{name} ({cfg.type}): {e}") from None
  return evaluators


def is_due(config: ml_collections.ConfigDict, name: str, step: int) -> bool:
  if step <= 0:
    return False
  every = config.evals[name].get("every") or config.eval_every
  return step % every == 0 or step == config.total_steps


def data_config(config: ml_collections.ConfigDict, name: str) -> dict[str, Any]:
  """The held-out source config of evaluator `name`: data.eval with its `data` overrides."""
  return {**config.data.eval.to_dict(), **config.evals[name].get("data", {})}


def run_evaluator(evaluator: Any, state: Any, source_config: dict[str, Any], batch_size: int,
                  mesh: Mesh) -> tuple[dict[str, float], dict[str, np.ndarray]]:
  """One evaluator over its whole held-out split, batches sharded over `mesh`."""
  source = data_lib.make_source(source_config)
  sharding = NamedSharding(mesh, P("data"))
  batches = (global_batch(b, sharding) for b in data_lib.eval_batches(source, global_batch_size=batch_size,
      process_index=jax.process_index(), process_count=jax.process_count()))
  metrics, images = evaluator.run(state, batches)
  return {k: float(v) for k, v in metrics.items()}, images
