"""Numpy/PIL image operations shared by the sources: crops, resizing, flips, greyscale."""
from typing import Optional

import numpy as np
from PIL import Image

# ITU-R BT.601 luma, the weights of tf.image.rgb_to_grayscale.
LUMA_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], np.float32)


def rgb_to_grey(rgb: np.ndarray) -> np.ndarray:
  """Greyscale of RGB images (..., 3), repeated over the 3 channels and in the input's dtype (colourisation input)."""
  luma = rgb.astype(np.float32) @ LUMA_WEIGHTS
  if np.issubdtype(rgb.dtype, np.integer):
    luma = np.round(luma)
  return np.repeat(luma[..., None], 3, axis=-1).astype(rgb.dtype)


def resize(array: np.ndarray, size: int, resample: Image.Resampling) -> np.ndarray:
  """Resizes a uint8 (H, W, 3) image, or a float32/int32 (H, W) map, to (size, size) with PIL (antialiased)."""
  if array.ndim == 2 and array.dtype not in (np.int32, np.float32):
    raise TypeError(f"2-D maps must be int32 or float32 for PIL, got {array.dtype}")
  return np.asarray(Image.fromarray(np.ascontiguousarray(array)).resize((size, size), resample))


def square_crop(height: int, width: int, rng: Optional[np.random.Generator] = None) -> tuple[slice, slice]:
  """The largest square window: centred, or at a uniformly random offset along the longer side when rng is given."""
  side = min(height, width)
  top, left = (height - side) // 2, (width - side) // 2
  if rng is not None:
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
  return slice(top, top + side), slice(left, left + side)


def inception_box(height: int, width: int, rng: np.random.Generator, *, area=(0.05, 1.0),
                  aspect=(0.75, 1.33), attempts: int = 100) -> tuple[slice, slice]:
  """A random window covering a uniform `area` fraction of the image with a uniform `aspect`
  (width / height) ratio, at a uniform offset; the whole image if `attempts` draws do not fit.

  The "inception crop" of UViM's training views (big_vision's inception_box, after
  tf.image.sample_distorted_bounding_box).
  """
  for _ in range(attempts):
    target = rng.uniform(*area) * height * width
    ratio = rng.uniform(*aspect)
    rows, columns = int(round(np.sqrt(target / ratio))), int(round(np.sqrt(target * ratio)))
    if 0 < rows <= height and 0 < columns <= width:
      top = int(rng.integers(0, height - rows + 1))
      left = int(rng.integers(0, width - columns + 1))
      return slice(top, top + rows), slice(left, left + columns)
  return slice(0, height), slice(0, width)


def random_flip(arrays: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
  """Flips all (H, W, ...) fields left-right together with probability 1/2."""
  if rng.random() < 0.5:
    return {key: np.ascontiguousarray(value[:, ::-1]) for key, value in arrays.items()}
  return arrays


def inception_view(arrays: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
  """UViM's training view of (H, W, ...) fields that must stay aligned (an image and its label maps): a random
  left-right flip, then one inception_box crop, both applied to every field."""
  arrays = random_flip(arrays, rng)
  rows, columns = inception_box(*next(iter(arrays.values())).shape[:2], rng)
  return {key: value[rows, columns] for key, value in arrays.items()}
