"""scripts.sweep and scripts.reproduce on a two-run sweep of tiny training runs."""
import json
import os
import textwrap

import pytest

from fsq.config import ConfigError
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


def _fake_run(workdir, config, events):
  os.makedirs(workdir)
  (workdir / "config.json").write_text(json.dumps(config))
  (workdir / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


def test_collect_joins_stage2_runs_to_their_tokenizers(tmp_path):
  root = tmp_path / "runs"
  fsq = {"stage": "maskgit.stage1:Stage1", "quantizer": {"name": "fsq", "levels": [8, 5, 5, 5]}}
  _fake_run(root / "tok_fsq", fsq, [{"step": 10, "train/loss": 1.0},
                                    {"step": 20, "eval/recon/fid": 3.0, "eval/recon/usage": 0.9}])
  stage2 = "maskgit.stage2:MaskGITStage2"
  _fake_run(root / "s2_fsq", {"stage": stage2, "tokenizer": str(root / "tok_fsq")},
            [{"step": 5, "eval/sample/fid": 40.0}, {"step": 5, "eval/bits/bits_per_token": 7.5}])
  outside = tmp_path / "tok_vq"
  _fake_run(outside, {"quantizer": {"name": "vq", "codebook_size": 1024}},
            [{"step": 20, "eval/recon/fid": 2.0}])
  _fake_run(root / "s2_vq", {"stage": stage2, "tokenizer": str(outside)},
            [{"step": 5, "eval/sample/fid": 50.0}])
  _fake_run(root / "unfinished", fsq, [{"step": 10, "train/loss": 1.0}])
  rows = {r["run"]: r for r in reproduce.collect(str(root))}
  assert set(rows) == {"tok_fsq", "s2_vq"}
  assert rows["tok_fsq"] == {
      "run": "tok_fsq", "quantizer": "fsq", "codebook_size": 1000, "levels": "8-5-5-5", "d": 4,
      "min_level": 5, "step": 20, "eval/recon/fid": 3.0, "eval/recon/usage": 0.9,
      "eval/sample/fid": 40.0, "eval/bits/bits_per_token": 7.5, "stage2_run": "s2_fsq"}
  assert rows["s2_vq"]["codebook_size"] == 1024 and rows["s2_vq"]["eval/sample/fid"] == 50.0
  assert "eval/recon/fid" not in rows["s2_vq"]  # Sampling FID is not reconstruction FID.


def _write_sweep(path, runs):
  path.write_text(f"def get_sweep(arg=None):\n  return {runs!r}\n")
  return str(path)


def test_runs_come_after_the_runs_they_need(tmp_path):
  runs = [{"name": "s2", "config": "c:tokenizer={root}/tok", "after": ["tok"]},
          {"name": "tok", "config": "c", "overrides": {"data.dir": "{root}/data"}}]
  spec = _write_sweep(tmp_path / "s.py", runs)
  assert [r["name"] for r in sweep.load_sweep(spec)] == ["tok", "s2"]
  s2, tok = sweep.command(sweep.load_sweep(spec)[1], "/R"), sweep.command(runs[1], "/R")
  assert "--config=c:tokenizer=/R/tok" in s2 and "--workdir=/R/s2" in s2
  assert "--config.data.dir=/R/data" in tok
  # The sweep's order where the needs allow it: a language model runs before the next oracle.
  keep = _write_sweep(tmp_path / "k.py", [{"name": "lm1", "config": "c", "after": ["o1"]},
                                          {"name": "o1", "config": "c"},
                                          {"name": "o2", "config": "c"},
                                          {"name": "lm2", "config": "c", "after": ["o2"]}])
  assert [r["name"] for r in sweep.load_sweep(keep)] == ["o1", "lm1", "o2", "lm2"]
  cycle = _write_sweep(tmp_path / "c.py", [{"name": "a", "config": "c", "after": ["b"]},
                                           {"name": "b", "config": "c", "after": ["a"]}])
  with pytest.raises(ValueError, match="wait on unknown runs or on each other"):
    sweep.load_sweep(cycle)
  with pytest.raises(ValueError, match="'a': \\['missing'\\]"):
    sweep.load_sweep(_write_sweep(tmp_path / "m.py",
                                  [{"name": "a", "config": "c", "after": ["missing"]}]))
  # run_runs given such a list directly trains nothing and says which runs wait on what.
  with pytest.raises(SystemExit,
                     match="wait on unknown runs or on each other: {'a': \\['missing'\\]}"):
    sweep.run_runs([{"name": "a", "config": "c", "after": ["missing"]}], str(tmp_path / "r"))
  assert not os.path.exists(tmp_path / "r" / "a")


def test_a_failed_run_skips_the_runs_that_need_it(tmp_path, capsys):
  bad = {"name": "tok", "config": "configs/vqvae.py:runlocal", "overrides": {"no_such_key": 1}}
  spec = _write_sweep(tmp_path / "s.py", [bad, {"name": "s2", "config": "c", "after": ["tok"]}])
  with pytest.raises(SystemExit, match="1 run\\(s\\) failed: tok; skipped after them: s2"):
    sweep.run_sweep(spec, str(tmp_path / "runs"))
  assert "s2: skipped, a run it needs failed" in capsys.readouterr().out
  assert not os.path.exists(tmp_path / "runs" / "s2")
  assert "no_such_key" in (tmp_path / "runs" / "tok" / "train.log").read_text()


def test_the_embedded_tradeoff_grid_starts_with_its_largest_codebooks():
  from configs import vqvae
  runs = sweep.load_sweep("configs/sweeps/tradeoff.py:scale=embedded")
  assert [r["name"] for r in runs] == [f"{q}_{2**n}" for n in (14, 12, 10, 8, 6)
                                       for q in ("fsq", "vq")]
  fsq = vqvae.get_config(runs[0]["config"].partition(":")[2])
  assert tuple(fsq.quantizer.levels) == (8, 8, 8, 6, 5)  # The paper's Table 1 for 2^14.
  assert vqvae.get_config(runs[1]["config"].partition(":")[2]).quantizer.codebook_size == 2**14
  levels = sweep.load_sweep("configs/sweeps/levels.py:scale=embedded")
  assert all(r["overrides"] == runs[0]["overrides"] for r in levels)  # The same VQ-VAE runs.


def test_table2_runs_in_pieces_of_chosen_oracles(capsys):
  runs = sweep.load_sweep("configs/sweeps/uvim_table2.py:oracles=oracle_depth_fsq+"
                          "oracle_panoptic_vq_ema_nocontext,lm_seeds=2")
  assert [r["name"] for r in runs] == [
      "oracle_depth_fsq", "lm_depth_fsq_seed0", "oracle_panoptic_vq_ema_nocontext",
      "lm_panoptic_vq_ema_nocontext_seed0", "lm_depth_fsq_seed1",
      "lm_panoptic_vq_ema_nocontext_seed1"]
  assert len(sweep.load_sweep("configs/sweeps/uvim_table2.py")) == 9 * 4
  with pytest.raises(SystemExit, match="no oracle oracle_depth; Table 2 has oracle_depth_fsq"):
    with pytest.MonkeyPatch.context() as patch:
      patch.setattr("sys.argv", ["sweep", "--sweep=configs/sweeps/uvim_table2.py:oracles="
                                 "oracle_depth", "--root=unused", "--print_commands"])
      sweep.main()
  with pytest.raises(SystemExit, match="^error: oracles=oracle_depth: no oracle oracle_depth;"):
    with pytest.MonkeyPatch.context() as patch:  # scripts.reproduce runs the sweep first.
      patch.setattr("sys.argv", ["reproduce", "--sweep=configs/sweeps/uvim_table2.py:oracles="
                                 "oracle_depth", "--root=unused", "--out=unused"])
      reproduce.main()


def test_seeds_copy_the_sweep_and_reproduce_averages_them(tmp_path):
  runs = [{"name": "tok", "config": "c", "overrides": {"lr": 1}},
          {"name": "s2", "config": "c", "after": ["tok"]}]
  spec = _write_sweep(tmp_path / "s.py", runs)
  seeded = sweep.load_sweep(spec, seeds=(0, 2))
  assert [r["name"] for r in seeded] == ["tok", "s2", "tok_seed2", "s2_seed2"]
  assert seeded[0] == runs[0] and seeded[2]["overrides"] == {"lr": 1, "seed": 2}
  assert seeded[3]["after"] == ["tok_seed2"]
  with pytest.raises(Exception, match="distinct integers"):
    sweep.parse_seeds("1,1")
  rows = [{"run": "fsq_64", "quantizer": "fsq", "codebook_size": 64, "eval/recon/psnr": 26.0},
          {"run": "fsq_64_seed1", "quantizer": "fsq", "codebook_size": 64,
           "eval/recon/psnr": 27.0},
          {"run": "fsq_64_seed2", "quantizer": "fsq", "codebook_size": 64,
           "eval/recon/psnr": 28.0},
          {"run": "vq_64", "quantizer": "vq", "codebook_size": 64, "eval/recon/psnr": 25.0}]
  fsq, vq = reproduce.aggregate(rows)
  assert fsq["run"] == "fsq_64" and fsq["seeds"] == 3 and fsq["eval/recon/psnr"] == 27.0
  assert fsq["eval/recon/psnr/sd"] == 1.0 and fsq["eval/recon/psnr/seeds"] == [26.0, 27.0, 28.0]
  assert vq["seeds"] == 1 and "eval/recon/psnr/sd" not in vq
  table = reproduce.write_tables([fsq, vq], str(tmp_path))
  assert "| fsq_64 | fsq | 64 |  |  | 3 | 27.000 ± 1.000 |" in table
  assert "| vq_64 | vq | 64 |  |  | 1 | 25.000 |" in table


def test_the_levels_figure_groups_fsq_runs_by_smallest_level(tmp_path, monkeypatch):
  import matplotlib.figure
  saved = []
  save = matplotlib.figure.Figure.savefig
  monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                      lambda fig, *a, **k: (saved.append(fig), save(fig, *a, **k))[1])
  rows = [{"run": f"fsq_{levels}", "quantizer": "fsq", "codebook_size": size, "levels": levels,
           "min_level": smallest, "eval/recon/psnr": psnr, "eval/recon/psnr/sd": 0.1}
          for levels, size, smallest, psnr in [("3-3-3-3-3", 243, 3, 26.6), ("8-6-5", 240, 5, 26.9),
                                               ("64-64", 4096, 64, 27.2)]]
  rows.append({"run": "vq_256", "quantizer": "vq", "codebook_size": 256, "eval/recon/psnr": 25.0})
  rows.append({"run": "fsq_8-8", "quantizer": "fsq", "codebook_size": 64, "levels": "8-8",
               "min_level": 8, "eval/recon/usage": 1.0})  # No PSNR: not on the PSNR axis.
  path = reproduce.plot(rows, str(tmp_path), "levels")
  assert path.endswith("levels.png") and os.path.getsize(path) > 10_000
  psnr_ax = saved[0].axes[0]
  assert psnr_ax.get_ylabel() == "reconstruction PSNR (dB)"
  # One colour and legend entry per smallest level, in order; VQ and the run without PSNR absent.
  assert [t.get_text() for t in psnr_ax.get_legend().get_texts()] == [
      "min L_i = 3", "min L_i = 5", "min L_i = 64"]
  markers = [line for line in psnr_ax.get_lines() if line.get_marker() == "o"]  # Not the caps.
  assert [line.get_xydata().tolist() for line in markers] == [[[243, 26.6]], [[240, 26.9]],
                                                             [[4096, 27.2]]]
  assert len({tuple(line.get_color()) for line in markers}) == 3
  assert sorted(t.get_text() for t in psnr_ax.texts) == ["3-3-3-3-3", "64-64", "8-6-5"]


