"""The TFDS sources, offline: TFDS mock data, a tiny dataset prepared on the spot, and the missing-dataset error."""
import importlib.util
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from fsq import data
from fsq.data import image_ops, tfds_sources

# Preparing a dataset, and the COCO builder's own code, need TensorFlow; reading array_record does not.
requires_tensorflow = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                                         reason="TensorFlow is not installed")


def _mock(**kwargs):
  return tfds.testing.mock_data(num_examples=5, policy=tfds.testing.MockPolicy.USE_CODE, **kwargs)


def _assert_examples_equal(first, second):
  assert first.keys() == second.keys()
  for key in first:
    np.testing.assert_array_equal(first[key], second[key])


def test_importing_fsq_data_does_not_import_tensorflow():
  code = "import sys, fsq.data; assert not {'tensorflow', 'tensorflow_datasets'} & set(sys.modules)"
  subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name, num_classes", [("imagenet2012", 1000), ("imagenette/160px-v2", 10)])
def test_image_classification_crops_resizes_and_augments_only_with_a_generator(name, num_classes):
  with _mock():
    source = data.make_source({"name": name, "split": "train", "image_size": 16, "data_dir": "/unused"})
    assert len(source) == 5 and source.num_classes == num_classes
    example = source[2]
    assert example["image"].shape == (16, 16, 3) and example["image"].dtype == np.uint8
    assert example["label"].dtype == np.int32 and 0 <= example["label"] < num_classes
    _assert_examples_equal(example, source[2])
    augmented = [source.get(2, np.random.default_rng(seed))["image"] for seed in range(8)]
    _assert_examples_equal({"image": augmented[0]}, {"image": source.get(2, np.random.default_rng(0))["image"]})
    assert len({image.tobytes() for image in augmented}) > 1
    batch = data.batch_for_step(source, 0, global_batch_size=4, seed=0)
    assert batch["image"].shape == (4, 16, 16, 3) and batch["label"].shape == (4,)


def test_image_classification_inception_crop_squashes_the_whole_image_for_evaluation():
  with _mock():
    source = data.make_source({"name": "imagenet2012", "split": "validation", "image_size": 16,
                               "crop": "inception"})
    record, example = source.records[3], source[3]
    views = [source.get(3, np.random.default_rng(seed))["image"] for seed in range(6)]
  from PIL import Image
  np.testing.assert_array_equal(example["image"], image_ops.resize(record["image"], 16, Image.Resampling.BILINEAR))
  assert all(view.shape == (16, 16, 3) for view in views) and len({v.tobytes() for v in views}) == 6
  with pytest.raises(ValueError, match="crop='centre'"):
    data.make_source({"name": "imagenet2012", "split": "validation", "image_size": 16, "crop": "centre"})


class _Records(list):
  """A list of decoded records standing in for a tfds data source."""
  dataset_info = None


def _nyu_records(builder, split, **kwargs):
  """Two 480x640 NYU frames whose depth is a function of the image: 0.04 x its red channel, which is constant on
  80x80 blocks. A crop, flip or resize applied to image and depth together keeps depth = 0.04 x red inside blocks."""
  del split, kwargs
  rng = np.random.default_rng(0)
  records = _Records()
  for _ in range(2):
    red = np.kron(rng.permutation(np.arange(10, 250, 5))[:48].reshape(6, 8), np.ones((80, 80))).astype(np.uint8)
    image = np.stack([red, rng.integers(0, 256, red.shape), np.zeros_like(red)], -1).astype(np.uint8)
    records.append({"image": image, "depth": (0.04 * red).astype(np.float16)})
  records.dataset_info = builder.info
  return records


