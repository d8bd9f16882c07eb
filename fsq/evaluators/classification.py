"""Classification evaluator: per-example accuracies averaged over the held-out split.

The stage provides `classify(state, batch) -> {name: (B,) float32 in [0, 1]}` (jitted; named
by the `pred` option), e.g. {"accuracy": ...}; the first entry decides what counts as wrong.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax
import numpy as np

from fsq.distributed import to_host
from fsq.images import image_grid


class Evaluator:
  """Means of the stage's per-example scores over every real example; image: up to 8
  examples the first score calls wrong."""

  def __init__(self, stage: Any, *, batch_size: int, seed: int, pred: str = "classify"):
    del batch_size, seed
    self.predict = getattr(stage, pred)

  def run(self, state: Any, batches: Iterable[dict[str, jax.Array]]
          ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    sums, count, errors = {}, 0, []
    for batch in batches:
      scores = {k: to_host(v) for k, v in self.predict(state, batch).items()}
      mask = to_host(batch["mask"])
      for k, v in scores.items():
        sums[k] = sums.get(k, 0.0) + float(np.sum(v[mask]))
      count += int(mask.sum())
      if len(errors) < 8:
        wrong = mask & (next(iter(scores.values())) < 1)
        errors.extend(to_host(batch["image"])[wrong][:8 - len(errors)])
    metrics = {k: v / count for k, v in sums.items()}
    return metrics, ({"misclassified": image_grid([np.stack(errors)])} if errors else {})