def test_seed_copies_read_the_seed_copies_of_the_runs_they_need(tmp_path):
  runs = [{"name": "tok", "config": "c"}, {"name": "tok_big", "config": "c"},
          {"name": "tokens_tok", "tokenize": "tok", "num_examples": 8, "after": ["tok"]},
          {"name": "s2", "after": ["tok", "tokens_tok"],
           "config": "c:tokenizer={root}/tok,token_cache={root}/tokens_tok/tokens",
           "overrides": {"other": "{root}/tok_big", "seed": 0}}]
  seeded = {r["name"]: r for r in sweep.load_sweep(_write_sweep(tmp_path / "s.py", runs),
                                                   seeds=(0, 1))}
  assert seeded["s2"] == runs[3]
  s2 = seeded["s2_seed1"]
  assert s2["config"] == "c:tokenizer={root}/tok_seed1,token_cache={root}/tokens_tok_seed1/tokens"
  assert s2["overrides"] == {"other": "{root}/tok_big", "seed": 1}  # Not a run it waits for.
  tokens = seeded["tokens_tok_seed1"]
  assert tokens["tokenize"] == "tok_seed1" and tokens["after"] == ["tok_seed1"]
  assert sweep.command(tokens, "/R")[2:] == [
      "scripts.tokenize", "--tokenizer=/R/tok_seed1", "--out=/R/tokens_tok_seed1/tokens",
      "--num_examples=8"]
  with pytest.raises(ValueError, match="tokenizes with tok and must wait for it"):
    sweep.load_sweep(_write_sweep(tmp_path / "bad.py", [
        {"name": "tok", "config": "c"}, {"name": "t", "tokenize": "tok", "num_examples": 8}]))


