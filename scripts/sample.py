"""Class-conditional samples of a trained MaskGIT Stage II run, as one PNG grid per class.

  python -m scripts.sample --workdir=runs/stage2 --out=runs/stage2/samples
  python -m scripts.sample --workdir=runs/stage2 --out=/tmp/s --guidance=1.0 --per_class=32 \
      --classes=0,2 --config.sampling.num_steps=8

Loads the run's latest checkpoint (read-only) and decodes `--per_class` samples of each class
with the run's sampling settings (config.sampling, changed with --config.KEY=VALUE as in
scripts.train) at --guidance (default: the run's sampling evaluator's); writes `class_<k>.png`
(rows of `--columns` images) into --out. Deterministic given --seed.
"""
from __future__ import annotations

import argparse
import os
import sys

import matplotlib.image
import numpy as np

from fsq.config import ConfigError, split_config_flags
from fsq.images import image_grid
from fsq.stages.restore import load_run


def class_grid(images_nhwc: np.ndarray, columns: int) -> np.ndarray:
  """(N, H, W, 3) uint8 -> rows of `columns` images (the last row padded with black)."""
  rows = -(-len(images_nhwc) // columns)
  padded = np.zeros((rows * columns, *images_nhwc.shape[1:]), images_nhwc.dtype)
  padded[:len(images_nhwc)] = images_nhwc
  return image_grid(list(padded.reshape(rows, columns, *images_nhwc.shape[1:])))


def main(argv: list[str] | None = None) -> list[str]:
  overrides, rest = split_config_flags(sys.argv[1:] if argv is None else argv)
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="a MaskGIT Stage II run")
  parser.add_argument("--out", required=True)
  parser.add_argument("--per_class", type=int, default=16)
  parser.add_argument("--columns", type=int, default=8)
  parser.add_argument("--classes", default="", help="comma-separated labels (default: all)")
  parser.add_argument("--guidance", type=float, default=None, help="CFG weight alpha")
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(rest)
  try:
    stage, state, config = load_run(args.workdir, overrides)
  except (ConfigError, ValueError, FileNotFoundError) as e:
    raise SystemExit(f"error: {e}") from None
  if not hasattr(stage, "sample_images"):
    raise SystemExit(f"error: {args.workdir} is a {config.stage!r} run, which does not sample.")
  default = config.evals.get("sample", {}).get("guidance", 0.0)
  guidance = default if args.guidance is None else args.guidance
  classes = ([int(c) for c in args.classes.split(",")] if args.classes
             else list(range(config.num_classes)))
  bad = [c for c in classes if not 0 <= c < config.num_classes]
  if bad:
    raise SystemExit(f"error: classes {bad} outside 0..{config.num_classes - 1}.")
  os.makedirs(args.out, exist_ok=True)
  written = []
  for label in classes:
    labels = np.full(args.per_class, label, np.int32)
    images = stage.sample_images(state, labels, guidance, args.batch_size,
                                 seed=args.seed * 100_003 + label)
    path = os.path.join(args.out, f"class_{label}.png")
    matplotlib.image.imsave(path, class_grid(images, args.columns))
    written.append(path)
    print(f"wrote {path} ({args.per_class} samples, guidance {guidance:g})", flush=True)
  return written


if __name__ == "__main__":
  main()
