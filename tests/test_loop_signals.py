"""What the loop tells a scheduler and a researcher: SIGTERM's exit status, TensorBoard after a
resume, the steps/s of the step log."""
import collections
import os
import shutil
import signal
import subprocess

import pytest

from fsq.stages import make_stage
from fsq.train import loop
from fsq.train.writers import read_metrics
from train_utils import ROOT, cli_args, run_cli, tiny_config


@pytest.mark.slow
def test_sigterm_saves_exits_143_and_the_rerun_finishes(tmp_path):
  """SIGTERM while the first step compiles (the handler is in place before the "compiling"
  line): the run saves after that step, exits 143, and the same command finishes it."""
  args = cli_args(tmp_path, total_steps=50, log_every=5, checkpoint_every=1000, eval_every=1000)
  proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
  lines = []
  for line in proc.stderr:
    lines.append(line)
    if "compiling the train step" in line:
      proc.send_signal(signal.SIGTERM)
      break
  stderr = "".join(lines) + proc.communicate(timeout=300)[1]
  assert proc.returncode == 128 + signal.SIGTERM == 143, stderr[-3000:]
  assert "Traceback" not in stderr and "stopped at step" in stderr
  saved = [int(s) for s in os.listdir(tmp_path / "checkpoints")]
  assert len(saved) == 1 and 1 <= saved[0] < 50

  result = run_cli(args)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"resumed from step {saved[0]}" in result.stderr
  assert os.path.exists(tmp_path / "checkpoints" / "50")
  steps = [m["step"] for m in read_metrics(tmp_path) if "train/loss" in m]
  assert steps == sorted(set(steps)) and steps[-1] == 50
  # The step log: the compile announced before the first step, and a rate without it.
  log = result.stderr[result.stderr.index("compiling the train step"):]
  assert f"step {saved[0] + 1} took" in log and "steps/s  ETA" in log


def _tensorboard_points(workdir) -> collections.Counter:
  """(tag, step) -> how many points all the event files of a run hold."""
  tf = pytest.importorskip("tensorflow")
  folder = os.path.join(workdir, "tensorboard")
  points = collections.Counter()
  for name in os.listdir(folder):
    for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name)):
      points.update((value.tag, event.step) for value in event.summary.value)
  return points


@pytest.mark.slow
def test_a_resumed_run_has_one_tensorboard_point_per_step(tmp_path):
  """A kill after step 8 was logged but before its checkpoint (and mid-write of an event):
  the run resumes from step 4 and logs steps 5..8 again."""
  pytest.importorskip("tensorflow")
  config = tiny_config(total_steps=8, checkpoint_every=4, eval_every=4, tensorboard=True)
  loop.train(make_stage(config), config, str(tmp_path))
  before = _tensorboard_points(tmp_path)
  assert before[("train/loss", 8)] == 1 and before[("eval/recon/psnr", 8)] == 1
  shutil.rmtree(tmp_path / "checkpoints" / "8")
  (event_file,) = os.listdir(tmp_path / "tensorboard")
  with open(tmp_path / "tensorboard" / event_file, "ab") as f:
    f.write(b"\x10\x00\x00\x00")  # A torn record.

  loop.train(make_stage(config), config, str(tmp_path))
  after = _tensorboard_points(tmp_path)
  assert len(os.listdir(tmp_path / "tensorboard")) == 2
  assert after == before  # Every (tag, step) once, steps 2..8 and both evaluations.
  steps = [m["step"] for m in read_metrics(tmp_path) if "train/loss" in m]
  assert steps == [2, 4, 6, 8]


def test_steps_per_second_leave_out_the_compile_and_excluded_time(monkeypatch):
  now = [100.0]
  monkeypatch.setattr(loop.time, "time", lambda: now[0])
  rate = loop._StepRate()
  now[0] += 40  # The first step, compiling.
  assert rate.mark(1) is None
  now[0] += 10  # Steps 2..11: 10 steps in 10 s, with 6 s of evaluation among them.
  rate.exclude(6)
  assert rate.mark(11) == pytest.approx(10 / 4)
  now[0] += 2
  assert rate.mark(13) == pytest.approx(1.0)
