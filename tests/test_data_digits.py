"""The sklearn digits source: shapes, labels, a fixed disjoint split."""
import numpy as np
import pytest

from fsq import data
from fsq.data import digits


def test_splits_partition_the_1797_digits_deterministically():
  train, validation = digits.Digits("train"), digits.Digits("validation")
  assert len(train) == 1500 and len(validation) == digits.NUM_VALIDATION == 297
  images, _ = digits._load()
  assert np.unique(images.reshape(len(images), -1), axis=0).shape[0] > 1700  # Rows are scans, not copies.
  np.testing.assert_array_equal(np.concatenate([validation.images, train.images]), images)
  np.testing.assert_array_equal(digits.Digits("validation").labels, validation.labels)
  for split in (train, validation):
    assert set(split.labels.tolist()) == set(range(10))


@pytest.mark.parametrize("image_size", [8, 32])
def test_examples_are_upsampled_rgb_digits(image_size):
  source = data.make_source({"name": "digits", "split": "train", "image_size": image_size})
  example = source[3]
  assert example["image"].shape == (image_size, image_size, 3) and example["image"].dtype == np.uint8
  assert example["image"].max() > 200 and example["image"].min() < 30  # White ink on black.
  np.testing.assert_array_equal(example["image"][..., 0], example["image"][..., 1])
  assert example["label"].dtype == np.int32 and example["label"] == source.labels[3]
  if image_size == 8:
    np.testing.assert_allclose(example["image"][..., 0], source.images[3] / 16 * 255, atol=1)


def test_bad_split_fails():
  with pytest.raises(ValueError, match="split"):
    digits.Digits("test")
