"""Runs a grid of training runs through scripts.train, resumably, in parallel or as commands.

  python -m scripts.sweep --sweep=configs/sweeps/tradeoff.py:scale=embedded --root=runs/tradeoff
  python -m scripts.sweep --sweep=... --root=... --print_commands   # one line per run, for a
                                                                    # cluster scheduler
A sweep file's get_sweep(arg) lists runs {"name", "config", "overrides", "after" (optional:
names of runs of the same sweep it needs, e.g. a Stage II run after its tokenizer)}; run NAME
trains in ROOT/NAME, and "{root}" in its config or overrides reads ROOT. Finished runs (a
checkpoint and an evaluation at their total_steps) are skipped; an interrupted run resumes
from its checkpoint, because scripts.train does. --parallel runs that many at once (default:
as many as fit the cores, each given its share of threads); a run starts once every run it
needs has finished, and is skipped if one of them failed.
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

from fsq.train.checkpoint import Checkpointer
from fsq.train.writers import has_evaluation


def load_sweep(spec: str) -> list[dict]:
  """The runs of `spec` (FILE.py[:ARG]) in an order where each comes after the runs it needs."""
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("sweep", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  runs = module.get_sweep(arg or None)
  names = [run["name"] for run in runs]
  if len(set(names)) != len(names):
    raise ValueError(f"sweep {spec} has duplicate run names: {names}")
  ordered, placed = [], set()
  while len(ordered) < len(runs):
    ready = [r for r in runs if r["name"] not in placed and set(r.get("after", ())) <= placed]
    if not ready:
      stuck = {r["name"]: r.get("after") for r in runs if r["name"] not in placed}
      raise ValueError(f"sweep {spec}: runs wait on unknown runs or on each other: {stuck}")
    ordered += ready
    placed |= {r["name"] for r in ready}
  return ordered


def command(run: dict, root: str) -> list[str]:
  def fill(value) -> str:
    return str(value).replace("{root}", root)

  flags = [f"--config.{key}={fill(value)}" for key, value in run.get("overrides", {}).items()]
  return [sys.executable, "-m", "scripts.train", f"--config={fill(run['config'])}",
          f"--workdir={os.path.join(root, run['name'])}", *flags]


def finished(workdir: str) -> bool:
  """A run is finished when it has a checkpoint and every evaluation at its total_steps.

  A run killed during its final evaluations has the checkpoint only: scripts.train, run
  again, runs the evaluations that are missing without training.
  """
  try:
    with open(os.path.join(workdir, "config.json")) as f:
      config = json.load(f)
    total, names = config["total_steps"], list(config.get("evals", {}))
  except (OSError, ValueError, KeyError):
    return False
  return (total in Checkpointer.steps(workdir)
          and all(has_evaluation(workdir, total, name) for name in names))


def run_one(run: dict, root: str, threads: int) -> tuple[str, int, float]:
  workdir = os.path.join(root, run["name"])
  os.makedirs(workdir, exist_ok=True)
  env = {**os.environ, "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")
         + f" --xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}",
         "OMP_NUM_THREADS": str(threads)}
  start = time.time()
  with open(os.path.join(workdir, "train.log"), "a") as log:
    status = subprocess.call(command(run, root), stdout=log, stderr=subprocess.STDOUT, env=env)
  return run["name"], status, time.time() - start


def run_sweep(spec: str, root: str, parallel: int = 0) -> None:
  """Trains every unfinished run of the sweep `spec` below `root`; exits if any fails."""
  runs = load_sweep(spec)
  done = {run["name"] for run in runs if finished(os.path.join(root, run["name"]))}
  todo = [run for run in runs if run["name"] not in done]
  print(f"{len(done)} of {len(runs)} runs finished already; running {len(todo)}")
  cores = os.cpu_count() or 1
  parallel = parallel or max(1, cores // 2)
  failed, skipped = [], []
  with futures.ThreadPoolExecutor(parallel) as pool:
    running = {}
    while todo or running:
      for run in [r for r in todo if set(r.get("after", ())) & set(failed + skipped)]:
        todo.remove(run)
        skipped.append(run["name"])
        print(f"{run['name']}: skipped, a run it needs failed", flush=True)
      for run in [r for r in todo if set(r.get("after", ())) <= done]:
        todo.remove(run)
        running[pool.submit(run_one, run, root, max(1, cores // parallel))] = run
      if not running:
        break
      complete, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
      for job in complete:
        del running[job]
        name, status, seconds = job.result()
        print(f"{name}: {'done' if status == 0 else f'FAILED (exit {status})'} in "
              f"{seconds:.0f} s (log: {os.path.join(root, name, 'train.log')})", flush=True)
        if status:
          failed.append(name)
        else:
          done.add(name)
  if failed or skipped:
    sys.exit(f"{len(failed)} run(s) failed: {', '.join(failed)}"
             + (f"; skipped after them: {', '.join(skipped)}" if skipped else ""))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sweep", required=True, help="configs/sweeps/FILE.py[:ARG]")
  parser.add_argument("--root", required=True, help="one workdir per run below it")
  parser.add_argument("--parallel", type=int, default=0, help="runs at once (0: by cores)")
  parser.add_argument("--print_commands", action="store_true")
  args = parser.parse_args()
  if args.print_commands:
    for run in load_sweep(args.sweep):  # In dependency order.
      after = run.get("after")
      print(shlex.join(command(run, args.root)) + (f"  # after: {' '.join(after)}" if after
                                                    else ""))
    return
  run_sweep(args.sweep, args.root, args.parallel)


if __name__ == "__main__":
  main()