def test_a_tokenize_run_writes_the_cache_and_is_then_finished(tokenizer_workdir, tmp_path,
                                                                  capsys):
  root = tmp_path / "runs"
  os.makedirs(root)
  os.symlink(tokenizer_workdir, root / "tok")
  run = {"name": "tokens_tok", "tokenize": "tok", "num_examples": 8}  # tok: trained already.
  assert not sweep.finished(str(root / "tokens_tok"))
  sweep.run_runs([run], str(root), parallel=1)
  assert sweep.finished(str(root / "tokens_tok"))
  cache = root / "tokens_tok" / sweep.TOKENS
  assert json.loads((cache / "manifest.json").read_text())["num_examples"] == 8
  sweep.run_runs([run], str(root), parallel=1)
  assert "1 of 1 runs finished already; running 0" in capsys.readouterr().out


def test_stage2_seeds_of_one_tokenizer_average_over_the_seeds(tmp_path):
  root = tmp_path / "runs"
  fsq = {"stage": "maskgit.stage1:Stage1", "quantizer": {"name": "fsq", "levels": [8, 5, 5, 5]}}
  _fake_run(root / "tok8_fsq", fsq, [{"step": 20, "eval/recon/psnr": 22.0}])
  for seed, fid in enumerate([10.0, 12.0, 14.0]):
    name = "s2_tok8_fsq" + (f"_seed{seed}" if seed else "")
    _fake_run(root / name, {"tokenizer": str(root / "tok8_fsq")},
              [{"step": 5, "eval/sample/fid": fid}])
  rows = {r["run"]: r for r in reproduce.collect(str(root))}
  assert set(rows) == {"tok8_fsq", "tok8_fsq_seed1", "tok8_fsq_seed2"}
  assert rows["tok8_fsq_seed2"]["stage2_run"] == "s2_tok8_fsq_seed2"
  (row,) = reproduce.aggregate(list(rows.values()))
  assert row["seeds"] == 3 and row["eval/sample/fid/seeds"] == [10.0, 12.0, 14.0]
  assert row["eval/sample/fid/sd"] == 2.0 and row["eval/recon/psnr/sd"] == 0.0
  row["eval/sample/class_consistency"] = 0.5  # Tabled beside the plotted metrics.
  table = reproduce.write_tables([row], str(tmp_path))
  assert "sample/fid | sample/class_consistency |" in table
  assert "perplexity" not in table  # A column only where some run measured it.
  assert "| 3 | 22.000 ± 0.000 | 12.000 ± 2.000 | 0.500 |" in table


