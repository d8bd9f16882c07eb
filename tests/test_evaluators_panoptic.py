"""Panoptic quality on hand-built maps with known answers."""
import numpy as np
import pytest

from fsq.evaluators.panoptic import PanopticQuality

VOID, FLOOR, WALL, CUBE, SPHERE = 0, 1, 2, 3, 4  # Floor and wall are stuff.
THINGS = (CUBE, SPHERE)


def _pan(semantic, instance=None):
  semantic = np.asarray(semantic)
  instance = np.zeros_like(semantic) if instance is None else np.asarray(instance)
  return np.stack([semantic, instance], axis=-1)


def _pq(pred, gt, void_label=VOID):
  metric = PanopticQuality(THINGS, void_label=void_label)
  metric.update(pred, gt)
  return metric.result()


def test_perfect_match_with_relabelled_instances():
  semantic = [[WALL, WALL, WALL, WALL],
              [CUBE, CUBE, WALL, SPHERE],
              [FLOOR, CUBE, CUBE, SPHERE],
              [FLOOR, FLOOR, CUBE, CUBE]]
  gt_instance = [[0, 0, 0, 0], [1, 1, 0, 2], [0, 1, 3, 2], [0, 0, 3, 3]]
  pred_instance = [[9, 9, 9, 9], [7, 7, 0, 1], [5, 7, 4, 1], [5, 5, 4, 4]]
  result = _pq(_pan(semantic, pred_instance), _pan(semantic, gt_instance))
  assert result == {f"{m}{s}": 1.0 for m in ("pq", "sq", "rq") for s in ("", "_things", "_stuff")}


def test_split_segment():
  gt = _pan([[CUBE] * 8, [FLOOR] * 8], [[1] * 8, [0] * 8])
  # 6 of the 8 cube pixels keep the instance (IoU 0.75, a match); 2 become another (an FP).
  result = _pq(_pan([[CUBE] * 8, [FLOOR] * 8], [[1] * 6 + [2] * 2, [0] * 8]), gt)
  assert result["pq_things"] == pytest.approx(0.75 / 1.5)
  assert result["sq_things"] == pytest.approx(0.75)
  assert result["rq_things"] == pytest.approx(2 / 3)
  assert result["pq_stuff"] == 1.0
  assert result["pq"] == pytest.approx((0.5 + 1.0) / 2)
  # Split in halves: IoU 0.5 is not > 0.5, so no match: 1 FN and 2 FP.
  result = _pq(_pan([[CUBE] * 8, [FLOOR] * 8], [[1] * 4 + [2] * 4, [0] * 8]), gt)
  assert result["pq_things"] == 0.0 and result["rq_things"] == 0.0


