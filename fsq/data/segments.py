"""Canonical panoptic segment ids: UViM's learnable numbering of every segment of an image."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def canonical_segments(semantic_hw: np.ndarray, instance_hw: np.ndarray,
                       is_thing: Sequence[bool], void_label: int = 0) -> np.ndarray:
  """(H, W) int32 ids 1..N, one per segment, 0 for void pixels.

  A segment is a stuff class (its instance ids ignored) or a (thing class, instance) pair.
  The ids follow the segments' centres of mass row by row (then column), so they depend on
  the image alone and not on the order of the input's instance ids: UViM's canonical order
  (arXiv 2205.10337, Sec. 4.2), which makes the ids learnable.
  """
  semantic = np.asarray(semantic_hw, np.int64)
  thing = np.asarray(is_thing, bool)[semantic]
  keys = semantic * (int(np.max(instance_hw, initial=0)) + 1) + np.where(thing, instance_hw, 0)
  keys = np.where(semantic == void_label, -1, keys)
  rows, cols = np.indices(keys.shape)
  segments = np.zeros(keys.shape, np.int32)
  present = [k for k in np.unique(keys) if k >= 0]
  centres = [(rows[keys == k].mean(), cols[keys == k].mean(), k) for k in present]
  for new_id, (_, _, k) in enumerate(sorted(centres), start=1):
    segments[keys == k] = new_id
  return segments
