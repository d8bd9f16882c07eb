"""The training loop: sharding, exact resume, preemption, corrupt checkpoints, NaN, multi-host."""
import json
import os
import signal
import socket
import subprocess
import time

import jax
import numpy as np
import pytest

from fsq.stages import make_stage
from fsq.train.loop import NonFiniteError, train
from fsq.train.writers import read_metrics
from train_utils import (ROOT, assert_trees_equal, cli_args, restore_params, run_cli,
                         tiny_config)


def train_losses(workdir):
  return [m["train/loss"] for m in read_metrics(workdir) if "train/loss" in m]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
  """One tiny 8-step run (scenes-FID, TensorBoard on) read by several tests: stage, state, dir."""
  workdir = tmp_path_factory.mktemp("finished_run")
  config = tiny_config(**{"evals.recon.network": "scenes", "tensorboard": True})
  stage = make_stage(config)
  return stage, train(stage, config, str(workdir)), workdir


def test_run_writes_config_metrics_images_checkpoints(finished_run):
  _, _, workdir = finished_run
  assert json.loads((workdir / "config.json").read_text())["quantizer"]["levels"] == [5, 5, 5]
  events = read_metrics(str(workdir))
  assert [e["step"] for e in events if "train/loss" in e] == [2, 4, 6, 8]
  final = [e for e in events if "eval/recon/usage" in e][-1]
  # 32 held-out scenes x 8 x 8 tokens over the 125 codes of FSQ [5, 5, 5].
  assert final["step"] == 8 and final["eval/recon/num_used"] >= 10
  assert final["eval/recon/usage"] == pytest.approx(final["eval/recon/num_used"] / 125)
  assert 2 ** final["eval/recon/entropy_bits"] == pytest.approx(final["eval/recon/perplexity"])
  assert final["eval/recon/psnr"] > 5
  assert final["eval/recon/fid"] > 0  # Scenes-FID of 8 steps' reconstructions: far from the data.
  assert sorted(os.listdir(workdir / "checkpoints")) == ["4", "8"]
  assert (workdir / "images" / "eval_recon_reconstructions_8.png").exists()


@pytest.mark.parametrize("quantizer", ["fsq", pytest.param("vq_ema", marks=pytest.mark.slow)])
def test_one_device_equals_eight(tmp_path, quantizer):
  arg = "quantizer=vq_ema,codebook_size=64" if quantizer == "vq_ema" else ""
  config = tiny_config(arg, total_steps=4, eval_every=100)
  # SGD: Adam would turn rounding noise on structurally-zero gradients (a conv bias before
  # an instance-wise GroupNorm) into full-size steps, hiding what this test compares.
  config.optax.name, config.optax.lr = "sgd", 0.1
  train(make_stage(config), config, str(tmp_path / "one"), devices=jax.devices()[:1])
  train(make_stage(config), config, str(tmp_path / "eight"), devices=jax.devices()[:8])
  np.testing.assert_allclose(train_losses(tmp_path / "one"), train_losses(tmp_path / "eight"),
                             rtol=2e-5)
  one, eight = restore_params(tmp_path / "one", 4), restore_params(tmp_path / "eight", 4)
  # EMA codebook sums (entries up to ~40) are fp32 sums taken in another order: atol 1e-4.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), one, eight)


def _wait_for(path, proc, timeout=300):
  start = time.time()
  while not os.path.exists(path):
    assert proc.poll() is None, proc.communicate()
    assert time.time() - start < timeout
    time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_same_parameters(tmp_path):
  overrides = dict(total_steps=12, checkpoint_every=2, eval_every=100)
  config = tiny_config(**overrides)
  train(make_stage(config), config, str(tmp_path / "straight"))
  args = cli_args(tmp_path / "killed", **overrides)
  proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  _wait_for(tmp_path / "killed" / "checkpoints" / "6", proc)
  proc.kill()
  proc.wait()
  assert not os.path.exists(tmp_path / "killed" / "checkpoints" / "12")
  result = run_cli(args)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "resumed from step" in result.stderr
  assert_trees_equal(restore_params(tmp_path / "straight", 12),
                     restore_params(tmp_path / "killed", 12))
  steps = [m["step"] for m in read_metrics(tmp_path / "killed") if "train/loss" in m]
  assert steps == sorted(set(steps)) and steps[-1] == 12  # No duplicate events after resume.


@pytest.mark.slow
def test_a_run_killed_during_its_evaluations_runs_only_the_missing_ones(tmp_path):
  config = tiny_config()
  with config.unlocked():  # A second evaluator, every 4 steps: "again".
    config.evals.again = {**config.evals.recon.to_dict(), "every": 4}
  train(make_stage(config), config, str(tmp_path))
  events = read_metrics(str(tmp_path))
  evals = {name: [e for e in events if f"eval/{name}/usage" in e] for name in ("recon", "again")}
  assert [e["step"] for e in evals["recon"]] == [8]
  assert [e["step"] for e in evals["again"]] == [4, 8]
  # The checkpoint at step 8 is written before the evaluations: a kill after the first one
  # leaves its event and not the second's.
  (tmp_path / "metrics.jsonl").write_text(
      "".join(json.dumps(e) + "\n" for e in events if e not in evals["again"][1:]))
  train(make_stage(config), config, str(tmp_path))
  events = read_metrics(str(tmp_path))
  for name in ("recon", "again"):  # The same evaluations of the same state, each logged once.
    assert [e for e in events if f"eval/{name}/usage" in e] == evals[name]
  train(make_stage(config), config, str(tmp_path))  # A finished run is not evaluated again.
  assert read_metrics(str(tmp_path)) == events


