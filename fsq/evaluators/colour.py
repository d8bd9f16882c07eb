"""Colour measures: histogram features (the feature space of colour-FID) and detail energy.

The scenes network is trained to name the largest object's shape, so its features are nearly
blind to colour (fsq/studies/scenes_fid.py: desaturating half of each image moves scenes-FID by
1.5, a 1 px blur by 7.9). Colourisation is judged by FID because the right colour of an object
is often not in the image (arXiv 2309.15505, Sec. 4.2; ColTran): a plausible colouring should
score well, a muted average badly. These features keep only colour: each image's fractions of
pixels in a grey bin (saturation below GREY) and in HUE_BINS hue sectors x SATURATION_BINS
saturation bands above it. Brightness is left out: colourisation is given it. The Fréchet
distance between two sets of these (fsq.evaluators.fid) compares how colours are distributed
over images, not where they sit within one.

Detail energy splits an image's fine structure into brightness and colour: the mean squared
Laplacian of its BT.601 luma and of its two chroma channels. Blur lowers both; false-colour
fringes or stripes (colour changing where brightness does not) raise chroma's alone. Generated
images' energies over the real images' (luma_detail, chroma_detail) show how much of each a
model keeps, and their quotient (false_colour: 1 for real images' balance) how much more
colour detail than brightness detail it makes.
"""
from __future__ import annotations

import numpy as np

from fsq.data.image_ops import LUMA_WEIGHTS

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


def detail_energy(images_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """uint8 RGB (N, H, W, 3) -> (luma, chroma) (N,) each: the mean squared 4-neighbour
  Laplacian over interior pixels of BT.601's Y, and of its Cb and Cr together, on [0, 1]."""
  rgb = np.asarray(images_nhwc, np.float32) / 255.0
  y = rgb @ LUMA_WEIGHTS
  cb = 0.5 * (rgb[..., 2] - y) / (1.0 - LUMA_WEIGHTS[2])
  cr = 0.5 * (rgb[..., 0] - y) / (1.0 - LUMA_WEIGHTS[0])
  ycc = np.stack([y, cb, cr], axis=-1)
  laplacian = (ycc[:, :-2, 1:-1] + ycc[:, 2:, 1:-1] + ycc[:, 1:-1, :-2] + ycc[:, 1:-1, 2:]
               - 4.0 * ycc[:, 1:-1, 1:-1])
  energy = np.mean(laplacian ** 2, axis=(1, 2))  # (N, 3)
  return energy[:, 0], energy[:, 1:].sum(axis=-1)


class DetailEnergy:
  """Running means of detail_energy over the images it is given."""

  def __init__(self):
    self.luma, self.chroma, self.count = 0.0, 0.0, 0

  def update(self, images_nhwc: np.ndarray) -> None:
    luma, chroma = detail_energy(images_nhwc)
    self.luma += float(luma.sum())
    self.chroma += float(chroma.sum())
    self.count += len(luma)

  def relative_to(self, real: DetailEnergy) -> dict[str, float]:
    """luma_detail, chroma_detail (these images' mean energies over `real`'s) and
    false_colour (chroma_detail / luma_detail); a ratio whose denominator is 0 (flat or grey
    real images, flat generated ones) is left out."""
    out = {}
    if real.luma > 0:
      out["luma_detail"] = (self.luma / self.count) / (real.luma / real.count)
    if real.chroma > 0:
      out["chroma_detail"] = (self.chroma / self.count) / (real.chroma / real.count)
    if out.get("luma_detail", 0.0) > 0 and "chroma_detail" in out:
      out["false_colour"] = out["chroma_detail"] / out["luma_detail"]
    return out