def test_missed_segment():
  gt = _pan([[CUBE] * 8, [FLOOR] * 8], [[1] * 4 + [2] * 4, [0] * 8])
  pred = _pan([[CUBE] * 4 + [FLOOR] * 4, [FLOOR] * 8], [[1] * 4 + [0] * 4, [0] * 8])
  result = _pq(pred, gt)
  assert result["pq_things"] == pytest.approx(1 / 1.5)  # 1 TP (IoU 1), 1 FN.
  assert result["sq_things"] == 1.0
  assert result["pq_stuff"] == pytest.approx(8 / 12)  # The floor grew to 12 pixels.
  assert result["pq"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("void_label", [VOID, 255])
def test_void_pixels_leave_iou_and_false_positives(void_label):
  gt = _pan([[CUBE] * 4 + [void_label] * 4, [FLOOR] * 8], [[1] * 8, [0] * 8])
  # The cube spreads into void: IoU = 4 / (8 + 4 - 4 - 4) = 1, not 0.5.
  result = _pq(_pan([[CUBE] * 8, [FLOOR] * 8], [[1] * 8, [0] * 8]), gt, void_label)
  assert result["pq"] == 1.0
  # A sphere lying wholly in void is not a false positive: the sphere class never occurs.
  pred = _pan([[CUBE] * 4 + [SPHERE] * 4, [FLOOR] * 8], [[1] * 4 + [2] * 4, [0] * 8])
  result = _pq(pred, gt, void_label)
  assert result["pq"] == 1.0 and result["pq_things"] == 1.0


def test_segment_half_in_void_is_a_false_positive():
  gt = _pan([[CUBE] * 6 + [VOID] * 2, [FLOOR] * 8], [[1] * 8, [0] * 8])
  pred = _pan([[CUBE] * 4 + [SPHERE] * 4, [FLOOR] * 8], [[1] * 4 + [2] * 4, [0] * 8])
  result = _pq(pred, gt)
  # Cube: IoU 4/6, a match. Sphere: 2 of its 4 pixels in void (not more than half): an FP.
  assert result["pq_things"] == pytest.approx((4 / 6 + 0.0) / 2)


def test_void_prediction_counts_against_ground_truth():
  gt = _pan([[CUBE] * 4, [FLOOR] * 4], [[1] * 4, [0] * 4])
  pred = _pan([[CUBE] * 2 + [VOID] * 2, [FLOOR] * 4], [[1] * 4, [0] * 4])
  result = _pq(pred, gt)
  assert result["pq_things"] == 0.0  # IoU 2/4: 1 FN and 1 FP.
  assert result["pq_stuff"] == 1.0


def test_stuff_instance_ids_are_ignored_thing_ids_are_not():
  gt = _pan([[FLOOR] * 4, [WALL] * 4], [[0] * 4, [0] * 4])
  pred = _pan([[FLOOR] * 4, [WALL] * 4], [[1, 1, 2, 2], [3, 4, 5, 6]])
  assert _pq(pred, gt)["pq_stuff"] == 1.0
  assert np.isnan(_pq(pred, gt)["pq_things"])  # No thing class occurred.
  things = _pan([[CUBE] * 4, [FLOOR] * 4], [[1, 1, 2, 2], [0] * 4])
  assert _pq(things, _pan([[CUBE] * 4, [FLOOR] * 4], [[1] * 4, [0] * 4]))["pq_things"] == 0.0


def test_crowd_regions_are_neither_missed_nor_false_positives():
  # Ground truth: cube 1 (4 pixels) and a cube crowd region (instance 0, 4 pixels).
  gt = _pan([[CUBE] * 8, [FLOOR] * 8], [[1] * 4 + [0] * 4, [0] * 8])
  missed = _pan([[CUBE] * 4 + [FLOOR] * 4, [FLOOR] * 8], [[1] * 4 + [0] * 4, [0] * 8])
  assert _pq(missed, gt)["pq_things"] == 1.0  # The unmatched crowd region is no FN.
  metric = PanopticQuality(THINGS, crowd_instance=None)  # Instance 0 is then a segment.
  metric.update(missed, gt)
  assert metric.result()["pq_things"] == pytest.approx(1 / 1.5)
  # A predicted cube lying on the crowd region is ignored, not matched and no FP.
  on_crowd = _pan([[CUBE] * 8, [FLOOR] * 8], [[1] * 4 + [7] * 4, [0] * 8])
  metric = PanopticQuality(THINGS)
  metric.update(on_crowd, gt)
  assert metric.stats[CUBE].tolist() == [1.0, 1, 0, 0]


def test_accumulates_counts_over_images():
  gt = _pan([[CUBE, CUBE, FLOOR, FLOOR], [FLOOR] * 4], [[1, 1, 0, 0], [0] * 4])
  missed = _pan([[FLOOR] * 4, [FLOOR] * 4])
  one_by_one = PanopticQuality(THINGS)
  one_by_one.update(gt, gt)
  one_by_one.update(missed, gt)
  batched = PanopticQuality(THINGS)
  batched.update(np.stack([gt, missed]), np.stack([gt, gt]))
  # Cube: 1 TP (IoU 1) and 1 FN. Floor: IoU 1 and 6/8, both matches.
  expected = {"pq_things": 1 / 1.5, "pq_stuff": (1 + 0.75) / 2,
              "pq": (1 / 1.5 + 1.75 / 2) / 2}
  for metric in (one_by_one, batched):
    assert {k: metric.result()[k] for k in expected} == pytest.approx(expected)


def test_bad_inputs_are_rejected():
  metric = PanopticQuality(THINGS)
  with pytest.raises(ValueError, match="maps of"):
    metric.update(np.zeros((4, 4)), np.zeros((4, 4)))
  with pytest.raises(ValueError, match="non-negative"):
    metric.update(_pan([[CUBE]], [[-1]]), _pan([[CUBE]], [[1]]))
