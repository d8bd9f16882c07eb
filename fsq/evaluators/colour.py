"""Colour-histogram features: the feature space of colour-FID, a colour-sensitive FID.

The scenes network is trained to name the largest object's shape, so its features are nearly
blind to colour (fsq/studies/scenes_fid.py: desaturating half of each image moves scenes-FID by
1.5, a 1 px blur by 7.9). Colourisation is judged by FID because the right colour of an object
is often not in the image (arXiv 2309.15505, Sec. 4.2; ColTran): a plausible colouring should
score well, a muted average badly. These features keep only colour: each image's fractions of
pixels in a grey bin (saturation below GREY) and in HUE_BINS hue sectors x SATURATION_BINS
saturation bands above it. Brightness is left out: colourisation is given it. The Fréchet
distance between two sets of these (fsq.evaluators.fid) compares how colours are distributed
over images, not where they sit within one.
"""
from __future__ import annotations

import numpy as np

HUE_BINS, SATURATION_BINS, GREY = 12, 3, 0.1
DIM = 1 + HUE_BINS * SATURATION_BINS


def hue_saturation(images_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """uint8 RGB -> HSV hue in [0, 1) and saturation in [0, 1], per pixel."""
  rgb = np.asarray(images_nhwc, np.float32) / 255.0
  r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
  high, low = rgb.max(axis=-1), rgb.min(axis=-1)
  chroma = high - low
  safe = np.maximum(chroma, 1e-12)
  hue = np.where(high == r, ((g - b) / safe) % 6.0,
                 np.where(high == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)) / 6.0
  saturation = np.where(high > 0, chroma / np.maximum(high, 1e-12), 0.0)
  return np.where(chroma > 0, hue, 0.0) % 1.0, saturation


def histogram_features(images_nhwc: np.ndarray) -> np.ndarray:
  """(N, H, W, 3) uint8 -> (N, DIM) float32 pixel fractions: [grey, (hue, saturation) bins]."""
  hue, saturation = hue_saturation(images_nhwc)
  n = hue.shape[0]
  hue_bin = np.minimum((hue * HUE_BINS).astype(np.int64), HUE_BINS - 1)
  band = (saturation - GREY) / (1.0 - GREY) * SATURATION_BINS
  band = np.clip(band.astype(np.int64), 0, SATURATION_BINS - 1)
  bins = np.where(saturation < GREY, 0, 1 + hue_bin * SATURATION_BINS + band).reshape(n, -1)
  counts = np.stack([np.bincount(row, minlength=DIM) for row in bins])
  return (counts / bins.shape[1]).astype(np.float32)