def test_inception_box_covers_the_requested_area_and_aspect():
  rng = np.random.default_rng(0)
  boxes = [image_ops.inception_box(480, 640, rng) for _ in range(500)]
  heights = np.array([b[0].stop - b[0].start for b in boxes])
  widths = np.array([b[1].stop - b[1].start for b in boxes])
  assert all(0 <= b[0].start and b[0].stop <= 480 and 0 <= b[1].start and b[1].stop <= 640 for b in boxes)
  area, aspect = heights * widths / (480 * 640), widths / heights
  assert area.min() > 0.045 and area.max() <= 1.0 and 0.3 < np.median(area) < 0.7
  assert aspect.min() > 0.73 and aspect.max() < 1.36
  assert len({(b[0].start, b[1].start) for b in boxes}) > 400  # Random offsets.
  # A box that cannot fit (area beyond the image) falls back to the whole image.
  assert image_ops.inception_box(10, 10, rng, area=(2.0, 2.0)) == (slice(0, 10), slice(0, 10))


def test_nyu_depth_evaluates_the_eigen_crop_at_the_sensors_resolution():
  with _mock(as_data_source_fn=_nyu_records):
    source = data.make_source({"name": "nyu_depth_v2", "split": "validation", "image_size": 24})
    record, example = source.records[1], source[1]
  assert example["image"].shape == (24, 24, 3) and example["image"].dtype == np.uint8
  assert example["depth"].shape == (24, 24) and example["depth"].dtype == np.float32
  np.testing.assert_array_equal(example["depth_native"], record["depth"][45:471, 41:601].astype(np.float32))
  # The resized depth samples the crop nearest-neighbour: every value is one of the crop's.
  assert set(np.unique(example["depth"])) <= set(np.unique(example["depth_native"]))


