"""Runs a grid of training runs through scripts.train, resumably, in parallel or as commands.

  python -m scripts.sweep --sweep=configs/sweeps/tradeoff.py:scale=embedded --root=runs/tradeoff
  python -m scripts.sweep --sweep=... --root=... --print_commands   # one line per run, for a
                                                                    # cluster scheduler
  python -m scripts.sweep --sweep=configs/sweeps/tradeoff.py:scale=embedded --root=runs/tradeoff \
      --seeds=0,1,2                                                 # every run with 3 seeds
A sweep file's get_sweep(arg) lists runs {"name", "config", "overrides", "after" (optional:
names of runs of the same sweep it needs, e.g. a Stage II run after its tokenizer)}; run NAME
trains in ROOT/NAME, and "{root}" in its config or overrides reads ROOT. Finished runs (a
checkpoint and an evaluation at their total_steps) are skipped; an interrupted run resumes
from its checkpoint, because scripts.train does. --parallel runs that many at once (default:
as many as fit the cores, each given its share of threads); a run starts once every run it
needs has finished, and is skipped if one of them failed. --seeds repeats the whole sweep per
seed, seed by seed: seed 0 is the sweep as written, seed k renames each run NAME_seed{k}, sets
its config's seed to k and makes it wait for the seed-k runs it needs (and read them: "{root}/NAME"
in its config or overrides becomes "{root}/NAME_seed{k}" for each NAME it waits for).

A run with "tokenize": NAME (a run of the same sweep, which it must wait for) is not a training
run: it writes NAME's token cache for MaskGIT Stage II (scripts.tokenize, "num_examples" scenes)
to ROOT/RUN/tokens, and is finished once that cache is complete.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent import futures

from fsq.config import ConfigError
from fsq.data import tokens as token_cache
from fsq.train.checkpoint import Checkpointer
from fsq.train.writers import has_evaluation


TOKENS = "tokens"  # A tokenize run's cache: ROOT/RUN/tokens.


def with_seeds(runs: list[dict], seeds: Sequence[int]) -> list[dict]:
  """`runs` once per seed: seed 0 as they are, seed k as NAME_seed{k} with config seed k, waiting
  for and reading the seed-k copies of the runs it needs."""
  out = []
  for seed in seeds:
    suffix = f"_seed{seed}" if seed else ""
    for run in runs:
      copy = {**run, "name": run["name"] + suffix}
      if seed:
        needs = run.get("after", ())
        # "{root}/tok" followed by the end, "/" or "," is run tok, "{root}/tok_big" is not.
        pattern = re.compile(r"\{root\}/(" + "|".join(map(re.escape, needs)) + r")(?=$|[/,])")

        def seeded(value):
          if not (needs and isinstance(value, str)):
            return value
          return pattern.sub(lambda m: m[0] + suffix, value)
        if "config" in run:
          copy["config"] = seeded(run["config"])
        copy["overrides"] = {**{k: seeded(v) for k, v in run.get("overrides", {}).items()},
                             "seed": seed}
        copy["after"] = [name + suffix for name in needs]
        if run.get("tokenize"):
          copy["tokenize"] = run["tokenize"] + suffix
      out.append(copy)
  return out


def load_sweep(spec: str, seeds: Sequence[int] = (0,)) -> list[dict]:
  """The runs of `spec` (FILE.py[:ARG]) for each seed, in the sweep's order, each moved after the
  runs it needs."""
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("sweep", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  runs = with_seeds(module.get_sweep(arg or None), seeds)
  names = [run["name"] for run in runs]
  if len(set(names)) != len(names):
    raise ValueError(f"sweep {spec} has duplicate run names: {names}")
  for run in runs:
    if run.get("tokenize") and run["tokenize"] not in run.get("after", ()):
      raise ValueError(f"sweep {spec}: run {run['name']} tokenizes with {run['tokenize']} and "
                       f"must wait for it (\"after\").")
  ordered, placed = [], set()
  while len(ordered) < len(runs):
    ready = [r for r in runs if r["name"] not in placed and set(r.get("after", ())) <= placed]
    if not ready:
      stuck = {r["name"]: r.get("after") for r in runs if r["name"] not in placed}
      raise ValueError(f"sweep {spec}: runs wait on unknown runs or on each other: {stuck}")
    ordered.append(ready[0])
    placed.add(ready[0]["name"])
  return ordered


def command(run: dict, root: str) -> list[str]:
  def fill(value) -> str:
    return str(value).replace("{root}", root)

  if run.get("tokenize"):
    return [sys.executable, "-m", "scripts.tokenize",
            f"--tokenizer={os.path.join(root, run['tokenize'])}",
            f"--out={os.path.join(root, run['name'], TOKENS)}",
            f"--num_examples={run['num_examples']}"]
  flags = [f"--config.{key}={fill(value)}" for key, value in run.get("overrides", {}).items()]
  return [sys.executable, "-m", "scripts.train", f"--config={fill(run['config'])}",
          f"--workdir={os.path.join(root, run['name'])}", *flags]


def finished(workdir: str) -> bool:
  """A run is finished when it has a checkpoint and every evaluation at its total_steps (a
  tokenize run: when its cache is complete).

  A run killed during its final evaluations has the checkpoint only: scripts.train, run
  again, runs the evaluations that are missing without training.
  """
  if os.path.exists(os.path.join(workdir, TOKENS, token_cache.MANIFEST)):
    return True
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


def sweep_or_exit(spec: str, seeds: Sequence[int] = (0,)) -> list[dict]:
  """load_sweep for the command lines: a bad sweep file or argument exits with one line."""
  try:
    return load_sweep(spec, seeds)
  except (ConfigError, ValueError, FileNotFoundError) as e:
    sys.exit(f"error: {e}")


def run_sweep(spec: str, root: str, parallel: int = 0, seeds: Sequence[int] = (0,)) -> None:
  """Trains every unfinished run of the sweep `spec` (for each seed) below `root`; exits with one
  line for a bad sweep and if any run fails."""
  run_runs(sweep_or_exit(spec, seeds), root, parallel)


def run_runs(runs: list[dict], root: str, parallel: int = 0) -> None:
  """Trains every unfinished run of `runs` (load_sweep's) below `root`; exits if any fails."""
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
      # The first ready runs in the sweep's order, no more than run at once: a run whose needs
      # finish early (a language model after its oracle) goes before the later oracles.
      for run in [r for r in todo if set(r.get("after", ())) <= done][:parallel - len(running)]:
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
  # Left waiting only in a list that load_sweep did not order (unknown needs or a cycle).
  if todo:
    sys.exit(f"runs wait on unknown runs or on each other: "
             f"{ {r['name']: r.get('after') for r in todo} }")
  if failed or skipped:
    sys.exit(f"{len(failed)} run(s) failed: {', '.join(failed)}"
             + (f"; skipped after them: {', '.join(skipped)}" if skipped else ""))


def parse_seeds(text: str) -> tuple[int, ...]:
  """"0,1,2" -> (0, 1, 2); distinct integers >= 0."""
  try:
    seeds = tuple(int(part) for part in text.split(","))
  except ValueError:
    raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers, got {text!r}")
  if len(set(seeds)) != len(seeds) or min(seeds) < 0:
    raise argparse.ArgumentTypeError(f"seeds must be distinct integers >= 0, got {text!r}")
  return seeds


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sweep", required=True, help="configs/sweeps/FILE.py[:ARG]")
  parser.add_argument("--root", required=True, help="one workdir per run below it")
  parser.add_argument("--parallel", type=int, default=0, help="runs at once (0: by cores)")
  parser.add_argument("--seeds", type=parse_seeds, default=(0,),
                      help="comma-separated seeds, each a copy of the sweep (default 0)")
  parser.add_argument("--print_commands", action="store_true")
  args = parser.parse_args()
  runs = sweep_or_exit(args.sweep, args.seeds)
  if args.print_commands:
    for run in runs:  # In dependency order.
      after = run.get("after")
      print(shlex.join(command(run, args.root)) + (f"  # after: {' '.join(after)}" if after
                                                    else ""))
    return
  run_runs(runs, args.root, args.parallel)


if __name__ == "__main__":
  main()
