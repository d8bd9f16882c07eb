"""The paper's datasets through TFDS random-access data sources.

`tfds.data_source` reads array_record files by index and decodes with PIL: no TensorFlow at read time, and
tensorflow_datasets itself is imported only when one of these sources is built. Prepare a dataset once with
`tfds build <name> --data_dir=<dir> --file_format=array_record` (see docs/data.md).
"""
from typing import Optional

import numpy as np
from PIL import Image

from fsq.data import image_ops
from fsq.data.source import Source

# TFDS orders the 133 COCO panoptic categories by COCO category id, which puts the 80 thing classes first.
COCO_NUM_THINGS = 80


class MissingDatasetError(FileNotFoundError):
  """A TFDS dataset is not prepared (as array_record) under the data_dir."""


def open_tfds(name: str, split: str, data_dir: Optional[str]):
  """`tfds.data_source(name, split)`, never downloading; a clear MissingDatasetError when it is not there."""
  import tensorflow_datasets as tfds  # Here, not at the top: `import fsq.data` stays free of TFDS.
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  except (NotImplementedError, FileNotFoundError) as error:
    builder = tfds.builder(name, data_dir=data_dir)
    where = f"data_dir={data_dir!r}" + (" (the TFDS default: $TFDS_DATA_DIR or ~/tensorflow_datasets)"
                                        if data_dir is None else "")
    command = f"tfds build {name} --data_dir=<data_dir> --file_format=array_record"
    if builder.is_prepared():
      raise MissingDatasetError(
          f"TFDS dataset {name!r} is prepared at {builder.data_dir} ({where}) but not as array_record, which random "
          f"access needs: rebuild it with `{command}` or convert it with `tfds convert_format`.") from error
    raise MissingDatasetError(
        f"TFDS dataset {name!r} (version {builder.version}) is not prepared in {where}: expected "
        f"{builder.data_dir}. Prepare it with `{command}` (imagenet2012 also needs --manual_dir=<the downloaded "
        f"tars>), or set `data_dir` to a directory that holds it.") from error


class _TfdsSource(Source):
  """A split of a TFDS dataset; `get` turns the decoded record into fixed-shape fields."""

  def __init__(self, name: str, split: str, image_size: int, data_dir: Optional[str] = None, augment: bool = True):
    self.name, self.split, self.image_size, self.augment = name, split, image_size, augment
    self.records = open_tfds(name, split, data_dir)

  def __len__(self):
    return len(self.records)

  def _record(self, index, rng):
    """The decoded record, and the augmentation generator (None for the deterministic view)."""
    return self.records[self._check_index(index)], (rng if self.augment else None)


class ImageClassification(_TfdsSource):
  """imagenet2012, imagenette: image and label.

  The MaskGIT/VQGAN recipe: the largest centred square (evaluation), or the largest square at a random offset plus a
  random left-right flip (training), resized to image_size with antialiased bicubic.
  """

  def __init__(self, name: str, split: str, image_size: int, data_dir: Optional[str] = None, augment: bool = True):
    super().__init__(name, split, image_size, data_dir, augment)
    self.num_classes = self.records.dataset_info.features["label"].num_classes

  def get(self, index, rng=None):
    record, rng = self._record(index, rng)
    rows, columns = image_ops.square_crop(*record["image"].shape[:2], rng)
    fields = {"image": image_ops.resize(record["image"][rows, columns], self.image_size, Image.Resampling.BICUBIC)}
    if rng is not None:
      fields = image_ops.random_flip(fields, rng)
    return {**fields, "label": np.int32(record["label"])}


class NyuDepth(_TfdsSource):
  """nyu_depth_v2: image and depth (metres, float32; 0 where the sensor has no reading).

  As UViM: the full 640x480 frame resized to a square (bicubic image, nearest-neighbour depth), with a random
  left-right flip for training.
  """

  def get(self, index, rng=None):
    record, rng = self._record(index, rng)
    fields = {
        "image": image_ops.resize(record["image"], self.image_size, Image.Resampling.BICUBIC),
        "depth": image_ops.resize(record["depth"].astype(np.float32), self.image_size, Image.Resampling.NEAREST),
    }
    return image_ops.random_flip(fields, rng) if rng is not None else fields


class CocoPanoptic(_TfdsSource):
  """coco/2017_panoptic: image, semantic (0 void, 1 + TFDS label) and instance (1..n: non-crowd things, else 0).

  Image and maps are resized to a square (as UViM), the maps nearest-neighbour, with a random flip for training.
  """

  def __init__(self, name: str, split: str, image_size: int, data_dir: Optional[str] = None, augment: bool = True):
    super().__init__(name, split, image_size, data_dir, augment)
    labels = self.records.dataset_info.features["panoptic_objects"]["label"]
    self.semantic_names = ("void",) + tuple(labels.names)
    self.is_thing = (False,) + (True,) * COCO_NUM_THINGS + (False,) * (labels.num_classes - COCO_NUM_THINGS)

  def get(self, index, rng=None):
    record, rng = self._record(index, rng)
    rgb_ids = record["panoptic_image"].astype(np.int32)
    segment_map = rgb_ids[..., 0] + 256 * rgb_ids[..., 1] + 256**2 * rgb_ids[..., 2]  # The COCO panoptic encoding.
    segment_map = image_ops.resize(segment_map, self.image_size, Image.Resampling.NEAREST)

    segments = record["panoptic_objects"]
    labels = segments["label"].astype(np.int32)
    is_instance = (labels < COCO_NUM_THINGS) & ~segments["is_crowd"]
    # Per segment, plus a leading row for pixels whose id names no segment (0 is COCO's "unlabelled").
    semantic_of = np.concatenate([[0], labels + 1]).astype(np.int32)
    instance_of = np.concatenate([[0], np.where(is_instance, np.cumsum(is_instance), 0)]).astype(np.int32)
    row_of_id = {int(segment_id): row for row, segment_id in enumerate(segments["id"], start=1)}
    ids, pixel_ids = np.unique(segment_map, return_inverse=True)
    row = np.array([row_of_id.get(int(i), 0) for i in ids], np.int32)[pixel_ids.reshape(segment_map.shape)]

    fields = {
        "image": image_ops.resize(record["image"], self.image_size, Image.Resampling.BICUBIC),
        "semantic": semantic_of[row],
        "instance": instance_of[row],
    }
    return image_ops.random_flip(fields, rng) if rng is not None else fields
