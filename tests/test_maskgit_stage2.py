"""MaskGIT Stage II through the training loop, on a tiny frozen tokenizer."""
import os

import matplotlib.image as plt_image
import numpy as np
import pytest

from configs import maskgit_transformer
from fsq.stages import make_stage
from fsq.train.loop import train
from fsq.train.writers import read_metrics


def stage2_config(tokenizer_workdir, arg="", **overrides):
  config = maskgit_transformer.get_config(
      f"tokenizer={tokenizer_workdir},res=16,runlocal{',' + arg if arg else ''}")
  config.total_steps, config.batch_size, config.eval_batch_size = 4, 8, 16
  config.eval_every, config.checkpoint_every, config.log_every, config.tensorboard = 4, 4, 2, False
  config.data.eval.num_examples = 16
  config.model.width, config.model.depth, config.model.num_heads = 32, 1, 2
  config.model.mlp_dim = 64
  config.evals.sample.grid_per_class, config.sampling.num_steps = 2, 4
  for key, value in overrides.items():
    config[key] = value
  return config


@pytest.fixture(scope="module")
def stage2_run(tokenizer_workdir, tmp_path_factory):
  """A 4-step Stage II run with its evaluation, read by several tests: config, stage, state, dir."""
  workdir = tmp_path_factory.mktemp("stage2")
  config = stage2_config(tokenizer_workdir)
  stage = make_stage(config)
  return config, stage, train(stage, config, str(workdir)), workdir


def test_stage2_trains_evaluates_and_samples(stage2_run):
  config, stage, state, workdir = stage2_run
  assert config.data.train.image_size == 16 and config.num_classes == 4
  events = read_metrics(str(workdir))
  final = {k: v for e in events if e["step"] == 4 for k, v in e.items()}
  # 125 codes: an untrained model spends about log2(125) ~ 7 bits per token.
  assert 3.0 < final["eval/bits/bits_per_token"] < 9.0
  np.testing.assert_allclose(final["eval/bits/bits_per_image"],
                             8 * 8 * final["eval/bits/bits_per_token"],
                             rtol=1e-6)  # 8 x 8 tokens per 16 px image.
  assert (workdir / "images" / "eval_sample_samples_4.png").exists()
  # Sampling metrics in the scenes network's space, for guidance 0.2 and the sweep.
  for suffix in ("", "_cfg0", "_cfg1", "_cfg3", "_cfg10"):
    assert final[f"eval/sample/fid{suffix}"] > 0
    assert 0 <= final[f"eval/sample/precision{suffix}"] <= 1
    assert 0 <= final[f"eval/sample/recall{suffix}"] <= 1
    assert 0 <= final[f"eval/sample/class_consistency{suffix}"] <= 1
  images = stage.sample_images(state, np.array([0, 3]), 0.2, batch_size=2)
  assert images.shape == (2, 16, 16, 3) and images.dtype == np.uint8
  # Different labels, different seeds: different samples; the same seed: the same ones.
  np.testing.assert_array_equal(images, stage.sample_images(state, np.array([0, 3]), 0.2, 2))
  assert not np.array_equal(images, stage.sample_images(state, np.array([0, 3]), 0.2, 2, seed=1))


def test_stage2_checkpoints_hold_no_tokenizer_state(stage2_run):
  from train_utils import restore_params
  config, stage, state, workdir = stage2_run
  saved = restore_params(workdir, 4)
  assert set(saved) == {"train", "frozen_step", "frozen_checksum"}
  assert int(saved["frozen_step"]) == stage.tokenizer.step == 2
  stage.check_restored(state)  # The same tokenizer: fine.
  with pytest.raises(ValueError, match="it changed under this run"):
    stage.check_restored(state.replace(frozen_step=state.frozen_step + 1))
  with pytest.raises(ValueError, match="it changed under this run"):
    stage.check_restored(state.replace(frozen_checksum=state.frozen_checksum + 1))


def test_stage2_refuses_data_other_than_its_tokenizers(tokenizer_workdir):
  config = maskgit_transformer.get_config(f"tokenizer={tokenizer_workdir},runlocal")  # 64 px.
  with pytest.raises(ValueError, match="image_size=64.*trained on image_size=16.*res=16"):
    make_stage(config)


def test_sample_script_writes_one_deterministic_grid_per_class(stage2_run, tmp_path):
  from scripts import sample
  run = stage2_run[3]
  args = ["--workdir", str(run), "--per_class", "3", "--columns", "2",
          "--classes", "1,3", "--config.sampling.num_steps=2", "--batch_size", "2"]
  paths = sample.main(args + ["--out", str(tmp_path / "a")])
  assert [os.path.basename(p) for p in paths] == ["class_1.png", "class_3.png"]
  grid = plt_image.imread(paths[0])
  assert grid.shape[:2] == (2 * 16, 2 * 16)  # 3 samples in rows of 2, 16 px each.
  again = sample.main(args + ["--out", str(tmp_path / "b")])
  np.testing.assert_array_equal(plt_image.imread(again[0]), grid)
  with pytest.raises(SystemExit, match="outside"):
    sample.main(["--workdir", str(run), "--out", str(tmp_path), "--classes", "7"])


@pytest.mark.slow
def test_stage2_trains_on_a_maskgit_vqgan_tokenizer(tmp_path):
  """The Stage I VQGAN's workdir is a tokenizer: its EMA generator's indices are the tokens."""
  from test_maskgit_stage1 import tiny_config as vqgan_config
  import jax
  tokenizer = vqgan_config(total_steps=2, eval_every=100, checkpoint_every=2,
                           **{"losses.gan_start_step": 100})
  train(make_stage(tokenizer), tokenizer, str(tmp_path / "vqgan"), devices=jax.devices()[:1])
  config = stage2_config(tmp_path / "vqgan", total_steps=2, eval_every=100, checkpoint_every=2)
  with config.unlocked():
    del config.evals["sample"]
  stage = make_stage(config)
  train(stage, config, str(tmp_path / "s2"))
  assert stage.vocab.codebook_size == 125  # FSQ [5, 5, 5].
  images = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), np.uint8)
  variables = stage.tokenizer.variables
  tokens = stage.tokenizer.tokenize(variables, images)
  assert tokens.shape == (2, 8, 8) and int(tokens.max()) < 125
  assert stage.tokenizer.detokenize(variables, tokens).shape == (2, 16, 16, 3)
  logged = [e for e in read_metrics(str(tmp_path / "s2")) if "train/loss" in e]
  assert [e["step"] for e in logged] == [2] and np.isfinite(logged[0]["train/loss"])
