"""Runs a grid of training runs through scripts.train, resumably, in parallel or as commands.

  python -m scripts.sweep --sweep=configs/sweeps/tradeoff.py:scale=embedded --root=runs/tradeoff
  python -m scripts.sweep --sweep=... --root=... --print_commands   # one line per run, for a
                                                                    # cluster scheduler
A sweep file's get_sweep(arg) lists runs {"name", "config", "overrides"}; run NAME trains in
ROOT/NAME. Finished runs (a checkpoint at their total_steps) are skipped; an interrupted run
resumes from its checkpoint, because scripts.train does. --parallel runs that many at once
(default: as many as fit the cores, each given its share of threads).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import time
from concurrent import futures


def load_sweep(spec: str) -> list[dict]:
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("sweep", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  runs = module.get_sweep(arg or None)
  names = [run["name"] for run in runs]
  if len(set(names)) != len(names):
    raise ValueError(f"sweep {spec} has duplicate run names: {names}")
  return runs


def command(run: dict, workdir: str) -> list[str]:
  flags = [f"--config.{key}={value}" for key, value in run.get("overrides", {}).items()]
  return [sys.executable, "-m", "scripts.train", f"--config={run['config']}",
          f"--workdir={workdir}", *flags]


def finished(workdir: str) -> bool:
  """A run is finished when it has a checkpoint at its total_steps."""
  try:
    with open(os.path.join(workdir, "config.json")) as f:
      total = json.load(f)["total_steps"]
  except (OSError, ValueError, KeyError):
    return False
  return os.path.isdir(os.path.join(workdir, "checkpoints", str(total)))


def run_one(run: dict, workdir: str, threads: int) -> tuple[str, int, float]:
  os.makedirs(workdir, exist_ok=True)
  env = {**os.environ, "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")
         + f" --xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}",
         "OMP_NUM_THREADS": str(threads)}
  start = time.time()
  with open(os.path.join(workdir, "train.log"), "a") as log:
    status = subprocess.call(command(run, workdir), stdout=log, stderr=subprocess.STDOUT,
                             env=env)
  return run["name"], status, time.time() - start


def run_sweep(spec: str, root: str, parallel: int = 0) -> None:
  """Trains every unfinished run of the sweep `spec` below `root`; exits if any fails."""
  runs = load_sweep(spec)
  todo = [run for run in runs if not finished(os.path.join(root, run["name"]))]
  print(f"{len(runs) - len(todo)} of {len(runs)} runs finished already; running {len(todo)}")
  cores = os.cpu_count() or 1
  parallel = parallel or max(1, cores // 2)
  failed = []
  with futures.ThreadPoolExecutor(parallel) as pool:
    jobs = [pool.submit(run_one, run, os.path.join(root, run["name"]),
                        max(1, cores // parallel)) for run in todo]
    for job in futures.as_completed(jobs):
      name, status, seconds = job.result()
      print(f"{name}: {'done' if status == 0 else f'FAILED (exit {status})'} in {seconds:.0f} s"
            f" (log: {os.path.join(root, name, 'train.log')})", flush=True)
      if status:
        failed.append(name)
  if failed:
    sys.exit(f"{len(failed)} run(s) failed: {', '.join(failed)}")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sweep", required=True, help="configs/sweeps/FILE.py[:ARG]")
  parser.add_argument("--root", required=True, help="one workdir per run below it")
  parser.add_argument("--parallel", type=int, default=0, help="runs at once (0: by cores)")
  parser.add_argument("--print_commands", action="store_true")
  args = parser.parse_args()
  if args.print_commands:
    for run in load_sweep(args.sweep):
      print(shlex.join(command(run, os.path.join(args.root, run["name"]))))
    return
  run_sweep(args.sweep, args.root, args.parallel)


if __name__ == "__main__":
  main()
