"""Compression evaluator: the bits a Stage II model needs to code the held-out tokens losslessly.

The stage provides `bits(state, batch) -> (B,) bits per example` (jitted; named by the `pred`
option, e.g. MaskGIT's fixed-schedule code length, maskgit/decoding.py:compression_bits) and
`tokens_per_example`.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax
import numpy as np

from fsq.distributed import to_host


class Evaluator:
  """bits_per_image and bits_per_token, averaged over every real held-out example
  (the compression cost of arXiv 2309.15505, Sec. 4)."""

  def __init__(self, stage: Any, *, batch_size: int, seed: int, pred: str = "bits"):
    del batch_size, seed
    self.stage, self.predict = stage, getattr(stage, pred)

  def run(self, state: Any, batches: Iterable[dict[str, jax.Array]]
          ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    total, count = 0.0, 0
    for batch in batches:
      mask = to_host(batch["mask"])
      total += float(np.sum(to_host(self.predict(state, batch))[mask]))
      count += int(mask.sum())
    per_image = total / count
    return {"bits_per_image": per_image,
            "bits_per_token": per_image / self.stage.tokens_per_example(state)}, {}
