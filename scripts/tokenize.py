"""Caches the tokens of a Stage I tokenizer's training data, for MaskGIT Stage II.

  python -m scripts.tokenize --tokenizer=runs/tok_scenes --out=runs/tokens_scenes_100k \
      --num_examples=100000
  python -m scripts.train --workdir=runs/stage2 \
      --config=configs/maskgit_transformer.py:tokenizer=runs/tok_scenes,token_cache=runs/tokens_scenes_100k,runlocal

Loads the latest checkpoint of --tokenizer (lean: fsq.stages.restore.load_frozen) and tokenises its own `data.train` source (with
--split and --num_examples, the scenes' size, overridden) in index order, each example's
deterministic view (no augmentation), in batches of --batch_size on the default device. Writes
the format of fsq/data/tokens.py into --out (a new directory, complete or absent). Prints and
returns --out.
"""
from __future__ import annotations

import argparse
from collections.abc import Iterator

import jax
import numpy as np

from fsq import data as data_lib
from fsq.data import tokens as token_cache
from fsq.stages.restore import load_frozen


def tokenize_source(tokenize, source: data_lib.Source, batch_size: int
                    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """(tokens, labels) of the source in index order, `tokenize(images)` on batch_size images."""
  for start in range(0, len(source), batch_size):
    examples = [source[i] for i in range(start, min(start + batch_size, len(source)))]
    images = np.stack([e["image"] for e in examples])
    # The last batch padded to the same shape: one compiled program.
    padded = np.pad(images, [(0, batch_size - len(images))] + [(0, 0)] * 3)
    yield (np.asarray(tokenize(padded))[:len(examples)],
           np.array([e["label"] for e in examples], np.int32))


def main(argv: list[str] | None = None) -> str:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tokenizer", required=True, help="a Stage I workdir")
  parser.add_argument("--out", required=True, help="the cache directory (must not exist)")
  parser.add_argument("--split", default="train")
  parser.add_argument("--num_examples", type=int, default=None,
                      help="scenes: the split's size (TFDS: write the split as train[:N])")
  parser.add_argument("--batch_size", type=int, default=64)
  args = parser.parse_args(argv)
  tokenizer = load_frozen(args.tokenizer)
  data = {**tokenizer.config.data.train.to_dict(), "split": args.split}
  if args.num_examples is not None:
    data["num_examples"] = args.num_examples
  source = data_lib.make_source(data)
  tokenize = jax.jit(tokenizer.tokenize)
  manifest = {"tokenizer": tokenizer.workdir, "tokenizer_step": tokenizer.step,
              "data": data, "codebook_size": tokenizer.codebook_size}
  batches = tokenize_source(lambda images: tokenize(tokenizer.variables, images), source,
                            args.batch_size)
  out = token_cache.write_cache(args.out, manifest, len(source), batches)
  print(f"{len(source)} examples of {data} tokenised by {args.tokenizer} "
        f"(step {tokenizer.step}): {out}")
  return out


if __name__ == "__main__":
  main()
