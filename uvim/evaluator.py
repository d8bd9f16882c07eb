"""UViM task evaluator: a task's metrics of a stage's predictions, codebook usage, a picture.

The stage provides `task` (a uvim/tasks plug-in), `codebook_size` and the predict method the
`pred` option names: `(state, batch) -> (prediction, (B, g, g) code indices or None)`, e.g.
the oracle's reconstruction (`predict`), its context-only floor (`predict_context_only`) or a
language model's decoded prediction. `pred="baseline"` instead scores the task's trivial
baseline, fitted on `baseline_examples` training examples (no model involved). `show_also`
names more predict methods whose predictions join the picture as rows (e.g. the oracle's
picture: image | target | oracle | context only). `agreement` names a stage method giving
reference codes (B, g, g), e.g. a language model's oracle's: the fraction of the predicted
codes equal to them is `code_agreement`. `reference` (keys of `config.data.eval`, e.g. another
split) makes colourisation's FID compare the predictions with those images instead of the
batches' own: the ColTran FID-5k protocol colourises one 5k block of ImageNet validation and
compares it with a disjoint 5k block (arXiv 2309.15505, Sec. 4.2; UViM).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax
import numpy as np

from fsq import data as data_lib
from fsq.distributed import to_host
from fsq.evaluators import colour, networks
from fsq.evaluators.fid import RunningStatistics, frechet_distance
from fsq.images import image_grid
from fsq.quantizers.usage import CodebookUsage


class Evaluator:
  """The task's metrics over every real held-out example; usage, perplexity (and agreement
  with reference codes) of the codes when the prediction comes with them; for RGB predictions
  (colourisation) with a feature `network`, the FID of the predictions against the real
  images in its feature space and colour-FID (fsq/evaluators/colour.py). Image: rows of up
  to 8 examples: image | target | prediction | the `show_also` predictions."""

  def __init__(self, stage: Any, *, batch_size: int, seed: int, pred: str = "predict",
               network: str = "", weights: str = "", baseline_examples: int = 256,
               show_also: tuple[str, ...] = (), agreement: str = "",
               reference: dict | None = None):
    del seed
    self.task, self.codebook_size = stage.task, stage.codebook_size
    if pred == "baseline":
      source = data_lib.make_source({**stage.config.data.train.to_dict(),
                                     "num_examples": baseline_examples})
      fitted = self.task.baseline_fit(data_lib.eval_batches(source, global_batch_size=batch_size))
      self.predict = lambda state, batch: (self.task.baseline_predict(fitted, batch), None)
    else:
      self.predict = getattr(stage, pred)
    self.show_also = [getattr(stage, name) for name in show_also]
    self.reference_codes = getattr(stage, agreement) if agreement else None
    self.features = ({"fid": networks.fid_feature_fn(network, weights),
                      "colour_fid": colour.histogram_features} if network else {})
    self.reference = None
    if reference and network:
      self.reference = data_lib.make_source({**stage.config.data.eval.to_dict(), **dict(reference)})
    self.batch_size = batch_size

  def run(self, state: Any, batches: Iterable[dict[str, jax.Array]]
          ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    metrics, usage, grid = self.task.metrics(), None, None
    agreed, count = 0.0, 0
    fid_stats = {k: (RunningStatistics(), RunningStatistics()) for k in self.features}
    for batch in batches:
      prediction, indices = self.predict(state, batch)
      host = {k: to_host(v) for k, v in batch.items()}
      prediction = jax.tree.map(to_host, prediction)
      mask = host["mask"]
      metrics.update(prediction, host, mask)
      if indices is not None:
        usage = usage or CodebookUsage(self.codebook_size)
        usage.update(indices, valid=batch["mask"])
        if self.reference_codes is not None and mask.any():
          same = to_host(indices) == to_host(self.reference_codes(state, batch))
          agreed += float(np.sum(same[mask]) / same[0].size)
          count += int(mask.sum())
      if fid_stats and mask.any():
        shown = self.task.show(prediction)[mask]
        for k, features in self.features.items():
          if self.reference is None:
            fid_stats[k][0].update(features(host["image"][mask]))
          fid_stats[k][1].update(features(shown))
      if grid is None:
        n = min(8, len(mask))
        also = [self.task.show(to_host(predict(state, batch)[0]))[:n]
                for predict in self.show_also]
        grid = image_grid([host["image"][:n], self.task.show_target(host)[:n],
                           self.task.show(prediction)[:n], *also])
    result = dict(metrics.result())
    if usage is not None:
      result.update(usage.summary())
    if count:
      result["code_agreement"] = agreed / count
    if fid_stats and self.reference is not None:
      for batch in data_lib.eval_batches(self.reference, global_batch_size=self.batch_size):
        for k, features in self.features.items():
          fid_stats[k][0].update(features(batch["image"][batch["mask"]]))
    for k, (real, predicted) in fid_stats.items():
      result[k] = frechet_distance(*predicted.result(), *real.result())
    return result, {"predictions": grid}
