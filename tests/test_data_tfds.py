"""The TFDS sources, offline: TFDS mock data, a tiny dataset prepared on the spot, and the missing-dataset error."""
import importlib.util
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from fsq import data
from fsq.data import tfds_sources

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


def test_nyu_depth_resizes_image_and_depth_and_flips_them_together():
  with _mock():
    source = data.make_source({"name": "nyu_depth_v2", "split": "validation", "image_size": 24})
    example = source[1]
    assert example["image"].shape == (24, 24, 3) and example["image"].dtype == np.uint8
    assert example["depth"].shape == (24, 24) and example["depth"].dtype == np.float32
    flips = 0
    for seed in range(6):
      augmented = source.get(1, np.random.default_rng(seed))
      flipped = not np.array_equal(augmented["image"], example["image"])
      flips += flipped
      expected = {key: value[:, ::-1] if flipped else value for key, value in example.items()}
      _assert_examples_equal(augmented, expected)
    assert 0 < flips < 6


class _Records(list):
  """A list of decoded records standing in for a tfds data source."""
  dataset_info = None


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
  assert example["image"].shape == (8, 8, 3)


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
