"""Table 2 of arXiv 2309.15505 (Sec. 4.2) at embedded scale: UViM oracles and their language models.

  python -m scripts.sweep --sweep=configs/sweeps/uvim_table2.py --root=runs/uvim_table2
  python -m scripts.reproduce --figure=uvim_table2 --root=runs/uvim_table2

Per task, an FSQ oracle with levels [5, 5, 5] (125 codes) and UViM's EMA VQ with 128
codewords (colourisation on an 8 x 8 code grid, the others 4 x 4), then the paper's ablations (depth with VQ without splitting; panoptic without
context, FSQ and VQ); on each, `lm_seeds` Stage II language models (configs/uvim_lm.py
runlocal, seeds 0, 1, ...). Why 125 codes and not the paper's 4375: at 16 codes an image
and 3000 steps, an LM over 4375 codes learns to copy its previous code and its greedy
decodes fall below the context-only floor; over 125 codes it beats the floor
(docs/results/uvim_table2.md). The order is breadth first: every oracle and its seed-0
model, then seeds 1, 2, ...; each run resumes, so the sweep can be run in pieces:
`oracles=oracle_colorization_fsq+oracle_colorization_vq_ema` keeps those oracles and their
language models (about 50 minutes each alone on 2 CPU cores), and scripts.reproduce keeps the
rows of earlier pieces in its output directory.
"""
from configs.sweeps.uvim import ORACLE, lm_run, sweep_run
from configs.uvim_oracle import TASKS
from fsq.config import ConfigError, parse_arg

CODES = {"fsq": "levels=5-5-5", "vq_ema": "codebook_size=128"}


# Colourisation on an 8 x 8 code grid: on the 4 x 4 grid even the oracle's FID (10.6) is worse
# than its context-only decoder's (8.5), so no language model can beat that floor there.
GRID = {"colorization": ",code_grid=8"}


def _oracle(task: str, quantizer: str, suffix: str = "", extra: str = "") -> dict:
  return {"name": f"oracle_{task}_{quantizer}{suffix}", "task": task,
          "config": ORACLE.format(task=task, quantizer=quantizer,
                                  extra=f",{CODES[quantizer]}{GRID.get(task, '')}{extra}")}


def oracles() -> list[dict]:
  """Table 2's oracles: tasks x {FSQ, VQ}, then the paper's ablation rows."""
  return ([_oracle(task, q) for task in TASKS for q in CODES]
          + [_oracle("depth", "vq_ema", "_nosplit", ",split=False")]
          + [_oracle("panoptic", q, "_nocontext", ",context=False") for q in CODES])


def get_sweep(arg: str | None = None) -> list[dict]:
  """Runs as {"name", "config", "overrides", "after"}: each oracle then its seed-0 model, then
  the other seeds."""
  arg = parse_arg(arg, lm_seeds=3, oracles="")
  chosen = oracles()
  if arg.oracles:
    names = arg.oracles.split("+")
    unknown = sorted(set(names) - {o["name"] for o in chosen})
    if unknown:
      raise ConfigError(f"oracles={arg.oracles}: no oracle {', '.join(unknown)}; Table 2 has "
                        f"{', '.join(o['name'] for o in chosen)}.")
    chosen = [o for o in chosen if o["name"] in names]
  runs = []
  for oracle in chosen:
    runs += [sweep_run(oracle)] + [lm_run(oracle, 0)] * (arg.lm_seeds > 0)
  return runs + [lm_run(oracle, seed) for seed in range(1, arg.lm_seeds)
                 for oracle in chosen]
