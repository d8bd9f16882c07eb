"""Evaluation metrics of the paper, as plain functions and small accumulators over arrays.

- FID (`fid`, with the FID InceptionV3 in `inception`) and improved precision/recall
  (`precision_recall`) for MaskGIT; colourisation FID-5k for UViM.
- Depth metrics (`depth`) and panoptic quality (`panoptic`) for UViM.
See docs/evaluators.md.
"""
from fsq.evaluators.depth import DepthMetrics, depth_metrics_per_image
from fsq.evaluators.fid import (RunningStatistics, Statistics, colorization_fid,
                                feature_statistics, frechet_distance, load_or_compute_statistics,
                                load_statistics, save_statistics)
from fsq.evaluators.inception import InceptionV3, load_variables, make_feature_fn
from fsq.evaluators.panoptic import PanopticQuality
from fsq.evaluators.precision_recall import manifold_radii, precision_recall
from fsq.evaluators.scenes_features import class_consistency, load_scenes_network, scenes_fid

__all__ = [
    "DepthMetrics", "depth_metrics_per_image", "RunningStatistics", "Statistics",
    "colorization_fid", "feature_statistics", "frechet_distance", "load_or_compute_statistics",
    "load_statistics", "save_statistics", "InceptionV3", "load_variables", "make_feature_fn",
    "PanopticQuality", "manifold_radii", "precision_recall", "class_consistency",
    "load_scenes_network", "scenes_fid",
]
