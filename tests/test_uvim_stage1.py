"""UViM Stage I: the oracle stage through the training loop, its evaluators and frozen copy."""
import os
import shutil

import jax
import numpy as np
import pytest

from configs import uvim_oracle
from fsq.config import apply_overrides
from fsq.stages import make_stage
from fsq.stages.restore import load_frozen
from fsq.train.loop import train
from fsq.train.writers import read_metrics
from train_utils import assert_trees_equal, restore_params

TINY = ["total_steps=4", "batch_size=8", "eval_batch_size=16", "log_every=2", "eval_every=4",
        "checkpoint_every=2", "tensorboard=False", "data.train.image_size=32",
        "data.eval.image_size=32", "data.eval.num_examples=16", "model.image_size=32",
        "model.code_grid=2", "model.width=16", "model.encoder_depth=1", "model.decoder_depth=1",
        "model.mlp_dim=32", "model.num_heads=2", "optax.warmup_steps=1",
        "evals.oracle.network=", "evals.context_only.network=", "evals.baseline.network=",
        "evals.baseline.baseline_examples=16"]


def tiny_config(arg=""):
  config = uvim_oracle.get_config(arg)
  apply_overrides(config, TINY)
  return config


@pytest.fixture(scope="module")
def depth_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("oracle")
  config = tiny_config("task=depth,quantizer=fsq")
  stage = make_stage(config)
  return config, stage, train(stage, config, str(workdir), devices=jax.devices()[:2]), workdir


def test_oracle_trains_and_reports_its_floor_and_baseline(depth_run):
  config, stage, state, workdir = depth_run
  events = read_metrics(str(workdir))
  final = {k: v for e in events if e["step"] == 4 for k, v in e.items()}
  for name in ("oracle", "context_only", "baseline"):
    assert final[f"eval/{name}/rmse"] > 0
    assert (workdir / "images" / f"eval_{name}_predictions_4.png").exists()
  # 16 held-out scenes x 2 x 2 codes over 4375 FSQ codes: at most 64 used.
  assert 1 <= final["eval/oracle/num_used"] <= 64
  assert final["eval/oracle/usage"] == pytest.approx(final["eval/oracle/num_used"] / 4375)
  assert "eval/context_only/usage" not in final  # No codes: the floor has no usage.
  assert [e["step"] for e in events if "train/loss" in e] == [2, 4]


@pytest.mark.slow
def test_a_killed_oracle_resumes_to_the_same_state(depth_run, tmp_path):
  config, _, _, workdir = depth_run
  shutil.copytree(workdir, tmp_path / "run")
  shutil.rmtree(tmp_path / "run" / "checkpoints" / "4")  # Killed between steps 2 and 4.
  train(make_stage(config), config, str(tmp_path / "run"), devices=jax.devices()[:2])
  assert_trees_equal(restore_params(tmp_path / "run", 4), restore_params(workdir, 4))


def test_frozen_oracle_encodes_and_decodes_as_the_stage_predicts(depth_run):
  config, stage, state, workdir = depth_run
  frozen = load_frozen(str(workdir))
  assert frozen.step == 4 and frozen.codebook_size == 4375
  source = __import__("fsq.data", fromlist=["x"]).make_source(config.data.eval.to_dict())
  batch = {k: np.stack([source[i][k] for i in range(4)]) for k in source[0]}
  prediction, indices = jax.device_get(stage.predict(state, batch))
  np.testing.assert_array_equal(frozen.encode(frozen.variables, batch), indices)
  np.testing.assert_allclose(frozen.decode(frozen.variables, indices, batch), prediction,
                             atol=1e-4)


def test_reproduce_tabulates_the_oracle_with_its_floor_baseline_and_picture(depth_run,
                                                                           tmp_path):
  from uvim import results
  _, _, _, workdir = depth_run
  os.symlink(workdir, tmp_path / "oracle_depth_fsq")
  rows = results.collect(str(tmp_path))
  final = {k: v for e in read_metrics(str(workdir)) if e["step"] == 4 for k, v in e.items()}
  assert len(rows) == 1 and rows[0]["quantizer"] == "FSQ 7-5-5-5-5"
  saved = restore_params(workdir, 4)["params"]
  params = sum(int(np.size(x)) for x in jax.tree.leaves(saved))
  assert rows[0]["params"] == params and rows[0]["state"] == 0
  text = results.write(rows, str(tmp_path / "out"))
  line = next(l for l in text.splitlines() if l.startswith("| oracle_depth_fsq"))
  for key in ("oracle", "context_only", "baseline"):
    assert f"{final[f'eval/{key}/rmse']:.3f}" in line
  assert f"{final['eval/oracle/usage']:.2%}" in line
  for name in ("results.md", "results.json", "uvim.png", "oracle_depth_fsq.png"):
    assert (tmp_path / "out" / name).exists()


@pytest.mark.slow
@pytest.mark.parametrize("arg", ["task=colorization,quantizer=vq_ema,codebook_size=64",
                                 "task=panoptic,quantizer=fsq,levels=5-5-5"])
def test_the_other_tasks_and_the_ema_vq_train(arg, tmp_path):
  config = tiny_config(arg)
  apply_overrides(config, ["total_steps=2", "eval_every=2"])
  train(make_stage(config), config, str(tmp_path), devices=jax.devices()[:1])
  final = {k: v for e in read_metrics(str(tmp_path)) if e["step"] == 2 for k, v in e.items()}
  metric = "psnr" if "colorization" in arg else "pq"
  assert all(np.isfinite(final[f"eval/{n}/{metric}"])
             for n in ("oracle", "context_only", "baseline"))
  assert final["eval/oracle/num_used"] >= 1


