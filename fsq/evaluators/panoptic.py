"""Panoptic quality (Kirillov et al. 2019) with the COCO panopticapi rules, over label maps.

Predictions and ground truth are (H, W, 2) integer maps, channel 0 the semantic class and
channel 1 the instance id (UViM's two-channel output). A segment is a (class, instance)
pair for thing classes and a whole class for stuff classes (their instance ids are
ignored). Pixels of class `void_label` belong to no segment.

Per image, as panopticapi's `pq_compute`:
- a predicted and a ground-truth segment of the same class match when IoU > 0.5, where the
  union leaves out the predicted pixels that are void in the ground truth;
- unmatched ground-truth segments are false negatives;
- unmatched predicted segments are false positives, unless more than half of their pixels
  are void, or a crowd region of their class, in the ground truth;
- crowd regions (COCO's iscrowd) are neither matched nor false negatives. As in fsq/data, a
  ground-truth thing pixel with instance id `crowd_instance` (default 0) is crowd.
Over the data set, per class: PQ = sum(IoU of matches) / (TP + FP/2 + FN/2) = SQ x RQ;
the reported numbers average over the classes that occurred (TP + FP + FN > 0).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np

_VOID = -1


def _segment_ids(panoptic_hw2: np.ndarray, thing_classes: frozenset[int], void_label: int,
                 max_instances: int) -> np.ndarray:
  """One int64 id per pixel: class * max_instances + instance (things) or + 0 (stuff)."""
  semantic = panoptic_hw2[..., 0].astype(np.int64)
  instance = panoptic_hw2[..., 1].astype(np.int64)
  is_thing = np.isin(semantic, list(thing_classes))
  ids = semantic * max_instances + np.where(is_thing, instance, 0)
  return np.where(semantic == void_label, _VOID, ids)


def _pixel_counts(ids_hw: np.ndarray) -> dict[int, int]:
  values, counts = np.unique(ids_hw, return_counts=True)
  return dict(zip(values.tolist(), counts.tolist()))


class PanopticQuality:
  """Accumulates PQ statistics over images: `update(pred, gt)` per image, then `result()`."""

  def __init__(self, thing_classes: Iterable[int], void_label: int = 0,
               crowd_instance: int | None = 0):
    self.thing_classes = frozenset(int(c) for c in thing_classes)
    self.void_label = void_label
    self.crowd_instance = crowd_instance  # None: every ground-truth instance id is a segment.
    # Per class: [sum of matched IoUs, TP, FP, FN].
    self.stats: dict[int, np.ndarray] = defaultdict(lambda: np.zeros(4))

  def update(self, pred_hw2, gt_hw2) -> None:
    """Adds one image, or a batch of (B, H, W, 2) maps."""
    pred, gt = np.asarray(pred_hw2), np.asarray(gt_hw2)
    if pred.shape != gt.shape or pred.ndim not in (3, 4) or pred.shape[-1] != 2:
      raise ValueError(f"pred and gt must both be (H, W, 2) or (B, H, W, 2) maps of "
                       f"(class, instance); got {pred.shape} and {gt.shape}.")
    for m in (pred, gt):
      if np.any((m[..., 0] < 0) & (m[..., 0] != self.void_label)) or np.any(m[..., 1] < 0):
        raise ValueError("class and instance ids must be non-negative (void_label excepted).")
    for p, g in zip(pred.reshape((-1,) + pred.shape[-3:]), gt.reshape((-1,) + gt.shape[-3:])):
      self._update_image(p, g)

  def _update_image(self, pred_hw2: np.ndarray, gt_hw2: np.ndarray) -> None:
    m = int(max(pred_hw2[..., 1].max(), gt_hw2[..., 1].max())) + 1  # id = class * m + instance
    pred_ids, gt_ids = (_segment_ids(x, self.thing_classes, self.void_label, m)
                        for x in (pred_hw2, gt_hw2))
    pred_area, gt_area = _pixel_counts(pred_ids), _pixel_counts(gt_ids)
    pairs, counts = np.unique(np.stack([gt_ids.ravel(), pred_ids.ravel()]), axis=1,
                              return_counts=True)
    overlap = dict(zip(map(tuple, pairs.T.tolist()), counts.tolist()))  # (gt, pred) -> pixels
    crowd = {g for g in gt_area if g != _VOID and g // m in self.thing_classes
             and g % m == self.crowd_instance}

    matched_pred, matched_gt = set(), set()
    for (g, p), intersection in overlap.items():
      if g == _VOID or p == _VOID or g in crowd or g // m != p // m:
        continue
      union = pred_area[p] + gt_area[g] - intersection - overlap.get((_VOID, p), 0)
      iou = intersection / union
      if iou > 0.5:  # Unique: two segments cannot both overlap another by more than half.
        self.stats[g // m] += (iou, 1, 0, 0)
        matched_pred.add(p)
        matched_gt.add(g)
    for g in gt_area.keys() - matched_gt - crowd - {_VOID}:
      self.stats[g // m][3] += 1
    for p in pred_area.keys() - matched_pred - {_VOID}:
      ignored = overlap.get((_VOID, p), 0) + sum(
          overlap.get((g, p), 0) for g in crowd if g // m == p // m)
      if ignored / pred_area[p] <= 0.5:
        self.stats[p // m][2] += 1

  def result(self) -> dict[str, float]:
    """PQ, SQ, RQ (in [0, 1]) over all classes, over thing and over stuff classes."""
    out = {}
    for suffix, keep in (("", lambda c: True), ("_things", lambda c: c in self.thing_classes),
                         ("_stuff", lambda c: c not in self.thing_classes)):
      per_class = np.array([s for c, s in self.stats.items() if keep(c) and s[1:].sum() > 0])
      if not len(per_class):
        out.update({f"{m}{suffix}": float("nan") for m in ("pq", "sq", "rq")})
        continue
      iou, tp, fp, fn = per_class.T
      denominator = tp + 0.5 * fp + 0.5 * fn
      out[f"pq{suffix}"] = float(np.mean(iou / denominator))
      out[f"sq{suffix}"] = float(np.mean(np.where(tp > 0, iou / np.maximum(tp, 1), 0.0)))
      out[f"rq{suffix}"] = float(np.mean(tp / denominator))
    return out
