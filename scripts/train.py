"""Trains any stage: the one entry point (docs/design.md, "How a run flows").

  python -m scripts.train --config=configs/vqvae.py:quantizer=fsq,levels=8-5-5-5 \
      --workdir=runs/fsq [--config.total_steps=5000 --config.quantizer.shift=tan ...]

--config=FILE.py[:ARG] builds the config with the file's get_config(ARG); each
--config.KEY=VALUE then sets one of its keys (typed like the value it replaces), the same
override mechanism scripts.evaluate, scripts.sample and sweeps use. Multi-host (TPU pods, GPU
clusters): run the same command on every host; with --coordinator_address, --num_processes and
--process_id (or --distributed, for the environment jax.distributed.initialize reads on
SLURM/TPU) the hosts form one data-parallel run. Rerunning the command resumes from the
workdir's latest checkpoint.

Exit status: 0 when the run has trained all its steps; 143 (128 + SIGTERM) when SIGTERM
stopped it after saving a checkpoint (rerun to resume); 1 for a config mistake (every problem
listed, nothing written to the workdir) or a NaN/Inf loss or state.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys

import jax

from fsq.config import (Check, ConfigError, apply_overrides, check_workdir, load_config_file,
                        split_config_flags, validate)
from fsq.stages import make_stage
from fsq.train.loop import NonFiniteError, Preempted, train


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
  overrides, rest = split_config_flags(argv)
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", required=True, help="configs/NAME.py[:ARG]")
  parser.add_argument("--workdir", required=True,
                      help="where checkpoints, metrics and logs go")
  parser.add_argument("--coordinator_address", help="host:port of process 0 (multi-process)")
  parser.add_argument("--num_processes", type=int, help="processes in the run")
  parser.add_argument("--process_id", type=int, help="this process's index")
  parser.add_argument("--distributed", action="store_true",
                      help="jax.distributed.initialize() with cluster auto-detection")
  return parser.parse_args(rest), overrides


def initialize_distributed(args: argparse.Namespace) -> None:
  if args.coordinator_address is not None:
    # Cross-process collectives between CPU devices (local multi-process runs and tests);
    # GPU and TPU backends ignore this setting.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)
  elif args.distributed:
    jax.distributed.initialize()


def main(argv: list[str] | None = None) -> None:
  args, overrides = parse_args(sys.argv[1:] if argv is None else argv)
  # Our progress at INFO; the libraries' (orbax logs every save step by step) at WARNING.
  # force: importing orbax already configured logging (absl's first log calls basicConfig).
  logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s",
                      force=True)
  logging.getLogger("fsq").setLevel(logging.INFO)
  initialize_distributed(args)
  try:
    config = load_config_file(args.config)
    apply_overrides(config, overrides)
    validate(config, jax.device_count(), jax.process_count(),
             extra=(Check("workdir", lambda c: check_workdir(args.workdir)),))
    stage = make_stage(config)
  except (ConfigError, ValueError, TypeError, FileNotFoundError) as e:
    sys.exit(f"error: {e}")
  try:
    train(stage, config, args.workdir)
  except (ConfigError, NonFiniteError) as e:
    sys.exit(f"error: {e}")
  except Preempted:
    sys.exit(128 + signal.SIGTERM)


if __name__ == "__main__":
  main()