def test_nyu_depth_training_views_crop_and_flip_image_and_depth_together():
  with _mock(as_data_source_fn=_nyu_records):
    source = data.make_source({"name": "nyu_depth_v2", "split": "train", "image_size": 48})
    views = [source.get(0, np.random.default_rng(seed)) for seed in range(8)]
  for view in views:
    assert set(view) == {"image", "depth"} and view["depth"].shape == (48, 48)
    # Inside a block (red constant over the 5x5 neighbourhood, so resizing mixed nothing), depth = 0.04 x red.
    red = np.pad(view["image"][..., 0].astype(np.float32), 2, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(red, (5, 5))
    inside = windows.min(axis=(-1, -2)) == windows.max(axis=(-1, -2))
    assert inside.mean() > 0.2
    np.testing.assert_allclose(view["depth"][inside], 0.04 * red[2:-2, 2:-2][inside], atol=0.01)
  assert len({view["image"].tobytes() for view in views}) == 8  # Every view a different crop.


def _coco_records(builder, split, **kwargs):
  """One 8x8 COCO panoptic record whose segment ids and labels are known (see the expectations below)."""
  del split, kwargs
  segment_map = np.zeros((8, 8), np.int64)
  segment_map[:4, :4] = 5  # A person (label 0, a thing).
  segment_map[:4, 4:] = 300  # Stuff (label 100).
  segment_map[4:, 4:6] = 519  # A crowd of label 3: semantic but no instance.
  segment_map[4:, 6:] = 70000  # A thing of label 79; this id needs the blue channel. Rows 4-7, cols 0-3: void (0).
  panoptic_rgb = np.stack([segment_map % 256, segment_map // 256 % 256, segment_map // 256**2], -1).astype(np.uint8)
  segments = {"id": np.array([5, 300, 519, 70000, 1234]), "label": np.array([0, 100, 3, 79, 10]),
              "is_crowd": np.array([False, False, True, False, False]),
              "area": np.zeros(5, np.int64), "bbox": np.zeros((5, 4), np.float32)}
  records = _Records([{"image": np.full((8, 8, 3), 128, np.uint8), "panoptic_image": panoptic_rgb,
                       "panoptic_objects": segments}])
  records.dataset_info = builder.info
  return records


@requires_tensorflow
def test_coco_panoptic_decodes_semantic_and_instance_maps():
  with _mock(as_data_source_fn=_coco_records):
    source = data.make_source({"name": "coco/2017_panoptic", "split": "validation", "image_size": 8})
    example = source[0]
  assert len(source.semantic_names) == 134 and source.semantic_names[0] == "void"
  assert source.is_thing[1] and source.is_thing[80] and not source.is_thing[81]
  expected_semantic = np.zeros((8, 8), np.int32)
  expected_semantic[:4, :4], expected_semantic[:4, 4:], expected_semantic[4:, 4:6], expected_semantic[4:, 6:] = (
      1, 101, 4, 80)
  expected_instance = np.zeros((8, 8), np.int32)
  expected_instance[:4, :4], expected_instance[4:, 6:] = 1, 2
  np.testing.assert_array_equal(example["semantic"], expected_semantic)
  np.testing.assert_array_equal(example["instance"], expected_instance)
  # Every segment, stuff and the crowd included, by centre of mass row by row: person (1.5, 1.5), stuff (1.5, 5.5),
  # crowd (5.5, 4.5), thing (5.5, 6.5); void stays 0.
  expected_segments = np.zeros((8, 8), np.int32)
  expected_segments[:4, :4], expected_segments[:4, 4:], expected_segments[4:, 4:6], expected_segments[4:, 6:] = (
      1, 2, 3, 4)
  np.testing.assert_array_equal(example["segments"], expected_segments)
  assert example["image"].shape == (8, 8, 3)


@requires_tensorflow
def test_coco_panoptic_training_views_keep_maps_aligned_and_segments_canonical():
  with _mock(as_data_source_fn=_coco_records):
    source = data.make_source({"name": "coco/2017_panoptic", "split": "train", "image_size": 16})
    views = [source.get(0, np.random.default_rng(seed)) for seed in range(10)]
  for view in views:
    segments, semantic = view["segments"], view["semantic"]
    ids = np.unique(segments[segments > 0])
    np.testing.assert_array_equal(ids, np.arange(1, len(ids) + 1))
    rows, columns = np.indices(segments.shape)
    centres = [(rows[segments == i].mean(), columns[segments == i].mean()) for i in ids]
    assert centres == sorted(centres)
    # One class per segment, void exactly where no segment is: the maps moved together.
    assert all(len(np.unique(semantic[segments == i])) == 1 for i in ids)
    np.testing.assert_array_equal(semantic == 0, segments == 0)
  assert len({view["segments"].tobytes() for view in views}) > 3


@pytest.mark.parametrize("name", ["imagenet2012", "imagenette/160px-v2", "nyu_depth_v2", "coco/2017_panoptic"])
def test_missing_dataset_error_names_the_builder_and_data_dir(name, tmp_path):
  with pytest.raises(data.MissingDatasetError, match=f"(?s){re.escape(name)}.*{re.escape(str(tmp_path))}"):
    data.make_source({"name": name, "split": "train", "image_size": 16, "data_dir": str(tmp_path)})


class TinyImages(tfds.core.GeneratorBasedBuilder):
  """Six small images in three classes: a real dataset to prepare in a test."""
  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    features = {"image": tfds.features.Image(shape=(None, None, 3)), "label": tfds.features.ClassLabel(num_classes=3)}
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    rng = np.random.default_rng(0)
    for i in range(6):
      yield i, {"image": rng.integers(0, 256, (10 + i, 12, 3), dtype=np.uint8), "label": i % 3}


@requires_tensorflow
def test_reads_a_prepared_array_record_dataset_and_explains_a_tfrecord_one(tmp_path):
  TinyImages(data_dir=tmp_path / "ar", file_format="array_record").download_and_prepare()
  source = tfds_sources.ImageClassification("tiny_images", "train", 8, data_dir=str(tmp_path / "ar"))
  assert len(source) == 6 and source.num_classes == 3
  assert sorted(int(source[i]["label"]) for i in range(6)) == [0, 0, 1, 1, 2, 2]
  assert source[5]["image"].shape == (8, 8, 3)

  TinyImages(data_dir=tmp_path / "tfr", file_format="tfrecord").download_and_prepare()
  with pytest.raises(data.MissingDatasetError, match="not as array_record"):
    tfds_sources.open_tfds("tiny_images", "train", str(tmp_path / "tfr"))
