"""UViM at embedded scale (arXiv 2309.15505, Sec. 4.2, Table 2): oracles, then language models.

  python -m scripts.sweep --sweep=configs/sweeps/uvim.py --root=runs/uvim              # oracles
  python -m scripts.sweep --sweep=configs/sweeps/uvim.py:lm_seeds=3 --root=runs/uvim   # + LMs

Oracles: one per task and quantizer (FSQ [7, 5, 5, 5, 5], UViM's EMA VQ with 4096 codewords);
the paper's ablations (depth with VQ without splitting; panoptic without context, FSQ and VQ);
colourisation on an 8 x 8 code grid; `noise_seeds` more FSQ depth oracles (seed 1, 2, ...)
that measure the oracles' run-to-run spread. Each is configs/uvim_oracle.py's runlocal setting
(5-12 minutes alone on 2 CPU cores). With `lm_seeds` > 0, that many Stage II language models
(configs/uvim_lm.py runlocal, seeds 0, 1, ...) on each Table 2 oracle, each after its oracle.
"""
from configs.uvim_oracle import TASKS
from fsq.config import parse_arg

ORACLE = "configs/uvim_oracle.py:task={task},quantizer={quantizer},runlocal{extra}"


def _oracles(noise_seeds: int) -> list[dict]:
  """The oracle runs, each with its "task" and whether Table 2 puts a language model on it
  ("lm"; not on the noise and code-grid studies of Stage I)."""
  runs = []
  for task in TASKS:
    for quantizer in ("fsq", "vq_ema"):
      runs.append({"name": f"oracle_{task}_{quantizer}", "task": task, "lm": True,
                   "config": ORACLE.format(task=task, quantizer=quantizer, extra="")})
  runs.append({"name": "oracle_depth_vq_ema_nosplit", "task": "depth", "lm": True,
               "config": ORACLE.format(task="depth", quantizer="vq_ema", extra=",split=False")})
  for quantizer in ("fsq", "vq_ema"):
    runs.append({"name": f"oracle_panoptic_{quantizer}_nocontext", "task": "panoptic", "lm": True,
                 "config": ORACLE.format(task="panoptic", quantizer=quantizer,
                                         extra=",context=False")})
  # The paper's 4x token-to-code reduction leaves 8 x 8 pixels a code at 32 px: blotchy
  # colour; an 8 x 8 code grid beside it (docs/results/uvim_oracle.md).
  runs.append({"name": "oracle_colorization_fsq_grid8", "task": "colorization", "lm": False,
               "config": ORACLE.format(task="colorization", quantizer="fsq",
                                       extra=",code_grid=8")})
  for seed in range(1, noise_seeds + 1):
    runs.append({"name": f"oracle_depth_fsq_seed{seed}", "task": "depth", "lm": False,
                 "overrides": {"seed": seed},
                 "config": ORACLE.format(task="depth", quantizer="fsq", extra="")})
  return runs


def lm_run(oracle: dict, seed: int) -> dict:
  """The Stage II language model (configs/uvim_lm.py runlocal) of `oracle`, seed `seed`."""
  return {"name": oracle["name"].replace("oracle_", "lm_", 1) + f"_seed{seed}",
          "config": f"configs/uvim_lm.py:oracle={{root}}/{oracle['name']},"
                    f"task={oracle['task']},runlocal",
          "overrides": {"seed": seed}, "after": [oracle["name"]]}


def sweep_run(run: dict) -> dict:
  """`run` without the keys that only the sweep file reads."""
  return {k: v for k, v in run.items() if k not in ("task", "lm")}


def get_sweep(arg: str | None = None) -> list[dict]:
  """Runs as {"name", "config" (scripts.train's --config), "overrides", "after"}."""
  arg = parse_arg(arg, noise_seeds=1, lm_seeds=0)
  oracles = _oracles(arg.noise_seeds)
  return [sweep_run(run) for run in oracles] + [
      lm_run(oracle, seed) for oracle in oracles if oracle["lm"]
      for seed in range(arg.lm_seeds)]