def test_the_context_ablation_changes_only_the_context():
  with_context = uvim_oracle.get_config("task=panoptic").to_dict()
  without = uvim_oracle.get_config("task=panoptic,context=False").to_dict()
  assert with_context["context"] and not without["context"]
  assert {k: v for k, v in with_context.items() if k != "context"} == {
      k: v for k, v in without.items() if k != "context"}


@pytest.mark.slow
@pytest.mark.parametrize("task", ["depth", "colorization", "panoptic"])
def test_the_paper_variant_builds_the_papers_oracle(task, capsys):
  """UViM's oracle at the paper's widths (eval_shape only): FSQ [7, 5, 5, 5, 5] has no
  codebook; the EMA VQ keeps 4096 x 768 codewords and their counts."""
  import jax.numpy as jnp
  from uvim.stage1 import oracle_from_config
  from uvim.tasks import make_task
  counts = {}
  for quantizer in ("fsq", "vq_ema"):
    config = uvim_oracle.get_config(f"task={task},quantizer={quantizer},variant=paper")
    assert (config.model.image_size, config.model.patch_size, config.model.code_grid) == (
        512, 16, 16)
    assert config.data.train.name == uvim_oracle.PAPER[task][0] and config.batch_size == 1024
    task_plugin = make_task(**config.task)
    model = oracle_from_config(config, task_plugin)
    batch = {"image": jnp.zeros((1, 512, 512, 3), jnp.uint8),
             "depth": jnp.ones((1, 512, 512), jnp.float32),
             "semantic": jnp.zeros((1, 512, 512), jnp.int32),
             "segments": jnp.zeros((1, 512, 512), jnp.int32)}
    variables = jax.eval_shape(model.init, jax.random.key(0), task_plugin.targets(batch),
                               task_plugin.context(batch))
    counts[quantizer] = {k: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(v))
                         for k, v in variables.items()}
  assert set(counts["fsq"]) == {"params"}
  assert counts["vq_ema"]["quantizer_state"] == 4096 * 768 + 4096
  # Beyond the codebook, VQ's codes are 768 wide where FSQ's are 5: the Dense into the
  # quantizer (768 -> d, with bias) and out of it (d -> 768, with bias) differ by
  # (768 - 5) x 769 and (768 - 5) x 768 parameters.
  assert counts["vq_ema"]["params"] - counts["fsq"]["params"] == (768 - 5) * (769 + 768)
  saving = counts["vq_ema"]["params"] + counts["vq_ema"]["quantizer_state"] - counts["fsq"][
      "params"]
  with capsys.disabled():
    print(f"\nUViM {task} oracle at the paper's widths: FSQ {counts['fsq']['params']:,} "
          f"parameters; VQ {counts['vq_ema']['params']:,} + "
          f"{counts['vq_ema']['quantizer_state']:,} codebook state (FSQ saves {saving:,})")


class _Records(list):
  dataset_info = None


def _coco_records(builder, split, **kwargs):
  """Five COCO-panoptic-like records: images of several sizes cut into random segments."""
  del kwargs
  rng = np.random.default_rng(len(split))
  records = _Records()
  for i in range(5):
    height, width = 48 + 8 * i, 64
    ids = rng.choice(np.arange(1, 5000), 6, replace=False)
    segment_map = ids[np.kron(rng.integers(0, 6, (height // 8, width // 8)), np.ones((8, 8), int))]
    segment_map[:8] = 0  # Unlabelled.
    rgb = np.stack([segment_map % 256, segment_map // 256 % 256, segment_map // 256**2], -1)
    records.append({
        "image": rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
        "panoptic_image": rgb.astype(np.uint8),
        "panoptic_objects": {"id": ids, "label": rng.integers(0, 133, 6),
                             "is_crowd": rng.random(6) < 0.2}})
  records.dataset_info = builder.info
  return records


PAPER_TINY = ["total_steps=1", "batch_size=2", "eval_batch_size=4", "eval_every=1",
              "checkpoint_every=1", "log_every=1", "tensorboard=False",
              "data.train.image_size=64", "data.eval.image_size=64", "model.image_size=64",
              "model.code_grid=2", "model.width=16", "model.encoder_depth=1",
              "model.decoder_depth=1", "model.mlp_dim=32", "model.num_heads=2",
              "evals.oracle.network=", "evals.context_only.network=",
              "evals.baseline.network=", "evals.baseline.baseline_examples=4"]


@pytest.mark.slow
@pytest.mark.parametrize("task, metric", [("depth", "rmse"), ("colorization", "psnr"),
                                          ("panoptic", "pq")])
def test_the_paper_variants_tfds_pipeline_trains_and_evaluates_on_mock_data(task, metric,
                                                                             tmp_path):
  """NYU Depth v2 / ImageNet / COCO panoptic (TFDS mock data, 5 examples a split) through the
  paper variant's pipeline, stage and evaluators; only the widths and image size are shrunk
  (the paper's 512 px oracle is checked by eval_shape above)."""
  import tensorflow_datasets as tfds
  config = uvim_oracle.get_config(f"task={task},variant=paper")
  apply_overrides(config, PAPER_TINY)
  # TFDS's random COCO mock draws each per-segment field with its own length; real records (and
  # these) have one table.
  records = {"as_data_source_fn": _coco_records} if task == "panoptic" else {}
  with tfds.testing.mock_data(num_examples=5, policy=tfds.testing.MockPolicy.USE_CODE,
                              **records):
    train(make_stage(config), config, str(tmp_path), devices=jax.devices()[:1])
  final = {k: v for e in read_metrics(str(tmp_path)) if e["step"] == 1 for k, v in e.items()}
  assert np.isfinite(final["train/loss"])
  assert all(np.isfinite(final[f"eval/{n}/{metric}"]) for n in ("oracle", "context_only"))
