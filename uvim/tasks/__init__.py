"""UViM task plug-ins (big_vision style): what the oracle embeds and predicts, and how to score it.

A task has `outputs` (oracle head name -> channels; `targets(batch)` has the same keys),
`targets(batch)` and `context(batch)` (the oracle's inputs, jax-traceable), `loss(outputs,
batch) -> (per-example loss (B,), per-example extras)`, `predict(outputs)` (in the task's
units), `metrics()` (an accumulator: update(prediction, batch, mask), result()), `show` and
`show_target` (uint8 pictures), and a trivial baseline: `baseline_fit(batches)` and
`baseline_predict(fitted, batch)`. Batches carry the fields of fsq/data (docs/data.md).
"""
from __future__ import annotations

from typing import Any

from uvim.tasks.colorization import Colorization
from uvim.tasks.depth import Depth
from uvim.tasks.panoptic import Panoptic

TASKS = {"depth": Depth, "colorization": Colorization, "panoptic": Panoptic}


def make_task(name: str, **kwargs: Any):
  if name not in TASKS:
    raise ValueError(f"unknown UViM task {name!r}; choose one of {', '.join(TASKS)}.")
  return TASKS[name](**kwargs)
