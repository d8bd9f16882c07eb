"""The paper's datasets through TFDS random-access data sources.

`tfds.data_source` reads array_record files by index and decodes with PIL: no TensorFlow at read time, and
tensorflow_datasets itself is imported only when one of these sources is built. Prepare a dataset once with
`tfds build <name> --data_dir=<dir> --file_format=array_record` (see docs/data.md).
"""
from typing import Optional

import numpy as np
from PIL import Image

from fsq.data import image_ops
from fsq.data.segments import canonical_segments
from fsq.data.source import Source

# TFDS orders the 133 COCO panoptic categories by COCO category id, which puts the 80 thing classes first.
COCO_NUM_THINGS = 80
# The standard NYU Depth v2 evaluation crop of the 480x640 frames (Eigen et al., 2014; the crop of BTS, AdaBins and
# the Monocular-Depth-Estimation-Toolbox that UViM's evaluator cites): rows 45:471, columns 41:601. big_vision's
# nyu_eval_crop states these rows in a comment but slices from row 54 (rows 54:480); we keep the standard 45.
EIGEN_CROP = (slice(45, 471), slice(41, 601))


class MissingDatasetError(FileNotFoundError):
  """A TFDS dataset is not prepared (as array_record) under the data_dir."""


def open_tfds(name: str, split: str, data_dir: Optional[str]):
  """`tfds.data_source(name, split)`, never downloading; a clear MissingDatasetError when it is not there."""
  import tensorflow_datasets as tfds  # Here, not at the top: `import fsq.data` stays free of TFDS.
  # A dataset that is not there: without a data_dir, TFDS opens it and fails on its empty splits (a KeyError).
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  except (NotImplementedError, FileNotFoundError, KeyError) as error:
    builder = tfds.builder(name, data_dir=data_dir)
    where = f"data_dir={data_dir!r}" + (" (the TFDS default: $TFDS_DATA_DIR or ~/tensorflow_datasets)"
                                        if data_dir is None else "")
    command = f"tfds build {name} --data_dir=<data_dir> --file_format=array_record"
    if builder.is_prepared():
      if isinstance(error, KeyError):
        raise
      raise MissingDatasetError(
          f"TFDS dataset {name!r} is prepared at {builder.data_dir} ({where}) but not as array_record, which random "
          f"access needs: rebuild it with `{command}` or convert it with `tfds convert_format`.") from error
    raise MissingDatasetError(
        f"TFDS dataset {name!r} (version {builder.version}) is not prepared in {where}: expected "
        f"{builder.data_dir}. Prepare it with `{command}` (imagenet2012 also needs --manual_dir=<the downloaded "
        f"tars>), or set `data_dir` to a directory that holds it.") from error


class _TfdsSource(Source):
  """A split of a TFDS dataset, or its first `num_examples` records; `get` turns the decoded record into fixed-shape
  fields."""

  def __init__(self, name: str, split: str, image_size: int, data_dir: Optional[str] = None, augment: bool = True,
               num_examples: Optional[int] = None):
    self.name, self.split, self.image_size, self.augment = name, split, image_size, augment
    self.records = open_tfds(name, split, data_dir)
    self.num_examples = len(self.records) if num_examples is None else min(num_examples, len(self.records))

  def __len__(self):
    return self.num_examples

  def _record(self, index, rng):
    """The decoded record, and the augmentation generator (None for the deterministic view)."""
    return self.records[self._check_index(index)], (rng if self.augment else None)


class ImageClassification(_TfdsSource):
  """imagenet2012, imagenette: image and label.

  crop="square", the MaskGIT/VQGAN recipe: the largest centred square (evaluation), or the largest square at a random
  offset plus a random left-right flip (training), resized to image_size with antialiased bicubic. crop="inception",
  UViM's colourisation recipe: an inception crop plus a random flip (training), or the whole image squashed to the
  square (evaluation), resized bilinear.
  """

  def __init__(self, name: str, split: str, image_size: int, data_dir: Optional[str] = None, augment: bool = True,
               num_examples: Optional[int] = None, crop: str = "square"):
    if crop not in ("square", "inception"):
      raise ValueError(f"crop={crop!r}: choose square or inception.")
    super().__init__(name, split, image_size, data_dir, augment, num_examples)
    self.crop = crop
    self.num_classes = self.records.dataset_info.features["label"].num_classes

  def get(self, index, rng=None):
    record, rng = self._record(index, rng)
    image = record["image"]
    if self.crop == "square":
      rows, columns = image_ops.square_crop(*image.shape[:2], rng)
      fields = {"image": image_ops.resize(image[rows, columns], self.image_size, Image.Resampling.BICUBIC)}
      if rng is not None:
        fields = image_ops.random_flip(fields, rng)
    else:
      if rng is not None:
        rows, columns = image_ops.inception_box(*image.shape[:2], rng)
        image = image_ops.random_flip({"image": image[rows, columns]}, rng)["image"]
      fields = {"image": image_ops.resize(image, self.image_size, Image.Resampling.BILINEAR)}
    return {**fields, "label": np.int32(record["label"])}


