"""Trains any stage: the one entry point (DESIGN.md, "The way a run flows").

  python -m scripts.train --config=configs/vqvae.py:quantizer=fsq,levels=8-5-5-5 \
      --workdir=runs/fsq [--config.total_steps=5000 ...]

Multi-host (TPU pods, GPU clusters): run the same command on every host; with
--coordinator_address, --num_processes and --process_id (or the environment variables
jax.distributed.initialize reads on SLURM/TPU) the hosts form one data-parallel run.
Rerunning the command resumes from the workdir's latest checkpoint.
"""
from __future__ import annotations

import logging
import sys

import jax
from absl import app, flags
from ml_collections import config_flags

from fsq.config import ConfigError, validate
from fsq.stages import make_stage
from fsq.train.loop import train

_CONFIG = config_flags.DEFINE_config_file("config", None, "configs/NAME.py[:ARG]",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "where checkpoints, metrics and logs go")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None,
                                   "host:port of process 0 for a multi-process run")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "processes in the run")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "this process's index")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False,
                                 "call jax.distributed.initialize() with no arguments "
                                 "(cluster auto-detection: SLURM, TPU pods, ...)")
flags.mark_flags_as_required(["config", "workdir"])


def initialize_distributed() -> None:
  if _COORDINATOR.value is not None:
    # Cross-process collectives between CPU devices (local multi-process runs and tests);
    # GPU and TPU backends ignore this setting.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  elif _DISTRIBUTED.value:
    jax.distributed.initialize()


def main(argv):
  del argv
  # Our progress at INFO; the libraries' (orbax logs every save step by step) at WARNING.
  logging.getLogger().setLevel(logging.WARNING)
  logging.getLogger("fsq").setLevel(logging.INFO)
  initialize_distributed()
  config = _CONFIG.value
  try:
    validate(config, jax.device_count(), jax.process_count())
    stage = make_stage(config)
  except (ConfigError, ValueError, TypeError) as e:
    sys.exit(f"error: {e}")
  train(stage, config, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
