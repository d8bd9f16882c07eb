"""Table 2 from UViM runs (uvim/table2.py): language models grouped by oracle, over seeds."""
import csv
import json
import os

import pytest

from uvim import table2


def _run(workdir, config, final):
  os.makedirs(workdir)
  (workdir / "config.json").write_text(json.dumps(config))
  (workdir / "metrics.jsonl").write_text(json.dumps({"step": 10, "train/loss": 1.0}) + "\n"
                                         + json.dumps({"step": 20, **final}) + "\n")


def _oracle(root, name, quantizer):
  _run(root / name, {"stage": table2.ORACLE_STAGE, "task": {"name": "depth"}, "context": True,
                     "quantizer": quantizer, "seed": 0},
       {"eval/oracle/rmse": 0.3, "eval/oracle/usage": 0.5, "eval/oracle/num_used": 64.0})


def _lm(root, name, oracle, seed, rmse, floor=0.75):
  _run(root / name, {"stage": table2.LM_STAGE, "oracle": f"{root}/{oracle}", "seed": seed,
                     "evals": {"lm": {"network": ""}}},
       {"eval/lm/rmse": rmse, "eval/lm/abs_rel": 0.1, "eval/lm/code_agreement": 0.2,
        "eval/bits/bits_per_token": 1.5, "eval/oracle/rmse": 0.36, "eval/oracle/abs_rel": 0.04,
        "eval/context_only/rmse": floor, "eval/context_only/abs_rel": 0.12})


def test_lms_are_grouped_by_oracle_with_spread_and_the_floor_verdict(tmp_path):
  root = tmp_path / "runs"
  _oracle(root, "oracle_depth_fsq", {"name": "fsq", "levels": [5, 5, 5]})
  _oracle(root, "oracle_depth_vq_ema", {"name": "vq_ema", "codebook_size": 128, "split": False})
  _oracle(root, "oracle_unused", {"name": "fsq", "levels": [8, 5]})  # No LM: no row.
  for seed, rmse in enumerate([0.60, 0.62, 0.64]):  # Gain 0.13 > 2 sd (0.04).
    _lm(root, f"lm_depth_fsq_seed{seed}", "oracle_depth_fsq", seed, rmse)
  for seed, rmse in enumerate([0.70, 0.60, 0.74]):  # Every seed beats 0.75, spread too wide.
    _lm(root, f"lm_depth_vq_ema_seed{seed}", "oracle_depth_vq_ema", seed, rmse)
  (root / "sweep.log").write_text("lm_depth_fsq_seed0: done in 500 s (log: x)\n"
                                  "lm_depth_fsq_seed0: FAILED (exit 1) in 3 s (log: x)\n"
                                  "lm_depth_fsq_seed1: done in 510 s (log: x)\n")
  (root / "sweep_piece2.log").write_text("lm_depth_vq_ema_seed2: done in 490 s (log: x)\n")
  rows = {r["oracle"]: r for r in table2.collect(str(root))}
  assert set(rows) == {"oracle_depth_fsq", "oracle_depth_vq_ema"}
  fsq, vq = rows["oracle_depth_fsq"], rows["oracle_depth_vq_ema"]
  assert fsq["seeds"] == [0, 1, 2] and fsq["lm/rmse"] == [0.60, 0.62, 0.64]
  assert fsq["gain_over_floor"] == pytest.approx(0.13) and fsq["beats_floor"] is True
  assert vq["beats_floor"] is False and vq["quantizer"] == "VQ 128, no splitting"
  assert fsq["oracle/rmse"] == 0.36 and fsq["context_only/rmse"] == 0.75 and fsq["usage"] == 0.5
  assert fsq["lm_seconds"] == [500.0, 510.0, None] and vq["lm_seconds"] == [None, None, 490.0]
  text = table2.write(list(rows.values()), str(tmp_path / "out"))
  assert "| 0.620 ± 0.020 (n=3) | 0.360 | 0.750 |" in text
  assert "| 0.130 | yes |" in text and "judged by RMSE (m)" in text and "| 0.680 ± 0.072 (n=3) |" in text
  with open(tmp_path / "out" / "results.csv") as f:
    lines = list(csv.DictReader(f))
  assert len(lines) == 6 and float(lines[1]["lm/rmse"]) == 0.62
  assert os.path.exists(tmp_path / "out" / "uvim_table2.png")


def test_one_seed_leaves_the_verdict_open(tmp_path):
  root = tmp_path / "runs"
  _oracle(root, "oracle_depth_fsq", {"name": "fsq", "levels": [5, 5, 5]})
  _lm(root, "lm_depth_fsq_seed0", "oracle_depth_fsq", 0, 0.9)
  (row,) = table2.collect(str(root))
  assert row["beats_floor"] is None and row["gain_over_floor"] == pytest.approx(-0.15)
  assert "0.900 (1 seed)" in table2.table([row])


def test_a_table_run_in_pieces_keeps_the_earlier_rows(tmp_path):
  first, second, out = tmp_path / "first", tmp_path / "second", str(tmp_path / "out")
  for root, rmse in ((first, 0.6), (second, 0.5)):
    _oracle(root, "oracle_depth_fsq", {"name": "fsq", "levels": [5, 5, 5]})
    _lm(root, "lm_depth_fsq_seed0", "oracle_depth_fsq", 0, rmse)
  _oracle(first, "oracle_depth_vq_ema", {"name": "vq_ema", "codebook_size": 128})
  _lm(first, "lm_depth_vq_ema_seed0", "oracle_depth_vq_ema", 0, 0.7)
  table2.write(table2.earlier(table2.collect(str(first)), out), out)
  rows = table2.earlier(table2.collect(str(second)), out)  # A later piece reruns one oracle.
  assert [(r["oracle"], r["lm/rmse"]) for r in rows] == [("oracle_depth_fsq", [0.5]),
                                                        ("oracle_depth_vq_ema", [0.7])]
  text = table2.write(rows, out)
  assert "0.500 (1 seed)" in text and "0.700 (1 seed)" in text and "0.600" not in text
  with open(os.path.join(out, "results.csv")) as f:
    assert len(list(csv.DictReader(f))) == 2


def test_colourisation_is_judged_by_colour_fid_on_the_scenes_and_by_fid_on_imagenet():
  assert table2.judged("colorization", "scenes")[0] == "colour_fid"  # Scenes-FID: colour-blind.
  assert table2.judged("colorization", "inception")[0] == "fid"  # The paper's FID-5k.
  assert table2.judged("depth", "")[0] == "rmse" and table2.judged("panoptic", "")[0] == "pq"
