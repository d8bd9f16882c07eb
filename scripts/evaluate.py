"""Evaluates a run's latest checkpoint on its held-out data, without training or writing to it.

  python -m scripts.evaluate --workdir=runs/tok_fsq
  python -m scripts.evaluate --workdir=runs/stage2 --out=runs/stage2/eval \
      --config.evals.sample.guidance_sweep=0,1,3 --config.data.eval.num_examples=1024

Runs the evaluators of the run's config (`config.evals`, or those --only names) as the
training loop does, data-parallel over the local devices, and prints their metrics as one JSON
object ({"eval/<name>/<metric>": value}); with --out, also writes them to metrics.json there
with the images as PNGs. --config.KEY=VALUE changes the run's config first (as in
scripts.train), e.g. a larger held-out split or another guidance sweep.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import matplotlib.image
from jax.sharding import NamedSharding, PartitionSpec as P

from fsq.config import ConfigError, split_config_flags
from fsq.stages.restore import load_run
from fsq.train import evaluation
from fsq.train.loop import make_mesh


def main(argv: list[str] | None = None) -> dict[str, float]:
  overrides, rest = split_config_flags(sys.argv[1:] if argv is None else argv)
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--out", default="", help="write metrics.json and the images here")
  parser.add_argument("--only", default="", help="comma-separated evaluator names")
  args = parser.parse_args(rest)
  try:
    stage, state, config = load_run(args.workdir, overrides)
    names = args.only.split(",") if args.only else list(config.evals)
    unknown = set(names) - set(config.evals)
    if unknown:
      raise ConfigError(f"--only: no evaluator {sorted(unknown)}; the run has "
                        f"{', '.join(config.evals)}.")
    evaluators = evaluation.make_evaluators(config, stage)
  except (ConfigError, ValueError, FileNotFoundError) as e:
    sys.exit(f"error: {e}")
  mesh = make_mesh()
  state = jax.device_put(state, NamedSharding(mesh, P()))  # Replicated, as in training.
  metrics, images = {}, {}
  for name in names:
    m, i = evaluation.run_evaluator(evaluators[name], state, evaluation.data_config(config, name),
                                    config.eval_batch_size, mesh)
    metrics.update({f"eval/{name}/{k}": v for k, v in m.items()})
    images.update({f"eval/{name}/{k}": v for k, v in i.items()})
  print(json.dumps(metrics, indent=1))
  if args.out:
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
      json.dump(metrics, f, indent=1)
    for name, image in images.items():
      matplotlib.image.imsave(os.path.join(args.out, name.replace("/", "_") + ".png"), image)
  return metrics


if __name__ == "__main__":
  main()
