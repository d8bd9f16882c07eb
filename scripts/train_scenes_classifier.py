"""Reproduces the committed scenes classifier (the judge behind scenes-FID) with one command.

  python -m scripts.train_scenes_classifier [--workdir=runs/scenes_classifier]

Trains configs/scenes_classifier.py (seed 0: the judge; `--config_arg=seed=1`: the scenes
tokenizers' perceptual network) through the project's training loop, exactly as
`python -m scripts.train --config=configs/scenes_classifier.py --workdir=WORKDIR` does
(rerunning resumes), writes the latest checkpoint's parameters to --output (by default the
committed fsq/evaluators/weights/scenes_classifier_64px[_seed1].msgpack of that seed), and
prints the held-out accuracies of the final evaluation (the whole 10k-scene validation split)
and the wall time.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time

import jax

from configs import scenes_classifier
from fsq.config import validate
from fsq.evaluators.scenes_features import export_weights, weights_path
from fsq.stages import make_stage
from fsq.stages.restore import load_frozen
from fsq.train.loop import Preempted, train
from fsq.train.writers import read_metrics


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", default="",
                      help="default: runs/scenes_classifier, runs/scenes_classifier_seed1, ...")
  parser.add_argument("--output", default="",
                      help="default: the committed weights of the config's seed")
  parser.add_argument("--config_arg", default="",
                      help="argument of configs/scenes_classifier.py, e.g. runlocal")
  args = parser.parse_args()
  logging.basicConfig(level=logging.WARNING)
  logging.getLogger("fsq").setLevel(logging.INFO)

  config = scenes_classifier.get_config(args.config_arg)
  suffix = f"_seed{config.seed}" if config.seed else ""
  args.workdir = args.workdir or f"runs/scenes_classifier{suffix}"
  args.output = args.output or weights_path(config.seed)
  validate(config, jax.device_count(), jax.process_count())
  start = time.time()
  try:
    train(make_stage(config), config, args.workdir)
  except Preempted:  # Saved; the same command resumes. No weights from an unfinished run.
    sys.exit(128 + signal.SIGTERM)
  seconds = time.time() - start
  frozen = load_frozen(args.workdir)
  export_weights(frozen["params"], frozen["config"], args.output)
  final = [m for m in read_metrics(args.workdir) if "eval/classify/accuracy" in m][-1]
  print(json.dumps({"weights": args.output, "step": final["step"],
                    "train_wall_seconds": round(seconds),
                    **{k: round(v, 4) for k, v in final.items() if k.startswith("eval/")}}))


if __name__ == "__main__":
  main()
