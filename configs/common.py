"""Pieces every config shares: the loop's settings and the quantizer block."""
from __future__ import annotations

import ml_collections

from fsq.quantizers import levels_for_codebook_size


def loop_config(*, total_steps: int, batch_size: int, eval_batch_size: int, log_every: int,
                eval_every: int, checkpoint_every: int) -> dict:
  """Keys fsq.train.loop reads; stages add theirs beside them."""
  return dict(seed=0, total_steps=total_steps, batch_size=batch_size,
              eval_batch_size=eval_batch_size, log_every=log_every, eval_every=eval_every,
              checkpoint_every=checkpoint_every, keep_checkpoints=3, keep_checkpoint_every=0,
              data_workers=0, tensorboard=True)


def data_config(name: str, image_size: int, eval_examples: int) -> ml_collections.ConfigDict:
  """Train and held-out source configs (fsq.data.make_source) for an embedded dataset."""
  train = {"name": name, "split": "train", "image_size": image_size}
  evaluation = {"name": name, "split": "validation", "image_size": image_size}
  if name == "scenes":  # Procedural: any number of held-out scenes; digits has a fixed split.
    evaluation["num_examples"] = eval_examples
  return ml_collections.ConfigDict({"train": train, "eval": evaluation})


def quantizer_config(arg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The quantizer block from `quantizer=fsq|vq|vq_ema`, `levels=8-5-5-5`, `codebook_size=N`.

  For FSQ, `codebook_size` alone picks the paper's recommended levels (Table 1); for VQ it
  is the number of codewords.
  """
  if arg.quantizer == "fsq":
    levels = arg.levels or levels_for_codebook_size(arg.codebook_size)
    return ml_collections.ConfigDict({"name": "fsq", "levels": tuple(levels)})
  if arg.quantizer == "vq":
    return ml_collections.ConfigDict({
        "name": "vq", "codebook_size": arg.codebook_size, "commitment_cost": 0.25,
        "entropy_weight": 0.1, "entropy_temperature": 0.01})
  if arg.quantizer == "vq_ema":
    return ml_collections.ConfigDict({
        "name": "vq_ema", "codebook_size": arg.codebook_size, "momentum": 0.995,
        "split": True})
  raise ValueError(f"quantizer={arg.quantizer!r}: choose fsq, vq or vq_ema.")
