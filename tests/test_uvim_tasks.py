"""UViM's task plug-ins on hand-made inputs, and canonical segment ids."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fsq import data as data_lib
from fsq.data.pipeline import stack
from fsq.data.scenes import IS_THING
from fsq.data.segments import canonical_segments
from uvim.tasks import make_task

SCENES = data_lib.make_source({"name": "scenes", "split": "validation", "image_size": 32})


def scenes_batch(n=4, start=0):
  batch = stack([SCENES[i] for i in range(start, start + n)])
  return {**batch, "mask": np.ones(n, bool)}


def perfect_logits(labels_bhw, classes, scale=30.0):
  return scale * jax.nn.one_hot(labels_bhw, classes)


def test_canonical_segments_follow_centres_of_mass_and_ignore_input_ids():
  semantic = np.array([[2, 2, 2, 2], [2, 3, 3, 2], [1, 3, 4, 4], [1, 1, 4, 0]])
  instance = np.array([[0, 0, 0, 0], [0, 7, 7, 0], [0, 7, 2, 2], [0, 0, 2, 0]])
  segments = canonical_segments(semantic, instance, IS_THING)
  # By the row of the centre of mass: wall (0.5), thing 7 (1.3), thing 2 (2.3), floor (2.7).
  np.testing.assert_array_equal(segments, [[1, 1, 1, 1], [1, 2, 2, 1], [4, 2, 3, 3],
                                           [4, 4, 3, 0]])
  renumbered = np.select([instance == 7, instance == 2], [1, 9], instance)
  np.testing.assert_array_equal(canonical_segments(semantic, renumbered, IS_THING), segments)


def test_scenes_segments_number_every_visible_segment():
  for i in range(5):
    example = SCENES[i]
    keys = {(int(s), int(t) if IS_THING[s] else 0)
            for s, t in zip(example["semantic"].ravel(), example["instance"].ravel())}
    assert sorted(np.unique(example["segments"])) == list(range(1, len(keys) + 1))


def test_depth_scores_native_resolution_truth_against_the_resized_prediction():
  """NYU's evaluation: a low-resolution prediction, resized nearest-neighbour to the native
  ground truth (the Eigen crop, 426 x 560 there; 6 x 10 here)."""
  task = make_task("depth")
  coarse = np.array([[[1.0, 2.0], [3.0, 4.0]]], np.float32)  # (1, 2, 2) prediction.
  native = np.kron(coarse, np.ones((3, 5), np.float32))  # (1, 6, 10) truth made of its blocks.
  batch = {"depth": coarse, "depth_native": native, "mask": np.ones(1, bool)}
  metrics = task.metrics()
  metrics.update(coarse, batch, batch["mask"])
  assert metrics.result()["rmse"] == 0.0
  native[0, :3, :5] = 1.5  # The top-left quarter 0.5 m off: RMSE sqrt(0.25 / 4).
  metrics = task.metrics()
  metrics.update(coarse, batch, batch["mask"])
  assert metrics.result()["rmse"] == pytest.approx(0.25)


def test_depth_perfect_logits_reach_the_bin_resolution_and_masked_pixels_do_not_count():
  task = make_task("depth", num_bins=256, min_depth=1e-3, max_depth=10.0)
  batch = scenes_batch()
  bins = task._bins(jnp.asarray(batch["depth"]))
  perfect = {"depth": perfect_logits(bins, 256)}
  prediction = np.asarray(task.predict(perfect))
  half_bin = (10.0 - 1e-3) / 256 / 2
  assert np.max(np.abs(prediction - batch["depth"])) <= half_bin + 1e-5
  metrics = task.metrics()
  metrics.update(prediction, batch, batch["mask"])
  assert metrics.result()["rmse"] < half_bin and metrics.result()["delta1"] == 1.0
  loss, _ = task.loss(perfect, batch)
  uniform, _ = task.loss({"depth": jnp.zeros_like(perfect["depth"])}, batch)
  assert np.all(loss < 1e-6) and np.allclose(uniform, np.log(256), rtol=1e-5)
  # A pixel without depth signal: its logits do not change the loss.
  holed = {**batch, "depth": batch["depth"].copy()}
  holed["depth"][:, 0, 0] = 0.0
  wrong = perfect["depth"].at[:, 0, 0].set(0.0)
  np.testing.assert_allclose(task.loss({"depth": wrong}, holed)[0],
                             task.loss(perfect, holed)[0], atol=1e-6)


def test_colorization_context_is_grey_and_perfect_output_beats_the_grey_baseline():
  task = make_task("colorization")
  batch = scenes_batch()
  context = np.asarray(task.context(batch))
  grey = data_lib.rgb_to_grey(batch["image"])[..., :1].astype(np.float32) / 127.5 - 1.0
  assert context.shape == (4, 32, 32, 1) and np.max(np.abs(context - grey)) <= 1 / 127.5
  perfect = task.targets(batch)
  scores = {}
  for name, prediction in (("perfect", task.predict(perfect)),
                           ("baseline", task.baseline_predict(task.baseline_fit([]), batch))):
    metrics = task.metrics()
    metrics.update(np.asarray(prediction), batch, batch["mask"])
    scores[name] = metrics.result()["psnr"]
  assert scores["perfect"] > 60 and 10 < scores["baseline"] < 40
  assert float(jnp.max(task.loss(perfect, batch)[0])) < 1e-10


def test_panoptic_perfect_logits_give_pq_one_and_segments_take_their_majority_class():
  task = make_task("panoptic", num_classes=7, max_segments=8,
                   thing_classes=[i for i, t in enumerate(IS_THING) if t])
  batch = scenes_batch()
  outputs = {"semantics": perfect_logits(batch["semantic"], 7),
             "segments": perfect_logits(batch["segments"], 8)}
  prediction = np.asarray(task.predict(outputs))
  np.testing.assert_array_equal(prediction[..., 1], batch["segments"])
  metrics = task.metrics()
  metrics.update(prediction, batch, batch["mask"])
  assert metrics.result()["pq"] == 1.0 and metrics.result()["pq_things"] == 1.0
  # A third of one segment's pixels predict another class: the segment keeps its majority's.
  segment = batch["segments"][0] == 1
  rows, cols = np.nonzero(segment)
  noisy = np.array(batch["semantic"])
  noisy[0, rows[: len(rows) // 3], cols[: len(rows) // 3]] = 6
  outputs["semantics"] = perfect_logits(noisy, 7)
  np.testing.assert_array_equal(np.asarray(task.predict(outputs))[..., 0], batch["semantic"])
  uniform, _ = task.loss({k: jnp.zeros_like(v) for k, v in outputs.items()}, batch)
  np.testing.assert_allclose(uniform, np.log(7) + np.log(8), rtol=1e-5)


@pytest.mark.parametrize("name", ["depth", "panoptic"])
def test_baselines_predict_from_training_statistics(name):
  kwargs = ({"num_classes": 7, "max_segments": 8, "thing_classes": [3, 4, 5, 6]}
            if name == "panoptic" else {})
  task = make_task(name, **kwargs)
  fitted = task.baseline_fit([scenes_batch(8, start=100), scenes_batch(8, start=200)])
  batch = scenes_batch()
  prediction = task.baseline_predict(fitted, batch)
  if name == "depth":  # The mean map: the floor (bottom rows) is nearer than the wall.
    assert fitted.shape == (32, 32) and fitted[-1].mean() < fitted[0].mean()
  else:  # The most frequent class: floor at the bottom, wall at the top.
    assert fitted[-1, 16] == 1 and fitted[0, 16] == 2
  metrics = task.metrics()
  metrics.update(prediction, batch, batch["mask"])
  assert all(np.isfinite(v) for k, v in metrics.result().items() if "things" not in k)
