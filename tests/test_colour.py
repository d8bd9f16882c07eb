"""Colour-FID's features (fsq/evaluators/colour.py): HSV against colorsys, bins, and what the
distance ranks on the scenes."""
import colorsys

import numpy as np

from fsq.data.image_ops import LUMA_WEIGHTS
from fsq.evaluators import colour
from fsq.evaluators.fid import feature_statistics, frechet_distance
from fsq.studies.scenes_fid import DEGRADATIONS, scenes


def test_hue_and_saturation_match_colorsys():
  pixels = np.random.default_rng(0).integers(0, 256, (1, 40, 40, 3), dtype=np.uint8)
  hue, saturation = colour.hue_saturation(pixels)
  expected = np.array([colorsys.rgb_to_hsv(*(p / 255.0))[:2] for p in pixels.reshape(-1, 3)])
  np.testing.assert_allclose(saturation.ravel(), expected[:, 1], atol=1e-6)
  # Hue is circular: compare on the circle.
  np.testing.assert_allclose(np.cos(2 * np.pi * hue.ravel()), np.cos(2 * np.pi * expected[:, 0]),
                             atol=1e-5)
  np.testing.assert_allclose(np.sin(2 * np.pi * hue.ravel()), np.sin(2 * np.pi * expected[:, 0]),
                             atol=1e-5)


def test_bins():
  images = np.zeros((3, 2, 2, 3), np.uint8)
  images[0] = 128                   # grey
  images[1] = (255, 0, 0)           # red: hue sector 0, most saturated band
  images[2, 0] = (0, 0, 255)        # half blue (hue 2/3: sector 8), half black (grey bin)
  f = colour.histogram_features(images)
  assert f.shape == (3, colour.DIM)
  np.testing.assert_allclose(f.sum(axis=1), 1.0)
  assert f[0, 0] == 1.0
  assert f[1, colour.SATURATION_BINS] == 1.0  # 1 + sector 0 * bands + band (bands - 1).
  assert f[2, 0] == 0.5 and f[2, 1 + 8 * colour.SATURATION_BINS + colour.SATURATION_BINS - 1] == 0.5


def _fid(x, y):
  return frechet_distance(*feature_statistics([colour.histogram_features(x)]),
                          *feature_statistics([colour.histogram_features(y)]))


def test_colour_fid_sees_colour_not_placement():
  """Disjoint real scenes score near zero; the same scenes with every hue turned by a random
  angle per image (plausible, wrong colours) nearly as well; desaturated halfway far worse,
  greyscale worst."""
  real, other = scenes("validation", 512), scenes("train", 512)
  grey = np.repeat((real.astype(np.float32) @ np.asarray(LUMA_WEIGHTS))[..., None], 3, -1)
  half = DEGRADATIONS["half desaturated"](real).round().astype(np.uint8)
  from matplotlib.colors import hsv_to_rgb, rgb_to_hsv
  hsv = rgb_to_hsv(real / 255.0)
  hsv[..., 0] = (hsv[..., 0] + np.random.default_rng(0).uniform(size=(len(real), 1, 1))) % 1.0
  turned = (hsv_to_rgb(hsv) * 255).round().astype(np.uint8)
  scores = [_fid(x, other) for x in (real, turned, half, grey.round().astype(np.uint8))]
  assert scores[0] < 0.05 and scores[1] < 3 * max(scores[0], 0.01)
  assert scores[2] > 5 * scores[1] and scores[3] > 5 * scores[2], scores


def test_detail_energy_tells_false_colour_from_blur():
  """Against the scenes themselves: a blur keeps less of both kinds of detail and about their
  balance; colour stripes of constant brightness (red-blue, as the 8 x 8 tokenizer's) raise
  chroma's alone; greyscale has no chroma detail."""
  from scipy import ndimage
  real = scenes("validation", 128)
  blurred = ndimage.gaussian_filter(real.astype(np.float32), (0, 1, 1, 0)).round()
  stripes = np.zeros(real.shape, np.float32)
  stripes[:, :, ::2] = [40.0, 0.0, -40.0 * LUMA_WEIGHTS[0] / LUMA_WEIGHTS[2]]  # Luma-neutral.
  striped = np.clip(real + stripes - stripes.mean(axis=2, keepdims=True), 0, 255).round()
  grey = np.repeat((real.astype(np.float32) @ LUMA_WEIGHTS)[..., None], 3, -1).round()
  reference = colour.DetailEnergy()
  reference.update(real)

  def relative(images):
    energy = colour.DetailEnergy()
    energy.update(images.astype(np.uint8))
    return energy.relative_to(reference)

  assert relative(real) == {"luma_detail": 1.0, "chroma_detail": 1.0, "false_colour": 1.0}
  blur = relative(blurred)
  assert blur["luma_detail"] < 0.5 and blur["chroma_detail"] < 0.5
  assert 0.5 < blur["false_colour"] < 2.0, blur
  stripe = relative(striped)
  assert stripe["false_colour"] > 10.0 and abs(stripe["luma_detail"] - 1.0) < 0.2, stripe
  assert relative(grey)["chroma_detail"] < 0.01
  flat = colour.DetailEnergy()
  flat.update(np.full((2, 8, 8, 3), 128, np.uint8))
  assert reference.relative_to(flat) == {} and set(flat.relative_to(reference)) == {
      "luma_detail", "chroma_detail"}  # Grey or flat data: no ratio by zero.