def test_the_maskgit_scenes_sweep_shares_each_tokenizer_between_stage2_seeds():
  runs = sweep.load_sweep("configs/sweeps/maskgit_scenes.py:stage2_seeds=2,cache=100")
  assert [r["name"] for r in runs] == [
      "tok8_fsq", "tokens_tok8_fsq", "s2_tok8_fsq", "tok8_vq", "tokens_tok8_vq", "s2_tok8_vq",
      "s2_tok8_fsq_seed1", "s2_tok8_vq_seed1"]
  s2 = runs[-1]
  assert s2["overrides"] == {"seed": 1} and s2["after"] == ["tok8_vq", "tokens_tok8_vq"]
  assert "tokenizer={root}/tok8_vq,token_cache={root}/tokens_tok8_vq/tokens,guidance=0.1" \
      in s2["config"]
  assert sweep.command(runs[1], "/R")[-1] == "--num_examples=100"
  with pytest.raises(ConfigError, match="stage2_seeds=0"):
    sweep.load_sweep("configs/sweeps/maskgit_scenes.py:stage2_seeds=0")


def test_a_longer_stage2_on_the_tokenizers_of_another_root():
  runs = sweep.load_sweep("configs/sweeps/maskgit_scenes.py:tokenizers=/A,stage2_steps=8800,"
                          "stage2_seeds=1")
  assert [r["name"] for r in runs] == ["s2_tok8_fsq", "s2_tok8_vq"]
  assert all(r["after"] == [] for r in runs)  # Nothing to train before them in this root.
  assert runs[0]["overrides"] == {"seed": 0, "total_steps": 8800, "eval_every": 2200}
  assert "tokenizer=/A/tok8_fsq,token_cache=/A/tokens_tok8_fsq/tokens,guidance=0.2" \
      in runs[0]["config"]
  with pytest.raises(ConfigError, match="stage2_steps=0"):
    sweep.load_sweep("configs/sweeps/maskgit_scenes.py:stage2_steps=0")


