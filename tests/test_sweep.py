"""scripts.sweep and scripts.reproduce on a two-run sweep of tiny training runs."""
import os
import textwrap

import pytest

from scripts import reproduce, sweep
from train_utils import TINY


@pytest.mark.slow
def test_sweep_resumes_skips_and_reproduces(tmp_path, capsys):
  overrides = {**TINY, "total_steps": 4, "eval_every": 4, "checkpoint_every": 4,
               "model.channel_multipliers": "(1,2)"}
  spec = tmp_path / "tiny_sweep.py"
  spec.write_text(textwrap.dedent(f"""
      def get_sweep(arg=None):
        return [{{"name": q, "overrides": {overrides!r},
                  "config": "configs/vqvae.py:runlocal,res=16,quantizer=" + q
                            + ",codebook_size=64"}} for q in ("fsq", "vq")]
  """))
  root = tmp_path / "runs"
  sweep.run_sweep(f"{spec}:", str(root), parallel=2)
  assert sweep.finished(str(root / "fsq")) and sweep.finished(str(root / "vq"))
  mtime = os.path.getmtime(root / "fsq" / "metrics.jsonl")
  sweep.run_sweep(str(spec), str(root))
  assert "2 of 2 runs finished already; running 0" in capsys.readouterr().out
  assert os.path.getmtime(root / "fsq" / "metrics.jsonl") == mtime
  rows = reproduce.collect(str(root))
  assert {r["quantizer"] for r in rows} == {"fsq", "vq"}
  assert {r["codebook_size"] for r in rows} == {64}
  out = tmp_path / "results"
  os.makedirs(out)
  table = reproduce.write_tables(rows, str(out))
  assert "| fsq | fsq | 64 | 8-8 | 4 |" in table
  assert os.path.exists(reproduce.plot(rows, str(out), "tradeoff"))
  assert (out / "results.csv").read_text().count("\n") == 3
