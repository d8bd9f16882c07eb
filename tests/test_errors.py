"""A user mistake on scripts.train: a short message saying what to change, a non-zero exit, no
traceback and nothing written to the workdir."""
import os
import sys

import pytest

from fsq.config import check_workdir
from train_utils import ROOT, cli_args, run_cli


def command(config: str, workdir) -> list[str]:
  return [sys.executable, "-m", "scripts.train", f"--config={ROOT}/configs/{config}",
          f"--workdir={workdir}"]


def fails(args, env=None) -> list[str]:
  """The output lines of a scripts.train command that must fail cleanly."""
  result = run_cli(args, env=env)
  output = result.stdout + result.stderr
  assert result.returncode == 1, output[-3000:]
  assert "Traceback" not in output, output[-3000:]
  return output.strip().splitlines()


def test_unknown_key_names_it_and_the_valid_keys(tmp_path):
  lines = fails(cli_args(tmp_path / "run") + ["--config.nope=1"])
  assert lines == ["error: bad config override:",
                   "  nope: the config has no 'nope'; it has batch_size, checkpoint_every, data, "
                   "data_workers, ema_decay, eval_batch_size, eval_every, evals, "
                   "keep_checkpoint_every, keep_checkpoints, log_every, model, optax, quantizer, "
                   "seed, stage, tensorboard, total_steps."]
  assert not os.path.exists(tmp_path / "run")


def test_fsq_levels_beyond_int32_indices_fail_validation(tmp_path):
  lines = fails(command("maskgit_tokenizer.py:runlocal,levels=1000-1000-1000-1000",
                        tmp_path / "run"))
  assert lines[0] == "error: invalid config:"
  assert lines[1].startswith("  quantizer: levels [1000, 1000, 1000, 1000] give 1000000000000 "
                             "codes, more than int32 indices hold (2^31)")
  assert len(lines) == 2 and not os.path.exists(tmp_path / "run")


def test_unprepared_tfds_dataset_in_the_default_data_dir(tmp_path):
  """No data_dir in the config and an empty $TFDS_DATA_DIR: the project's message, not TFDS's
  KeyError on empty splits; one line for the train and eval splits."""
  data_dir = tmp_path / "tfds"
  data_dir.mkdir()
  lines = fails(command("maskgit_tokenizer.py:variant=imagenet128", tmp_path / "run"),
                env={"TFDS_DATA_DIR": str(data_dir)})
  error = lines.index("error: invalid config:")
  assert lines[error + 1:] == [
      "  data.train, data.eval: TFDS dataset 'imagenet2012' (version 5.1.0) is not prepared in "
      "data_dir=None (the TFDS default: $TFDS_DATA_DIR or ~/tensorflow_datasets): expected "
      f"{data_dir}/imagenet2012/5.1.0. Prepare it with `tfds build imagenet2012 "
      "--data_dir=<data_dir> --file_format=array_record` (imagenet2012 also needs "
      "--manual_dir=<the downloaded tars>), or set `data_dir` to a directory that holds it."]
  assert all("WARNING" in line for line in lines[:error])  # TFDS's own, one per builder.
  assert not os.path.exists(tmp_path / "run") and os.listdir(data_dir) == []


def test_workdir_that_is_a_file_is_left_untouched(tmp_path):
  workdir = tmp_path / "file"
  workdir.write_text("not a run")
  lines = fails(cli_args(workdir))
  assert lines == ["error: invalid config:",
                   f"  workdir '{workdir}' is a file; pass a directory (new to start a run, a "
                   "run's to resume)."]
  assert workdir.read_text() == "not a run"
  assert not check_workdir(str(tmp_path)) and "below the file" in check_workdir(str(workdir / "x"))


def test_unwritable_workdir(tmp_path):
  parent = tmp_path / "read_only"
  parent.mkdir()
  parent.chmod(0o555)
  try:
    if os.access(parent, os.W_OK):
      pytest.skip("chmod does not stop this user (root) from writing")
    lines = fails(cli_args(parent / "run"))
    assert lines == ["error: invalid config:",
                     f"  workdir '{parent / 'run'}': '{parent}' is not writable; pass a workdir "
                     "you can write to."]
    assert os.listdir(parent) == []
  finally:
    parent.chmod(0o755)


@pytest.mark.parametrize("arg,message", [
    ("levels=abc", "error: config argument levels='abc' is not a valid tuple (write levels like "
                   "8-5-5-5)"),
    ("quantizer=foo", "error: quantizer='foo': choose one of fsq, vq, vq_ema.")])
def test_config_argument_errors_are_one_line(tmp_path, arg, message):
  assert fails(cli_args(tmp_path / "run", arg)) == [message]
  assert not os.path.exists(tmp_path / "run")


def test_every_config_problem_at_once(tmp_path):
  workdir = tmp_path / "file"
  workdir.write_text("")
  lines = fails(cli_args(workdir, total_steps=0, log_every=0, batch_size=12,
                         eval_batch_size=-8, **{"data.train.name": "nope",
                                                "evals.recon.type": "fsq.evaluators.nope"}))
  assert lines == [
      "error: invalid config:",
      "  total_steps must be positive, got 0.",
      "  log_every must be positive, got 0.",
      "  batch_size=12 must be a positive multiple of the device count 8 (1 process(es)); set "
      "--config.batch_size accordingly.",
      "  eval_batch_size=-8 must be a positive multiple of the device count 8 (1 process(es)); "
      "set --config.eval_batch_size accordingly.",
      "  evals.recon.type='fsq.evaluators.nope' is not a module; set it to one such as "
      "fsq.evaluators.reconstruction.",
      "  data.train: unknown data source 'nope'; known: ['coco/2017_panoptic', 'digits', "
      "'imagenet2012', 'imagenette/160px-v2', 'nyu_depth_v2', 'scenes', 'tokens']",
      f"  workdir '{workdir}' is a file; pass a directory (new to start a run, a run's to resume)."]


def test_a_mistake_found_while_building_the_run_writes_nothing(tmp_path):
  """The evaluators are built in the loop, before the workdir is created."""
  lines = fails(cli_args(tmp_path / "run", **{"evals.recon.network": "nope"}))
  assert lines == ["error: feature network 'nope': choose one of scenes, scenes_seed1, "
                   "inception (or '' for none)."]
  assert not os.path.exists(tmp_path / "run")
