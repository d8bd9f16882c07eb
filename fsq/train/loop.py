"""The one training loop every stage runs through (DESIGN.md, "The way a run flows").

Data parallel: a Mesh over every device of every host with the batch sharded on "data" and
the state replicated, one `jax.jit` step with the state donated. Checkpoints resume
automatically; the batch and the randomness of step s are pure functions of (seed, s), so a
killed run continues to the same result.
"""
from __future__ import annotations

import json
import logging
import math
import os
import signal
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from clu import parameter_overview
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from fsq import data as data_lib
from fsq.train.checkpoint import Checkpointer, abstract_like
from fsq.train.writers import MetricWriter, has_evaluation


log = logging.getLogger("fsq")

class NonFiniteError(FloatingPointError):
  """A loss or the state became NaN/Inf; nothing from that step was checkpointed."""


def make_mesh(devices: list[jax.Device] | None = None) -> Mesh:
  return Mesh(np.asarray(devices or jax.devices()), ("data",))


def global_batch(local: dict[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
  """This host's rows -> one array per field sharded over every device of every host."""
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in local.items()}


class _Preemption:
  """Turns SIGTERM into a flag the loop checks after each step (then saves and exits)."""

  def __init__(self):
    self.requested = False
    self._previous = signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    log.warning("SIGTERM: saving a checkpoint and stopping after this step.")
    self.requested = True

  def restore(self):
    signal.signal(signal.SIGTERM, self._previous)


def _finite(metrics: dict[str, Any]) -> str | None:
  for name, value in metrics.items():
    if not np.all(np.isfinite(np.asarray(value))):
      return name
  return None


def _eta(seconds: float) -> str:
  seconds = int(seconds)
  return f"{seconds // 3600}h{seconds // 60 % 60:02d}m{seconds % 60:02d}s"


def _eval_missing(workdir: str, step: int, config: ml_collections.ConfigDict) -> bool:
  """Whether `step` was due an evaluation that metrics.jsonl does not hold.

  The checkpoint at an evaluation step is written before the evaluation runs, so a run killed
  during it resumes there; process 0 reads the file and every process follows its answer.
  """
  due = step > 0 and (step % config.eval_every == 0 or step == config.total_steps)
  missing = due and not has_evaluation(workdir, step)
  if jax.process_count() > 1:
    missing = bool(multihost_utils.broadcast_one_to_all(np.asarray(missing)))
  return missing


def evaluate(stage, state, config, mesh: Mesh) -> tuple[dict[str, float], dict[str, np.ndarray]]:
  """Runs the stage's evaluation over the whole held-out split."""
  source = data_lib.make_source(config.data.eval)
  sharding = NamedSharding(mesh, P("data"))
  batches = (global_batch(b, sharding) for b in data_lib.eval_batches(
      source, global_batch_size=config.eval_batch_size, process_index=jax.process_index(),
      process_count=jax.process_count()))
  return stage.evaluate(state, batches)


def train(stage, config: ml_collections.ConfigDict, workdir: str,
          devices: list[jax.Device] | None = None) -> Any:
  """Trains `stage` for config.total_steps steps in `workdir`, resuming if it holds a run.

  `devices` (default: every device of every host) spans the data-parallel mesh.
  """
  mesh = make_mesh(devices)
  is_main = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)
  if is_main:
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2))
  log.info("config:\n%s", config)
  replicated, batch_sharding = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))

  source = data_lib.make_source(config.data.train)
  init_batch = global_batch(data_lib.batch_for_step(
      source, 0, global_batch_size=config.batch_size, seed=config.seed,
      process_index=jax.process_index(), process_count=jax.process_count()), batch_sharding)
  state = jax.jit(stage.init, out_shardings=replicated)(jax.random.key(config.seed), init_batch)
  log.info("parameters:\n%s", parameter_overview.get_parameter_overview(
      stage.parameters(state), include_stats=False))

  checkpointer = Checkpointer(workdir, keep=config.keep_checkpoints,
                              keep_every=config.get("keep_checkpoint_every"))
  start_step = 0
  restored = checkpointer.restore_latest(abstract_like(state, replicated))
  if restored is not None:
    start_step, state = restored
    log.info("resumed from step %d of %s", start_step, checkpointer.directory)
  writer = MetricWriter(workdir, start_step, enabled=is_main, tensorboard=config.tensorboard)

  base_rng = jax.random.key(config.seed + 1)

  def step_fn(state, batch, step):
    state, metrics = stage.train_step(state, batch, jax.random.fold_in(base_rng, step))
    finite = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(
        stage.parameters(state))]))
    return state, {**metrics, "train/state_finite": finite.astype(jnp.float32)}

  jit_step = jax.jit(step_fn, in_shardings=(replicated, batch_sharding, replicated),
                     out_shardings=(replicated, replicated), donate_argnums=(0,))
  batches = data_lib.train_batches(
      source, start_step=start_step, global_batch_size=config.batch_size, seed=config.seed,
      process_index=jax.process_index(), process_count=jax.process_count(),
      num_workers=config.data_workers)
  preemption = _Preemption()
  pending: list[tuple[int, dict[str, Any]]] = []  # Metrics not yet checked on the host.
  history: list[dict[str, float]] = []
  window = {"time": time.time(), "step": start_step}  # Steps/s over the last log window.

  def check_and_log(upto: int) -> None:
    while pending and pending[0][0] <= upto:
      s, metrics = pending.pop(0)
      metrics = jax.device_get(metrics)
      if (bad := _finite(metrics)) is not None or metrics["train/state_finite"] < 1:
        bad = bad or "parameters"
        raise NonFiniteError(f"non-finite {bad} at step {s} (metrics {metrics}); the run "
                             f"stops here and the last checkpoint is left untouched.")
      history.append(metrics)
      if s % config.log_every == 0 or s == config.total_steps:
        means = {k: float(np.mean([h[k] for h in history])) for k in metrics
                 if k != "train/state_finite"}
        history.clear()
        now = time.time()
        rate = (s - window["step"]) / max(now - window["time"], 1e-9)
        window.update(time=now, step=s)
        writer.scalars(s, {**means, "train/steps_per_sec": rate})
        log.info("step %d/%d  loss %.5f  %.2f steps/s  ETA %s", s, config.total_steps,
                     means.get("train/loss", float("nan")), rate,
                     _eta((config.total_steps - s) / max(rate, 1e-9)))

  def evaluate_and_log(step: int) -> None:
    eval_metrics, images = evaluate(stage, state, config, mesh)
    writer.scalars(step, eval_metrics)
    writer.images(step, images)
    log.info("eval at step %d: %s", step, json.dumps(
        {k: round(float(v), 5) for k, v in eval_metrics.items()}))

  try:
    if _eval_missing(workdir, start_step, config):
      log.info("the run stopped before its evaluation at step %d: evaluating now.", start_step)
      evaluate_and_log(start_step)
    for step, local_batch in batches:
      if step >= config.total_steps:
        break
      state, metrics = jit_step(state, global_batch(local_batch, batch_sharding),
                                jnp.asarray(step, jnp.int32))
      done = step + 1
      pending.append((done, metrics))
      check_and_log(done - 1)  # One step behind: the device is never waited for.
      last = done == config.total_steps
      if done % config.checkpoint_every == 0 or last or preemption.requested:
        check_and_log(done)
        checkpointer.save(done, state, force=True)
      if done % config.eval_every == 0 or last:
        check_and_log(done)
        evaluate_and_log(done)
      if preemption.requested:
        log.warning("stopped at step %d by SIGTERM; rerun the same command to resume.",
                        done)
        break
    check_and_log(math.inf)
  finally:
    batches.close()
    preemption.restore()
    checkpointer.wait()
    checkpointer.close()
    writer.flush()
  return state
