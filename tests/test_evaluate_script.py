"""scripts.evaluate: a finished run's evaluation, again, without touching the run."""
import os

import numpy as np
import pytest

from fsq.evaluators import reconstruction
from fsq.stages import make_stage
from fsq.train.loop import train
from fsq.train.writers import read_metrics
from scripts import evaluate
from train_utils import tiny_config


def test_evaluate_repeats_the_final_evaluation_and_takes_overrides(tmp_path, capsys):
  config = tiny_config()
  train(make_stage(config), config, str(tmp_path))
  final = [e for e in read_metrics(str(tmp_path)) if "eval/recon/psnr" in e][-1]
  before = sorted(os.listdir(tmp_path))
  metrics = evaluate.main(["--workdir", str(tmp_path), "--out", str(tmp_path / "again")])
  assert metrics.keys() == {k for k in final if k != "step"}
  for key, value in metrics.items():
    np.testing.assert_allclose(value, final[key], rtol=1e-5, err_msg=key)
  assert sorted(os.listdir(tmp_path)) == sorted(before + ["again"])  # The run is untouched.
  assert (tmp_path / "again" / "eval_recon_reconstructions.png").exists()
  assert '"eval/recon/psnr"' in capsys.readouterr().out
  fewer = evaluate.main(["--workdir", str(tmp_path), "--config.data.eval.num_examples=8"])
  assert fewer["eval/recon/psnr"] != metrics["eval/recon/psnr"]
  with pytest.raises(SystemExit, match="has no 'num_exampels'; it has"):
    evaluate.main(["--workdir", str(tmp_path), "--config.data.eval.num_exampels=8"])


def test_reconstruction_class_consistency_counts_unmasked_examples_only():
  rng = np.random.default_rng(0)
  labels = np.array([0, 1, 2, 3, 0, 1], np.int32)
  batch = {"image": rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8), "label": labels,
           "mask": np.array([True] * 5 + [False])}
  # A fake judge reading the class from the reconstruction's first pixel: right for 0-2.
  x_hat = np.zeros((6, 8, 8, 3), np.float32)
  x_hat[:, 0, 0, 0] = [0, 1, 2, 0, 0, 1]
  judge = lambda x: (np.asarray(x, np.float32).reshape(len(x), -1)[:, :4],
                     np.eye(4)[np.asarray(x)[:, 0, 0, 0].astype(int)])

  class Stage:
    codebook_size = 8

    def reconstruct(self, state, batch):
      return x_hat, np.zeros((6, 2, 2), np.int32)

  evaluator = reconstruction.Evaluator(Stage(), batch_size=6, seed=0)
  assert "class_consistency" not in evaluator.run(None, [batch])[0]
  evaluator.judge = judge
  metrics, _ = evaluator.run(None, [batch])
  assert metrics["class_consistency"] == pytest.approx(4 / 5)  # 0,1,2 and the 2nd 0.
  # PSNR of the 5 real rows only: the padded 6th row's error is not counted.
  expected = reconstruction.reconstruction_errors(batch["image"][:5] / 127.5 - 1.0, x_hat[:5])
  assert metrics["psnr"] == pytest.approx(float(np.mean(expected["psnr"])), rel=1e-6)