class NyuDepth(_TfdsSource):
  """nyu_depth_v2 as UViM reads it: image and depth (metres, float32; 0 where the sensor has no reading).

  Training view (rng given): a random left-right flip, then an inception crop (image_ops.inception_box), both applied
  to image and depth together, resized to image_size (image bilinear, depth nearest). Evaluation view: the Eigen crop
  of the 480x640 frame (EIGEN_CROP) resized the same way, plus `depth_native`, the crop's ground truth at the sensor's
  resolution (426, 560) on which predictions are scored (uvim/tasks/depth.py).
  """

  def get(self, index, rng=None):
    record, rng = self._record(index, rng)
    fields = {"image": record["image"], "depth": record["depth"].astype(np.float32)}
    if rng is not None:
      fields = image_ops.inception_view(fields, rng)
    else:
      fields = {key: value[EIGEN_CROP] for key, value in fields.items()}
    resized = {"image": image_ops.resize(fields["image"], self.image_size, Image.Resampling.BILINEAR),
               "depth": image_ops.resize(fields["depth"], self.image_size, Image.Resampling.NEAREST)}
    return resized if rng is not None else {**resized, "depth_native": np.ascontiguousarray(fields["depth"])}


class CocoPanoptic(_TfdsSource):
  """coco/2017_panoptic as UViM reads it: image, semantic (0 void, 1 + TFDS label), instance (1..n: non-crowd things,
  else 0) and segments (every annotated segment, stuff and crowds included, numbered in canonical order: segments.py).

  Training view (rng given): a random left-right flip and an inception crop applied to image and maps together;
  evaluation view: the whole image. Both resized to a square of image_size (image bilinear, maps nearest), and the
  segments numbered after resizing, as big_vision's make_canonical.
  """

  def __init__(self, name: str, split: str, image_size: int, data_dir: Optional[str] = None, augment: bool = True,
               num_examples: Optional[int] = None):
    super().__init__(name, split, image_size, data_dir, augment, num_examples)
    labels = self.records.dataset_info.features["panoptic_objects"]["label"]
    self.semantic_names = ("void",) + tuple(labels.names)
    self.is_thing = (False,) + (True,) * COCO_NUM_THINGS + (False,) * (labels.num_classes - COCO_NUM_THINGS)

  def get(self, index, rng=None):
    record, rng = self._record(index, rng)
    rgb_ids = record["panoptic_image"].astype(np.int32)
    segment_map = rgb_ids[..., 0] + 256 * rgb_ids[..., 1] + 256**2 * rgb_ids[..., 2]  # The COCO panoptic encoding.
    # Each pixel's row in the segment table: 1..n, 0 where its id names no segment (0 is COCO's "unlabelled").
    segments = record["panoptic_objects"]
    row_of_id = {int(segment_id): row for row, segment_id in enumerate(segments["id"], start=1)}
    ids, pixel_ids = np.unique(segment_map, return_inverse=True)
    row = np.array([row_of_id.get(int(i), 0) for i in ids], np.int32)[pixel_ids.reshape(segment_map.shape)]

    fields = {"image": record["image"], "row": row}
    if rng is not None:
      fields = image_ops.inception_view(fields, rng)
    image = image_ops.resize(fields["image"], self.image_size, Image.Resampling.BILINEAR)
    row = image_ops.resize(np.ascontiguousarray(fields["row"]), self.image_size, Image.Resampling.NEAREST)

    labels = segments["label"].astype(np.int32)
    is_instance = (labels < COCO_NUM_THINGS) & ~segments["is_crowd"]
    semantic_of = np.concatenate([[0], labels + 1]).astype(np.int32)
    instance_of = np.concatenate([[0], np.where(is_instance, np.cumsum(is_instance), 0)]).astype(np.int32)
    # Every segment is its own (class, row) pair, so canonical_segments numbers each one, stuff and crowds included.
    segment_ids = canonical_segments(np.where(row > 0, 1, 0), row, is_thing=(False, True))
    return {"image": image, "semantic": semantic_of[row], "instance": instance_of[row], "segments": segment_ids}
