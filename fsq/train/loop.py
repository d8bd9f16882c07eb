"""The one training loop every stage runs through (docs/design.md, "How a run flows").

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
from fsq.config import ConfigError
from fsq.distributed import global_batch
from fsq.train import evaluation
from fsq.train.checkpoint import Checkpointer, abstract_like
from fsq.train.writers import MetricWriter, has_evaluation


log = logging.getLogger("fsq")

class NonFiniteError(FloatingPointError):
  """A metric (the loss...) or a parameter became NaN/Inf; nothing from that step was
  checkpointed. A non-finite quantizer input alone is not caught: NaN reaches the loss, but FSQ
  maps +-Inf to its extreme level (a finite code, zero gradient)."""


class Preempted(Exception):
  """SIGTERM stopped the run before its last step, after saving a checkpoint."""


def make_mesh(devices: list[jax.Device] | None = None) -> Mesh:
  return Mesh(np.asarray(devices or jax.devices()), ("data",))


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


class _StepRate:
  """Training steps per second between marks, without the time `exclude`d (evaluations,
  checkpoints); the first mark, after the compiling first step, starts the clock."""

  def __init__(self):
    self.step, self.time, self.excluded = None, 0.0, 0.0

  def exclude(self, seconds: float) -> None:
    self.excluded += seconds

  def mark(self, step: int) -> float | None:
    """Steps/s since the previous mark (None at the first)."""
    now = time.time()
    rate = None
    if self.step is not None and step > self.step:
      rate = (step - self.step) / max(now - self.time - self.excluded, 1e-9)
    self.step, self.time, self.excluded = step, now, 0.0
    return rate


def _eta(seconds: float) -> str:
  seconds = int(seconds)
  return f"{seconds // 3600}h{seconds // 60 % 60:02d}m{seconds % 60:02d}s"


def _evaluations_missing(workdir: str, step: int, config: ml_collections.ConfigDict
                         ) -> list[str]:
  """The evaluators due at `step` whose metrics metrics.jsonl does not hold.

  The checkpoint at an evaluation step is written before the evaluations run, so a run killed
  during one resumes there and runs only those missing; process 0 reads the file and every
  process follows its answer.
  """
  due = [name for name in config.get("evals", {}) if evaluation.is_due(config, name, step)]
  missing = np.asarray([not has_evaluation(workdir, step, name) for name in due], bool)
  if jax.process_count() > 1 and len(due):
    missing = multihost_utils.broadcast_one_to_all(missing)
  return [name for name, m in zip(due, missing) if m]


def train(stage, config: ml_collections.ConfigDict, workdir: str,
          devices: list[jax.Device] | None = None) -> Any:
  """Trains `stage` for config.total_steps steps in `workdir`, resuming if it holds a run.

  `devices` (default: every device of every host) spans the data-parallel mesh. Nothing is
  written to `workdir` before the data, the evaluators and the initial state are built (a
  ConfigError for a workdir that cannot be created). Raises Preempted when SIGTERM stopped
  the run, NonFiniteError when a loss or the state became NaN/Inf.
  """
  mesh = make_mesh(devices)
  is_main = jax.process_index() == 0
  replicated, batch_sharding = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))

  source = data_lib.make_source(config.data.train)
  try:
    evaluators = evaluation.make_evaluators(config, stage)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  init_batch = global_batch(data_lib.batch_for_step(
      source, 0, global_batch_size=config.batch_size, seed=config.seed,
      process_index=jax.process_index(), process_count=jax.process_count()), batch_sharding)
  state = jax.jit(stage.init, out_shardings=replicated)(jax.random.key(config.seed), init_batch)
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise ConfigError(f"cannot create workdir {workdir!r}: {e.strerror}.") from None
  if is_main:
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2))
  log.info("config:\n%s", config)
  log.info("parameters:\n%s", parameter_overview.get_parameter_overview(
      stage.parameters(state), include_stats=False))

  checkpointer = Checkpointer(workdir, keep=config.keep_checkpoints,
                              keep_every=config.get("keep_checkpoint_every"))
  start_step = 0
  restored = checkpointer.restore_latest(abstract_like(state, replicated))
  if restored is not None:
    start_step, state = restored
    stage.check_restored(state)
    log.info("resumed from step %d of %s", start_step, checkpointer.directory)
  writer = MetricWriter(workdir, start_step, enabled=is_main, tensorboard=config.tensorboard)

  base_rng = jax.random.key(config.seed + 1)
  frozen = jax.device_put(stage.frozen_variables(), replicated)

  def step_fn(state, batch, step, frozen):
    state, metrics = stage.train_step(state, batch, jax.random.fold_in(base_rng, step), frozen)
    finite = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(
        stage.parameters(state))]))
    return state, {**metrics, "train/state_finite": finite.astype(jnp.float32)}

  jit_step = jax.jit(step_fn,
                     in_shardings=(replicated, batch_sharding, replicated, replicated),
                     out_shardings=(replicated, replicated), donate_argnums=(0,))
  batches = data_lib.train_batches(
      source, start_step=start_step, global_batch_size=config.batch_size, seed=config.seed,
      process_index=jax.process_index(), process_count=jax.process_count(),
      num_workers=config.data_workers)
  preemption = _Preemption()
  pending: list[tuple[int, dict[str, Any]]] = []  # Metrics not yet checked on the host.
  history: list[dict[str, float]] = []
  rate_clock = _StepRate()
  stopped = None  # The step SIGTERM stopped the run at.

  def check_and_log(upto: int) -> None:
    while pending and pending[0][0] <= upto:
      s, metrics = pending.pop(0)
      metrics = jax.device_get(metrics)
      if (bad := _finite(metrics)) is not None or metrics["train/state_finite"] < 1:
        bad = bad or "parameters"
        raise NonFiniteError(f"non-finite {bad} at step {s} (metrics {metrics}); the run "
                             f"stops here and the last checkpoint is left untouched.")
      history.append(metrics)
      if s == start_step + 1:
        log.info("step %d took %.1f s, compiling included.", s, time.time() - compile_start)
        rate_clock.mark(s)
      if s % config.log_every == 0 or s == config.total_steps:
        means = {k: float(np.mean([h[k] for h in history])) for k in metrics
                 if k != "train/state_finite"}
        history.clear()
        loss = means.get("train/loss", float("nan"))
        if (rate := rate_clock.mark(s)) is None:
          writer.scalars(s, means)
          log.info("step %d/%d  loss %.5f", s, config.total_steps, loss)
        else:
          writer.scalars(s, {**means, "train/steps_per_sec": rate})
          log.info("step %d/%d  loss %.5f  %.2f steps/s  ETA %s", s, config.total_steps, loss,
                   rate, _eta((config.total_steps - s) / max(rate, 1e-9)))

  def evaluate_and_log(step: int, names: list[str]) -> None:
    start = time.time()
    for name in names:
      metrics, images = evaluation.run_evaluator(
          evaluators[name], state, evaluation.data_config(config, name),
          config.eval_batch_size, mesh)
      writer.scalars(step, {f"eval/{name}/{k}": v for k, v in metrics.items()})
      writer.images(step, {f"eval/{name}/{k}": v for k, v in images.items()})
      log.info("eval %s at step %d: %s", name, step,
               json.dumps({k: round(v, 5) for k, v in metrics.items()}))
    rate_clock.exclude(time.time() - start)

  try:
    if missing := _evaluations_missing(workdir, start_step, config):
      log.info("the run stopped before evaluating %s at step %d: evaluating now.",
               ", ".join(missing), start_step)
      evaluate_and_log(start_step, missing)
    if start_step < config.total_steps:
      log.info("compiling the train step: the first step takes longer than the others.")
    compile_start = time.time()
    for step, local_batch in batches:
      if step >= config.total_steps:
        break
      state, metrics = jit_step(state, global_batch(local_batch, batch_sharding),
                                jnp.asarray(step, jnp.int32), frozen)
      done = step + 1
      pending.append((done, metrics))
      check_and_log(done - 1)  # One step behind: the device is never waited for.
      last = done == config.total_steps
      if done % config.checkpoint_every == 0 or last or preemption.requested:
        check_and_log(done)
        start = time.time()
        checkpointer.save(done, state, force=True)
        writer.flush()  # TensorBoard then holds every step up to a checkpoint a kill resumes.
        rate_clock.exclude(time.time() - start)
      if due := [n for n in evaluators if evaluation.is_due(config, n, done)]:
        check_and_log(done)
        evaluate_and_log(done, due)
      if preemption.requested and not last:
        log.warning("stopped at step %d by SIGTERM; rerun the same command to resume.",
                    done)
        stopped = done
        break
    check_and_log(math.inf)
  finally:
    batches.close()
    preemption.restore()
    checkpointer.wait()
    checkpointer.close()
    writer.close()
  if stopped is not None:
    raise Preempted(f"stopped at step {stopped} by SIGTERM")
  return state
