"""Batching: purity in (seed, step), host sharding, epochs, prefetching, evaluation padding, make_source."""
import itertools

import ml_collections
import numpy as np
import pytest

from fsq import data
from fsq.data import pipeline


class _IndexSource(data.Source):
  """Returns its own index, and a draw of the augmentation generator (-1 without one)."""

  def __init__(self, num_examples):
    self.num_examples = num_examples

  def __len__(self):
    return self.num_examples

  def get(self, index, rng=None):
    index = self._check_index(index)
    return {"index": np.int64(index), "noise": np.float64(rng.random() if rng is not None else -1.0)}


def _batch(source, step, **kwargs):
  return data.batch_for_step(source, step, **{"global_batch_size": 8, "seed": 3, **kwargs})


def test_batch_is_a_pure_function_of_seed_and_step():
  source = _IndexSource(100)
  first, again = _batch(source, 5), _batch(_IndexSource(100), 5)
  for key in first:
    np.testing.assert_array_equal(first[key], again[key])
  assert not np.array_equal(first["index"], _batch(source, 6)["index"])
  assert not np.array_equal(first["index"], _batch(source, 5, seed=4)["index"])


def test_hosts_together_build_exactly_the_global_batch():
  source = _IndexSource(50)
  for step in (0, 7, 13):
    whole = _batch(source, step)
    hosts = [_batch(source, step, process_index=p, process_count=2) for p in range(2)]
    for key in whole:
      np.testing.assert_array_equal(np.concatenate([host[key] for host in hosts]), whole[key])
  with pytest.raises(ValueError, match="divisible"):
    _batch(source, 0, process_count=3)


def test_every_epoch_visits_each_example_once_in_a_new_order():
  num_examples, batch = 24, 8  # Three steps per epoch.
  epochs = [np.concatenate([data.global_indices(step, batch, 0, num_examples) for step in range(e * 3, e * 3 + 3)])
            for e in range(2)]
  for order in epochs:
    np.testing.assert_array_equal(np.sort(order), np.arange(num_examples))
  assert not np.array_equal(*epochs)
  # A batch straddling an epoch boundary (24 is not a multiple of 10) takes the head of the next permutation.
  straddling = data.global_indices(2, 10, 0, num_examples)
  np.testing.assert_array_equal(straddling[:4], data.global_indices(0, 24, 0, num_examples)[20:])
  np.testing.assert_array_equal(straddling[4:], epochs[1][:6])


def test_augmentation_draws_differ_per_row_and_repeat_per_step():
  source = _IndexSource(1000)
  noise = _batch(source, 2)["noise"]
  assert len(set(noise.tolist())) == len(noise) and np.all(noise >= 0)
  np.testing.assert_array_equal(noise, _batch(source, 2)["noise"])


@pytest.mark.parametrize("num_workers", [0, 2])
def test_train_batches_resume_to_the_same_stream(num_workers):
  source = data.make_source({"name": "scenes", "split": "train", "image_size": 16, "num_examples": 1000})
  kwargs = dict(global_batch_size=4, seed=1, process_index=1, process_count=2, num_workers=num_workers)
  stream = data.train_batches(source, start_step=10, **kwargs)
  for step, batch in itertools.islice(stream, 3):
    expected = data.batch_for_step(source, step, global_batch_size=4, seed=1, process_index=1, process_count=2)
    for key in expected:
      np.testing.assert_array_equal(batch[key], expected[key])
  stream.close()
  assert step == 12


def test_eval_batches_cover_the_split_once_in_order_with_a_padding_mask():
  source = _IndexSource(21)
  hosts = [list(data.eval_batches(source, global_batch_size=8, process_index=p, process_count=2)) for p in range(2)]
  assert len(hosts[0]) == len(hosts[1]) == data.num_eval_batches(source, 8) == 3
  batches = [{key: np.concatenate([h[b][key] for h in hosts]) for key in hosts[0][b]} for b in range(3)]
  mask = np.concatenate([b["mask"] for b in batches])
  indices = np.concatenate([b["index"] for b in batches])
  assert mask.dtype == bool and mask.sum() == 21 and not mask[21:].any()
  np.testing.assert_array_equal(indices[mask], np.arange(21))
  assert np.all(np.concatenate([b["noise"] for b in batches])[mask] == -1.0)  # No augmentation in evaluation.


def test_make_source_accepts_config_dicts_and_rejects_unknown_names_and_keys():
  config = ml_collections.ConfigDict({"name": "scenes", "split": "validation", "image_size": 32})
  source = data.make_source(config)
  assert len(source) == 10_000 and source[0]["image"].shape == (32, 32, 3)
  with pytest.raises(ValueError, match="unknown data source"):
    data.make_source({"name": "mnist", "split": "train"})
  with pytest.raises(TypeError):
    data.make_source({"name": "scenes", "split": "train", "imagesize": 32})
  assert set(pipeline.SOURCES) >= {"scenes", "digits", "imagenet2012", "nyu_depth_v2", "coco/2017_panoptic"}


def test_rgb_to_grey_keeps_shape_and_dtype():
  rgb = np.random.default_rng(0).integers(0, 256, size=(2, 4, 4, 3), dtype=np.uint8)
  grey = data.rgb_to_grey(rgb)
  assert grey.shape == rgb.shape and grey.dtype == np.uint8
  np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
  np.testing.assert_allclose(data.rgb_to_grey(np.full((3,), 0.5, np.float32)), 0.5, atol=1e-3)
