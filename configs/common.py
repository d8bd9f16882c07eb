"""Pieces every config shares: the loop's settings and the quantizer block."""
from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

from fsq.config import ConfigError
from fsq.quantizers import QUANTIZERS, levels_for_codebook_size


def loop_config(*, total_steps: int, batch_size: int, eval_batch_size: int, log_every: int,
                eval_every: int, checkpoint_every: int) -> dict:
  """Keys fsq.train.loop reads; stages add theirs beside them."""
  return dict(seed=0, total_steps=total_steps, batch_size=batch_size,
              eval_batch_size=eval_batch_size, log_every=log_every, eval_every=eval_every,
              checkpoint_every=checkpoint_every, keep_checkpoints=3, keep_checkpoint_every=0,
              data_workers=0, tensorboard=True)


def reconstruction_eval(network: str) -> dict:
  """The reconstruction evaluator (fsq/evaluators/reconstruction.py) judged by `network`."""
  return {"type": "fsq.evaluators.reconstruction", "network": network, "weights": ""}


def data_config(name: str, image_size: int, eval_examples: int) -> ml_collections.ConfigDict:
  """Train and held-out source configs (fsq.data.make_source) for an embedded dataset."""
  train = {"name": name, "split": "train", "image_size": image_size}
  evaluation = {"name": name, "split": "validation", "image_size": image_size}
  if name == "scenes":  # Procedural: any number of held-out scenes; digits has a fixed split.
    evaluation["num_examples"] = eval_examples
  return ml_collections.ConfigDict({"train": train, "eval": evaluation})


def quantizer_config(name: str, *, levels: tuple[int, ...] = (), codebook_size: int = 1024,
                     vq_dim: int | None = None, **options: Any) -> ml_collections.ConfigDict:
  """The quantizer block: every field of the layer `fsq.quantizers.make_quantizer(name)` builds.

  Fields not given keep the layer's defaults, so each one can be set from the command line
  (`--config.quantizer.shift=tan`). For FSQ, `codebook_size` alone picks the paper's
  recommended levels (arXiv 2309.15505, Table 1); for VQ it is the number of codewords and
  `vq_dim` their width (FSQ's latent width is its number of levels).
  """
  if name not in QUANTIZERS:
    raise ConfigError(f"quantizer={name!r}: choose one of {', '.join(sorted(QUANTIZERS))}.")
  fields = {f.name: f.default for f in dataclasses.fields(QUANTIZERS[name])
            if f.name not in ("parent", "name", "axis_name")}
  if name == "fsq":
    fields["levels"] = tuple(levels or levels_for_codebook_size(codebook_size))
  else:
    fields["codebook_size"] = codebook_size
    fields["dim"] = vq_dim or fields["dim"]
  unknown = set(options) - set(fields)
  if unknown:
    raise ConfigError(f"quantizer {name!r} has no option(s) {sorted(unknown)}; it has "
                      f"{', '.join(sorted(fields))}.")
  return ml_collections.ConfigDict({"name": name, **fields, **options})