def test_reproduce_in_pieces_keeps_the_runs_of_earlier_pieces(tmp_path, monkeypatch, capsys):
  fsq = {"quantizer": {"name": "fsq", "levels": [8, 8]}}
  vq = {"quantizer": {"name": "vq", "codebook_size": 64}}
  _fake_run(tmp_path / "a" / "fsq_64", fsq, [{"step": 5, "eval/recon/psnr": 26.0}])
  _fake_run(tmp_path / "a" / "vq_64", vq, [{"step": 5, "eval/recon/psnr": 20.0}])
  _fake_run(tmp_path / "b" / "fsq_64_seed1", fsq, [{"step": 5, "eval/recon/psnr": 28.0}])
  _fake_run(tmp_path / "b" / "vq_64", vq, [{"step": 5, "eval/recon/psnr": 25.0}])
  out = tmp_path / "out"
  for piece in ("a", "b"):  # Two machines: the second has lost the first's runs.
    monkeypatch.setattr("sys.argv", ["reproduce", f"--root={tmp_path / piece}", f"--out={out}"])
    reproduce.main()
  table = capsys.readouterr().out
  assert "| fsq_64 | fsq | 64 | 8-8 | 5 | 2 | 27.000 ± 1.414 |" in table  # Seeds from both.
  assert "| vq_64 | vq | 64 |  | 5 | 1 | 25.000 |" in table  # The rerun replaces it.
  assert [r["run"] for r in json.loads((out / "runs.json").read_text())] == [
      "fsq_64", "fsq_64_seed1", "vq_64"]
