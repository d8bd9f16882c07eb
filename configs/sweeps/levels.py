"""The paper's levels sweep (Fig. 10): FSQ over levels L and dimension d, coloured by min L_i.

  python -m scripts.sweep --sweep=configs/sweeps/levels.py:scale=embedded --root=runs/levels

The same VQ-VAE runs as the trade-off study's embedded scale (configs/sweeps/tradeoff.py).
"""
from configs.sweeps.tradeoff import CPU_OVERRIDES
from fsq.config import parse_arg

# Level sets spanning d = 2..6 and codebook sizes ~2^8..2^12, with min L_i from 3 to 8.
GRIDS = {
    "smoke": [(16, 16), (8, 6, 5)],
    "embedded": [(16, 16), (64, 64), (8, 6, 5), (4, 4, 4, 4), (3, 3, 3, 3, 3), (8, 5, 5, 5),
                 (5, 5, 5, 5, 5), (7, 5, 5, 5, 5), (4, 4, 4, 4, 4, 4), (8, 8, 8, 8)],
}


def get_sweep(arg: str | None = None) -> list[dict]:
  arg = parse_arg(arg, scale="smoke")
  steps = {"smoke": 300, "embedded": 1500}[arg.scale]
  return [{
      "name": "fsq_" + "-".join(map(str, levels)),
      "config": f"configs/vqvae.py:quantizer=fsq,levels={'-'.join(map(str, levels))},"
                "runlocal,res=32",
      "overrides": {"total_steps": steps, "eval_every": steps, "checkpoint_every": steps,
                    **CPU_OVERRIDES},
  } for levels in GRIDS[arg.scale]]
