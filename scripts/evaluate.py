"""Evaluates a run's latest checkpoint on its held-out split, without training or writing to it.

  python -m scripts.evaluate --workdir=runs/tok_fsq
  python -m scripts.evaluate --workdir=runs/stage2 --out=runs/stage2/eval \
      --set sampling.guidance_sweep=0,1,3 --set data.eval.num_examples=1024

Runs the same evaluation as the training loop (fsq.train.loop.evaluate: the stage's evaluate
over the whole held-out split, data-parallel over the local devices) and prints its metrics as
one JSON object; with --out, also writes them to metrics.json there with the images as PNGs.
--set KEY=VALUE changes an evaluation setting of the run's config (values are Python literals;
a comma-separated list is a tuple), e.g. a larger held-out split or another guidance sweep.
"""
from __future__ import annotations

import argparse
import ast
import json
import os

import jax
import matplotlib.image
from jax.sharding import NamedSharding, PartitionSpec as P

from fsq.config import ConfigError, set_dotted
from fsq.train.loop import evaluate, make_mesh
from fsq.train.restore import load_run


def parse_value(text: str):
  """A Python literal; `a,b,c` is the tuple of its literals; anything else stays a string."""
  try:
    return ast.literal_eval(text if "," not in text or text.startswith(("(", "["))
                            else f"({text.rstrip(',')},)")
  except (ValueError, SyntaxError):
    return text


def apply_overrides(config, overrides: list[str]) -> None:
  for item in overrides:
    key, sep, value = item.partition("=")
    if not sep:
      raise SystemExit(f"error: --set {item!r}: write KEY=VALUE.")
    try:
      set_dotted(config, key, parse_value(value))
    except ConfigError as e:
      raise SystemExit(f"error: --set {e}") from None


def main(argv: list[str] | None = None) -> dict[str, float]:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--out", default="", help="write metrics.json and the images here")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
  args = parser.parse_args(argv)
  stage, state, config = load_run(args.workdir)
  apply_overrides(config, args.set)  # The stage holds this same config and reads it lazily.
  mesh = make_mesh()
  state = jax.device_put(state, NamedSharding(mesh, P()))  # Replicated, as in training.
  metrics, images = evaluate(stage, state, config, mesh)
  metrics = {k: float(v) for k, v in metrics.items()}
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
