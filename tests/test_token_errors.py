"""fsq.studies.token_errors: the decoder's sensitivity to wrong tokens."""
import json
import os

import numpy as np

from fsq.studies import token_errors


def test_corrupt_replaces_the_given_share_with_tokens_of_the_grid():
  rng = np.random.default_rng(0)
  tokens = rng.integers(0, 4, size=(500, 8, 8))  # Four codes, uniform: a draw repeats 1/4.
  assert np.array_equal(token_errors.corrupt(tokens, 0.0, rng), tokens)
  corrupted = token_errors.corrupt(tokens, 0.4, rng)
  assert abs(np.mean(corrupted != tokens) - 0.4 * 0.75) < 0.01
  assert set(np.unique(corrupted)) <= set(np.unique(tokens))


def test_without_errors_a_row_is_the_tokenizers_reconstruction(tokenizer_workdir):
  rows = token_errors.measure(tokenizer_workdir, rates=(0.0, 1.0), num_examples=32,
                              batch_size=16)
  with open(os.path.join(tokenizer_workdir, "metrics.jsonl")) as f:
    (evaluated,) = [e for e in map(json.loads, f) if "eval/recon/psnr" in e]
  # The reconstruction evaluator's PSNR on the same 32 held-out scenes (its images unrounded).
  assert abs(rows[0]["psnr"] - evaluated["eval/recon/psnr"]) < 0.05
  assert [r["rate"] for r in rows] == [0.0, 1.0]
  assert all(r["fid"] >= 0 and 0 <= r["class_consistency"] <= 1 for r in rows)
  assert "| 100% |" in token_errors.table(rows)
