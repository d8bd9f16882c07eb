"""UViM Stage II: the language model over a frozen oracle, through the loop and evaluators."""
import jax
import numpy as np
import pytest

from configs import uvim_lm
from fsq.config import apply_overrides
from fsq.stages import make_stage
from fsq.train.loop import train
from fsq.train.writers import read_metrics
from test_uvim_stage1 import tiny_config
from train_utils import restore_params

# Two trainings (an oracle, then its LM) and four evaluators: minutes on 2 cores.
pytestmark = pytest.mark.slow

LM_TINY = ["total_steps=4", "batch_size=8", "eval_batch_size=16", "log_every=2", "eval_every=4",
           "checkpoint_every=2", "tensorboard=False", "data.eval.num_examples=16",
           "model.width=16", "model.encoder_depth=1", "model.decoder_depth=1",
           "model.mlp_dim=32", "model.num_heads=2", "optax.warmup_steps=1"]


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
  oracle = tmp_path_factory.mktemp("oracle")
  config = tiny_config("task=depth,quantizer=fsq")
  apply_overrides(config, ["total_steps=2", "eval_every=2", "checkpoint_every=2"])
  train(make_stage(config), config, str(oracle), devices=jax.devices()[:1])
  workdir = tmp_path_factory.mktemp("lm")
  config = uvim_lm.get_config(f"oracle={oracle},task=depth,runlocal")
  apply_overrides(config, LM_TINY)
  stage = make_stage(config)
  return config, stage, train(stage, config, str(workdir), devices=jax.devices()[:2]), workdir


def test_lm_reports_task_metrics_agreement_bits_and_its_oracles_ceiling_and_floor(lm_run):
  config, stage, state, workdir = lm_run
  final = {k: v for e in read_metrics(str(workdir)) if e["step"] == 4 for k, v in e.items()}
  for name in ("lm", "oracle", "context_only"):
    assert final[f"eval/{name}/rmse"] > 0
  assert 0.0 <= final["eval/lm/code_agreement"] <= 1.0
  # 2 x 2 codes a scene: bits/code = bits/scene / 4, and far below log2(4375 + 1) at init-ish.
  assert final["eval/bits/bits_per_token"] == pytest.approx(
      final["eval/bits/bits_per_image"] / 4)
  assert final["eval/bits/bits_per_token"] < np.log2(4376) + 1e-3
  assert (workdir / "images" / "eval_lm_predictions_4.png").exists()
  saved = restore_params(workdir, 4)
  assert set(saved) == {"train", "frozen_step", "frozen_checksum"}
  assert int(saved["frozen_step"]) == stage.oracle.step == 2


def test_lm_prediction_is_the_oracle_decoding_the_lms_greedy_codes(lm_run):
  config, stage, state, _ = lm_run
  from fsq import data
  source = data.make_source(config.data.eval.to_dict())
  batch = {k: np.stack([source[i][k] for i in range(4)]) for k in source[0]}
  prediction, codes = jax.device_get(stage.predict(state, batch))
  assert codes.shape == (4, 2, 2) and codes.min() >= 0 and codes.max() < stage.codebook_size
  np.testing.assert_allclose(
      stage.oracle.decode(stage.oracle.variables, codes, batch), prediction, atol=1e-4)
  oracle_prediction, oracle_codes = jax.device_get(stage.predict_oracle(state, batch))
  np.testing.assert_array_equal(oracle_codes, stage.oracle.encode(stage.oracle.variables, batch))


def test_lm_samples_codes_at_a_temperature_reproducibly(lm_run):
  config, stage, state, _ = lm_run
  from fsq import data
  source = data.make_source(config.data.eval.to_dict())
  batch = {k: np.stack([source[i][k] for i in range(4)]) for k in source[0]}
  sampled_config = config.copy_and_resolve_references()
  apply_overrides(sampled_config, ["temperature=1.0"])
  sampled = make_stage(sampled_config)
  _, codes = jax.device_get(sampled.predict(state, batch))
  _, again = jax.device_get(sampled.predict(state, batch))
  _, greedy = jax.device_get(stage.predict(state, batch))
  np.testing.assert_array_equal(codes, again)  # One key per evaluation: the same draws.
  assert codes.min() >= 0 and codes.max() < stage.codebook_size
  # 4 training steps leave the LM near uniform over 4375 codes: samples are not its argmax.
  assert (codes != greedy).mean() > 0.5


def test_lm_refuses_an_oracle_of_another_task_or_size(lm_run):
  config, _, _, _ = lm_run
  with pytest.raises(ValueError, match="pass task=depth"):
    make_stage(uvim_lm.get_config(f"oracle={config.oracle},task=panoptic,runlocal"))
  with pytest.raises(ValueError, match="res=32"):
    make_stage(uvim_lm.get_config(f"oracle={config.oracle},task=depth,runlocal,res=64"))


def test_the_paper_variant_trains_on_mock_data_from_a_pretrained_vit(tmp_path):
  """configs/uvim_lm.py variant=paper on NYU Depth v2 (TFDS mock data) over a paper-variant
  oracle, its encoder loaded from a ViT .npz made here; widths and image size shrunk."""
  import tensorflow_datasets as tfds
  from configs import uvim_oracle
  from test_uvim_stage1 import PAPER_TINY
  from test_uvim_vit_init import DEPTH, bv_vit, save
  config = uvim_oracle.get_config("task=depth,variant=paper")
  apply_overrides(config, PAPER_TINY)
  vit = save(tmp_path, bv_vit(4))
  with tfds.testing.mock_data(num_examples=5, policy=tfds.testing.MockPolicy.USE_CODE):
    train(make_stage(config), config, str(tmp_path / "oracle"), devices=jax.devices()[:1])
    config = uvim_lm.get_config(f"oracle={tmp_path}/oracle,task=depth,variant=paper,res=64,"
                                f"model_init={vit}")
    apply_overrides(config, PAPER_TINY[:6] + [
        "model.patch_size=4", "model.width=16", f"model.encoder_depth={DEPTH}",
        "model.decoder_depth=1", "model.mlp_dim=32", "model.num_heads=2",
        "evals.lm.network=", "evals.oracle.network=", "evals.context_only.network="])
    stage = make_stage(config)
    state = train(stage, config, str(tmp_path / "lm"), devices=jax.devices()[:1])
  final = {k: v for e in read_metrics(str(tmp_path / "lm")) if e["step"] == 1
           for k, v in e.items()}
  assert np.isfinite(final["train/loss"]) and np.isfinite(final["eval/lm/rmse"])
  assert np.isfinite(final["eval/bits/bits_per_token"])
  # One step at lr 0 (warmup starts at 0) leaves the loaded encoder as it was in the file.
  np.testing.assert_allclose(state.train.params["encoder"]["norm"]["scale"],
                             bv_vit(4)["Transformer/encoder_norm/scale"], atol=1e-6)
