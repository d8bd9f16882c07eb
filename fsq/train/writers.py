"""Where metrics go: console, WORKDIR/metrics.jsonl, TensorBoard (when TensorFlow is there)."""
from __future__ import annotations

import json
import logging
import os
from typing import Any

import numpy as np


log = logging.getLogger("fsq")

def _tensorboard_writer(workdir: str, start_step: int):
  """clu's TensorBoard writer, or None without TensorFlow (training does not need it); the
  event files already there keep only their events up to `start_step`."""
  try:
    from clu import metric_writers  # Imports TensorFlow.
  except ImportError:
    log.info("TensorFlow/TensorBoard not installed: no TensorBoard event files.")
    return None
  folder = os.path.join(workdir, "tensorboard")
  if os.path.isdir(folder):
    for name in sorted(os.listdir(folder)):
      if name.startswith("events.out.tfevents"):
        _drop_events_after(os.path.join(folder, name), start_step)
  return metric_writers.SummaryWriter(folder)


def _drop_events_after(path: str, step: int) -> None:
  """Rewrites the event file `path` without its events after `step`, and without a record torn
  by a kill; TensorBoard shows every point of every file, so a resumed run re-logging those
  steps would otherwise show two points per step."""
  import tensorflow as tf
  records = []
  try:
    for record in tf.data.TFRecordDataset(path):
      records.append(record.numpy())
  except tf.errors.DataLossError:
    pass  # A torn last record: what was read before it stays.
  kept = [r for r in records if tf.compat.v1.Event.FromString(r).step <= step]
  if len(kept) == len(records) and os.path.getsize(path) == sum(len(r) + 16 for r in records):
    return  # Nothing to drop (16 bytes of framing per TFRecord).
  with tf.io.TFRecordWriter(path + ".tmp") as f:
    for record in kept:
      f.write(record)
  os.replace(path + ".tmp", path)


class MetricWriter:
  """One JSON object per event in metrics.jsonl ({"step": s, "train/loss": ...}).

  On resume from `start_step`, events logged after it by the interrupted run are dropped, from
  metrics.jsonl and the TensorBoard event files: the resumed run logs them again, so both read
  as one uninterrupted run.
  """

  def __init__(self, workdir: str, start_step: int, enabled: bool = True,
               tensorboard: bool = True):
    self.enabled = enabled
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.tb = _tensorboard_writer(workdir, start_step) if enabled and tensorboard else None
    if enabled and os.path.exists(self.path):
      with open(self.path) as f:
        kept = [line for line in f if line.strip() and json.loads(line)["step"] <= start_step]
      with open(self.path, "w") as f:
        f.writelines(kept)

  def scalars(self, step: int, values: dict[str, Any]) -> None:
    if not self.enabled:
      return
    values = {k: float(v) for k, v in values.items()}
    with open(self.path, "a") as f:
      f.write(json.dumps({"step": int(step), **values}) + "\n")
    if self.tb is not None:
      self.tb.write_scalars(step, values)

  def images(self, step: int, images: dict[str, np.ndarray]) -> None:
    """uint8 (H, W, 3) grids: TensorBoard, and PNGs under WORKDIR/images/."""
    if not self.enabled:
      return
    import matplotlib.image
    folder = os.path.join(os.path.dirname(self.path), "images")
    os.makedirs(folder, exist_ok=True)
    for name, image in images.items():
      matplotlib.image.imsave(os.path.join(folder, f"{name.replace('/', '_')}_{step}.png"), image)
    if self.tb is not None:
      self.tb.write_images(step, {k: v[None] for k, v in images.items()})

  def flush(self) -> None:
    if self.tb is not None:
      self.tb.flush()

  def close(self) -> None:
    if self.tb is not None:
      self.tb.close()


def read_metrics(workdir: str) -> list[dict[str, float]]:
  """All events of a run's metrics.jsonl."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f if line.strip()]


def evaluation_events(workdir: str) -> list[dict[str, float]]:
  """The events of a run's metrics.jsonl that hold eval/ metrics ([] without the file)."""
  if not os.path.exists(os.path.join(workdir, "metrics.jsonl")):
    return []
  return [e for e in read_metrics(workdir) if any(k.startswith("eval/") for k in e)]


def final_evaluation(workdir: str) -> dict[str, float] | None:
  """Every metric of a run's last evaluated step (None before its first evaluation)."""
  events = evaluation_events(workdir)
  if not events:
    return None
  return {k: v for e in events if e["step"] == events[-1]["step"] for k, v in e.items()}


def has_evaluation(workdir: str, step: int, name: str = "") -> bool:
  """Whether the run's metrics.jsonl holds eval/ metrics (of evaluator `name`, when given) at
  `step`; False without the file."""
  prefix = f"eval/{name}/" if name else "eval/"
  return any(e["step"] == step and any(k.startswith(prefix) for k in e)
             for e in evaluation_events(workdir))


def evaluated_runs(root: str) -> list[tuple[str, str, dict, dict[str, float]]]:
  """(name, workdir, config.json, final_evaluation) of every run directly below `root` that has
  evaluated, by name."""
  runs = []
  for name in sorted(os.listdir(root)):
    workdir = os.path.join(root, name)
    final = final_evaluation(workdir)
    if final is not None:
      with open(os.path.join(workdir, "config.json")) as f:
        runs.append((name, workdir, json.load(f), final))
  return runs


def with_earlier(rows: list[dict], path: str, key: str) -> list[dict]:
  """`rows` and the rows of the JSON list at `path` (an earlier collection's, if it exists)
  whose `key` is not among theirs: a study run in pieces on machines that do not keep their
  runs collects each piece into the same file and keeps the others' results."""
  if not os.path.exists(path):
    return list(rows)
  with open(path) as f:
    earlier = json.load(f)
  names = {row[key] for row in rows}
  return list(rows) + [row for row in earlier if row[key] not in names]
