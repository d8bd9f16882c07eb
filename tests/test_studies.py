"""The write-ups scripts.reproduce builds from finished runs (fsq/studies/), on one tiny FSQ run
with iFSQ's bound evaluated twice: the usage-drop study's level statistics and the main job's
table, curves and labelled reconstructions."""
import os

import numpy as np
import pytest
from PIL import Image

from fsq.stages import make_stage
from fsq.studies import smoke, usage_drop
from fsq.train.loop import train
from scripts import reproduce
from train_utils import tiny_config


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  root = tmp_path_factory.mktemp("runs")
  config = tiny_config(**{"quantizer.bound": "ifsq", "eval_every": 4})
  train(make_stage(config), config, str(root / "ifsq_125"))
  return root


def test_level_statistics_are_logged_and_collected(root, tmp_path):
  rows = usage_drop.collect(str(root))
  assert [(r["bound"], r["step"]) for r in rows] == [("ifsq", 4), ("ifsq", 8)]
  for r in rows:
    masses = [r[f"eval/recon/level_mass/c{i}_l{j}"] for i in range(3) for j in range(5)]
    assert abs(sum(masses) - 3.0) < 1e-9  # Each channel's fractions sum to one.
    assert 0 < r["eval/recon/level_usage"] <= 1 and 0 < r["eval/recon/usage"] <= 1
  table = usage_drop.write(rows, str(tmp_path))
  assert "| ifsq_125 | ifsq | 5-5-5 | 8 | 4 |" in table
  assert os.path.getsize(tmp_path / "usage_drop.png") > 10_000


def test_the_main_jobs_write_up(root, tmp_path):
  rows = reproduce.collect(str(root))
  table = smoke.write(rows, str(root), str(tmp_path), examples=4)
  assert rows[0]["parameters"] > 1000  # Counted in its checkpoint.
  assert f"| ifsq_125 | IFSQ | 125 | 5-5-5 | 8 | {rows[0]['eval/recon/psnr']:.2f} |" in table
  grid = np.asarray(Image.open(tmp_path / "reconstructions.png"))
  # Two rows (scenes, reconstructions) of 16 px scenes upscaled 8x, after a label margin.
  assert grid.shape == (2 * 16 * 8, smoke.LABEL_MARGIN + 4 * 16 * 8, 3)
  assert os.path.getsize(tmp_path / "smoke.png") > 10_000
