"""How far a tokenizer's decoder degrades when some of its tokens are wrong, as a Stage II
model's sampled tokens are: held-out scenes tokenised, a fraction p of each grid's positions
given a token drawn from the held-out tokens' own frequencies, decoded, and judged like
reconstructions (scenes-FID against the originals, class consistency, PSNR).

  python -m fsq.studies.token_errors \
      --tokenizers=runs/maskgit_scenes/tok8_fsq,runs/maskgit_scenes/tok8_vq

At p = 0 a row is the tokenizer's plain reconstructions. Two tokenizers whose Stage II models
reach the same bits per token can still give samples of different quality if one decoder turns
the same share of wrong tokens into a larger FID: this measures that sensitivity directly.
Prints a markdown table.
"""
from __future__ import annotations

import argparse

import jax
import numpy as np

from fsq import data as data_lib
from fsq.evaluators import networks
from fsq.evaluators.fid import feature_statistics, frechet_distance
from fsq.images import map_batches, to_uint8
from fsq.stages.restore import load_frozen
from fsq.studies.scenes_fid import psnr

RATES = (0.0, 0.05, 0.1, 0.2, 0.4)


def corrupt(tokens_nhw: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
  """Each position independently, with probability `rate`, given a token drawn from the
  frequencies of all of `tokens_nhw` (so a wrong token is a plausible one, not a rare code)."""
  wrong = rng.random(tokens_nhw.shape) < rate
  draws = rng.choice(tokens_nhw.ravel(), size=tokens_nhw.shape)
  return np.where(wrong, draws, tokens_nhw)


def held_out(config_data, num_examples: int) -> tuple[np.ndarray, np.ndarray]:
  """(images uint8, labels) of the first `num_examples` of the tokenizer's validation split."""
  source = data_lib.make_source({**config_data.to_dict(), "split": "validation",
                                 "num_examples": num_examples})
  batches = list(data_lib.eval_batches(source, global_batch_size=256))
  keep = [np.asarray(b["mask"]) for b in batches]
  return (np.concatenate([np.asarray(b["image"])[m] for b, m in zip(batches, keep)]),
          np.concatenate([np.asarray(b["label"])[m] for b, m in zip(batches, keep)]))


def measure(workdir: str, rates=RATES, num_examples: int = 1024, network: str = "scenes",
            seed: int = 0, batch_size: int = 64) -> list[dict]:
  """One row per rate: {"tokenizer", "rate", "fid", "class_consistency", "psnr"}."""
  tokenizer = load_frozen(workdir)
  tokenize, detokenize = jax.jit(tokenizer.tokenize), jax.jit(tokenizer.detokenize)
  images, labels = held_out(tokenizer.config.data.eval, num_examples)
  tokens = map_batches(lambda x: tokenize(tokenizer.variables, x), images, batch_size)
  judge = networks.judge_fn(network)
  real = feature_statistics([judge(images)[0]])
  rng, rows = np.random.default_rng(seed), []
  for rate in rates:
    decoded = to_uint8(map_batches(lambda t: detokenize(tokenizer.variables, t),
                                   corrupt(tokens, rate, rng), batch_size))
    features, probs = judge(decoded)
    row = {"tokenizer": workdir, "rate": rate,
           "fid": frechet_distance(*feature_statistics([features]), *real),
           "psnr": psnr(decoded, images)}
    if probs is not None:
      row["class_consistency"] = float(np.mean(np.argmax(probs, axis=-1) == labels))
    rows.append(row)
  return rows


def table(rows: list[dict]) -> str:
  lines = ["| tokenizer | wrong tokens | scenes-FID | class consistency | PSNR (dB) |",
           "|---|---|---|---|---|"]
  for r in rows:
    consistency = f"{r['class_consistency']:.3f}" if "class_consistency" in r else ""
    lines.append(f"| {r['tokenizer']} | {r['rate']:.0%} | {r['fid']:.2f} | {consistency} | "
                 f"{r['psnr']:.2f} |")
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tokenizers", required=True, help="comma-separated Stage I workdirs")
  parser.add_argument("--rates", default=",".join(map(str, RATES)))
  parser.add_argument("--num_examples", type=int, default=1024)
  parser.add_argument("--network", default="scenes", help="the judge (fsq/evaluators/networks.py)")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  rates = [float(r) for r in args.rates.split(",")]
  rows = [row for workdir in args.tokenizers.split(",")
          for row in measure(workdir, rates, args.num_examples, args.network, args.seed)]
  text = table(rows)
  print(text)
  return text


if __name__ == "__main__":
  main()