def test_sigterm_saves_and_stops(tmp_path):
  args = cli_args(tmp_path, total_steps=100_000, checkpoint_every=100_000, eval_every=100_000)
  proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
  _wait_for(tmp_path / "metrics.jsonl", proc)
  proc.send_signal(signal.SIGTERM)
  _, stderr = proc.communicate(timeout=120)
  assert proc.returncode == 143, stderr[-3000:]  # 128 + SIGTERM: preempted, not finished.
  saved = [int(s) for s in os.listdir(tmp_path / "checkpoints")]
  assert len(saved) == 1 and 2 <= saved[0] < 100_000
  assert "stopped at step" in stderr


@pytest.mark.slow
def test_corrupt_latest_checkpoint_is_skipped(tmp_path, caplog):
  config = tiny_config(total_steps=8, eval_every=100)
  train(make_stage(config), config, str(tmp_path))
  latest = tmp_path / "checkpoints" / "8"
  for root, _, files in os.walk(latest):
    for name in files:
      with open(os.path.join(root, name), "r+b") as f:
        f.truncate(max(0, os.path.getsize(os.path.join(root, name)) // 3))
  config.total_steps = 10
  with caplog.at_level("WARNING", logger="fsq"):
    train(make_stage(config), config, str(tmp_path))
  assert any("checkpoint 8" in r.message and "could not be restored" in r.message
             for r in caplog.records)
  assert os.path.exists(tmp_path / "checkpoints" / "10")
  assert os.path.exists(tmp_path / "corrupt_checkpoints" / "8")


def test_nan_loss_stops_with_step_and_no_nan_checkpoint(tmp_path):
  config = tiny_config(total_steps=50, checkpoint_every=1, eval_every=1000)
  config.optax.lr = 1e12
  config.optax.grad_clip = 0.0
  config.optax.warmup_steps = 0
  with pytest.raises(NonFiniteError, match=r"non-finite .* at step \d+"):
    train(make_stage(config), config, str(tmp_path))
  for step in os.listdir(tmp_path / "checkpoints"):
    state = restore_params(tmp_path, int(step))
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(state))


def _free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
  """Two local processes x 4 fake CPU devices = one process x 8 devices, same batch."""
  overrides = dict(total_steps=4, eval_every=4)
  config = tiny_config(**overrides)
  train(make_stage(config), config, str(tmp_path / "single"))
  port, env = _free_port(), {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
  procs = [subprocess.Popen(
      cli_args(tmp_path / "multi", **overrides) + [
          f"--coordinator_address=localhost:{port}", "--num_processes=2", f"--process_id={i}"],
      cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
      text=True) for i in range(2)]
  for proc in procs:
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
  np.testing.assert_allclose(train_losses(tmp_path / "multi"), train_losses(tmp_path / "single"),
                             rtol=2e-5)
  single = [m for m in read_metrics(tmp_path / "single") if "eval/recon/usage" in m][-1]
  multi = [m for m in read_metrics(tmp_path / "multi") if "eval/recon/usage" in m][-1]
  assert single == pytest.approx(multi, rel=1e-4)


@pytest.mark.slow
def test_training_without_tensorflow(tmp_path):
  """Embedded data, checkpoints and jsonl logging need JAX only (common on GPU boxes)."""
  args = cli_args(tmp_path, total_steps=2, eval_every=2, checkpoint_every=2, tensorboard=True)
  code = ("import sys, runpy; sys.modules['tensorflow'] = sys.modules['tensorboard'] = None; "
          f"sys.argv = {args[2:]!r}; runpy.run_module('scripts.train', run_name='__main__')")
  result = run_cli([args[0], "-c", code])
  assert result.returncode == 0, result.stderr[-3000:]
  assert "eval/recon/psnr" in (tmp_path / "metrics.jsonl").read_text()
  assert os.path.exists(tmp_path / "checkpoints" / "2")
  assert not os.path.exists(tmp_path / "tensorboard")


def test_tensorboard_files_with_tensorflow(finished_run):
  pytest.importorskip("tensorflow")
  assert any(name.startswith("events.out.tfevents")
             for name in os.listdir(finished_run[2] / "tensorboard"))


def test_load_run_and_load_frozen(finished_run, caplog):
  from fsq.stages.restore import load_frozen, load_run
  stage, state, workdir = finished_run
  with caplog.at_level("WARNING", logger="absl"):
    loaded_stage, loaded_state, loaded_config = load_run(str(workdir))
  assert not caplog.records  # Orbax's "read only" warnings are expected, so not shown.
  assert list(loaded_config.quantizer.levels) == [5, 5, 5]
  images = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3)).astype(np.uint8)
  batch = {"image": images}
  x_hat, indices = jax.device_get(stage.reconstruct(state, batch))
  assert indices.shape == (2, 8, 8)
  assert_trees_equal(loaded_stage.reconstruct(loaded_state, batch), (x_hat, indices))
  # The lean frozen copy: the evaluation weights and nothing of the optimizer.
  frozen = load_frozen(str(workdir))
  assert frozen.step == 8 and frozen.codebook_size == 125 and set(frozen.variables) == {"params"}
  assert_trees_equal(frozen.variables["params"], state.eval_params())
  np.testing.assert_array_equal(frozen.tokenize(frozen.variables, images), indices)
  # Eager against jitted: fp32 rounding apart.
  np.testing.assert_allclose(np.clip(frozen.detokenize(frozen.variables, indices), -1, 1), x_hat,
                             atol=1e-5)
