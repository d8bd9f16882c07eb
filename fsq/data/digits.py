"""scikit-learn's 8x8 handwritten digits (1,797 real scans shipped inside the package), upsampled to RGB images."""
import functools

import numpy as np
from PIL import Image

from fsq.data import image_ops
from fsq.data.source import Source

NUM_VALIDATION = 297  # The rest, 1,500 digits, is the train split.


@functools.lru_cache(maxsize=1)
def _load():
  """Digit images (1797, 8, 8) float32 in [0, 16] and labels, in a fixed shuffled order (seed 0)."""
  from sklearn import datasets  # Here, not at the top: a slow import, needed only by this source.
  digits = datasets.load_digits()
  order = np.random.default_rng(0).permutation(len(digits.target))
  return digits.images[order].astype(np.float32), digits.target[order].astype(np.int32)


class Digits(Source):
  """Split 'validation' is the first NUM_VALIDATION digits of the fixed shuffle, 'train' the rest."""

  num_classes = 10

  def __init__(self, split: str = "train", image_size: int = 32):
    if split not in ("train", "validation"):
      raise ValueError(f"digits split must be 'train' or 'validation', got {split!r}")
    images, labels = _load()
    rows = slice(0, NUM_VALIDATION) if split == "validation" else slice(NUM_VALIDATION, None)
    self.images, self.labels = images[rows], labels[rows]
    self.image_size = image_size

  def __len__(self):
    return len(self.labels)

  def get(self, index, rng=None):
    del rng  # No augmentation.
    index = self._check_index(index)
    ink = image_ops.resize(self.images[index] / 16.0, self.image_size, Image.Resampling.BICUBIC)
    grey = np.round(np.clip(ink, 0.0, 1.0) * 255).astype(np.uint8)
    return {"image": np.repeat(grey[..., None], 3, axis=-1), "label": self.labels[index]}
