"""Depth metrics on hand-computed inputs."""
import numpy as np
import pytest

from fsq.evaluators.depth import DepthMetrics, depth_metrics_per_image


def test_hand_computed_image_with_invalid_pixel():
  gt = np.array([[1.0, 2.0], [4.0, 0.0]])  # 0 is below min_depth: invalid.
  pred = np.array([[1.0, 1.0], [5.0, 7.0]])
  m = {k: v[0] for k, v in depth_metrics_per_image(pred, gt).items()}
  assert m["rmse"] == pytest.approx(np.sqrt(2 / 3))
  assert m["abs_rel"] == pytest.approx((0 + 1 / 2 + 1 / 4) / 3)
  assert m["log10"] == pytest.approx((0 + np.log10(2) + np.log10(5 / 4)) / 3)
  # Ratios 1, 2, 1.25; the thresholds are strict, so 1.25 is not within 1.25^1.
  assert (m["delta1"], m["delta2"], m["delta3"]) == pytest.approx((1 / 3, 2 / 3, 2 / 3))


def test_averages_per_image_not_per_pixel():
  gt = np.full((2, 1, 4), 2.0)
  gt[0, 0, 1:] = 20.0  # Image 0 keeps one valid pixel (error 2); image 1 has 4 exact pixels.
  pred = np.full((2, 1, 4), 2.0)
  pred[0, 0, 0] = 4.0
  metrics = DepthMetrics()
  metrics.update(pred, gt)
  assert metrics.result()["rmse"] == pytest.approx(1.0)  # Pooled over pixels: sqrt(4/5).


def test_depth_range_is_configurable_and_predictions_clipped():
  gt = np.array([[0.5, 1.0, 3.0, 9.0]])
  pred = np.array([[0.5, 1.0, 50.0, 9.0]])
  narrow = depth_metrics_per_image(pred, gt, min_depth=0.8, max_depth=5.0)
  # Valid: 1.0 and 3.0; the prediction 50 is clipped to 5.
  assert narrow["rmse"][0] == pytest.approx(np.sqrt(4 / 2))
  wide = depth_metrics_per_image(pred, gt, min_depth=0.1, max_depth=100.0)
  assert wide["rmse"][0] == pytest.approx(np.sqrt(47**2 / 4))


def test_eigen_crop():
  gt = np.full((480, 640), 3.0)
  pred = gt.copy()
  for r, c in [(44, 100), (471, 100), (100, 40), (100, 601)]:  # Just outside the crop.
    pred[r, c] = 9.0
  assert depth_metrics_per_image(pred, gt, eigen_crop=True)["rmse"][0] == 0.0
  assert depth_metrics_per_image(pred, gt)["rmse"][0] > 0.0
  for r, c in [(45, 41), (470, 600)]:  # The crop's corners.
    pred[r, c] = 4.0
  crop_pixels = (471 - 45) * (601 - 41)
  assert depth_metrics_per_image(pred, gt, eigen_crop=True)["rmse"][0] == pytest.approx(
      np.sqrt(2 / crop_pixels))
  with pytest.raises(ValueError, match="Eigen crop"):
    depth_metrics_per_image(gt[:100], gt[:100], eigen_crop=True)


def test_images_without_valid_pixels_are_skipped():
  gt = np.stack([np.zeros((2, 2)), np.full((2, 2), 2.0)])
  pred = np.full((2, 2, 2), 3.0)
  per_image = depth_metrics_per_image(pred, gt)
  assert np.isnan(per_image["rmse"][0]) and per_image["rmse"][1] == pytest.approx(1.0)
  metrics = DepthMetrics()
  metrics.update(pred, gt)
  metrics.update(pred[1:], gt[1:] * 2)
  result = metrics.result()
  assert result["rmse"] == pytest.approx((1.0 + 1.0) / 2)
  assert result["abs_rel"] == pytest.approx((0.5 + 0.25) / 2)
  empty = DepthMetrics()
  empty.update(pred[:1], gt[:1])
  with pytest.raises(ValueError, match="no image"):
    empty.result()


def test_shape_mismatch_is_rejected():
  with pytest.raises(ValueError, match="same|both"):
    depth_metrics_per_image(np.ones((2, 3)), np.ones((3, 2)))
