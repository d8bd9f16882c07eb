"""The paper's trade-off study (Fig. 3) at embedded scale: FSQ vs VQ over codebook sizes.

  python -m scripts.sweep --sweep=configs/sweeps/tradeoff.py:scale=embedded --root=runs/tradeoff

Arguments: scale = smoke (minutes: two sizes, a few hundred steps) | embedded (2^6 .. 2^14,
the CPU reproduction) ; stage = vqvae (the plain VQ-VAE; fast) | maskgit (MaskGIT Stage I).
FSQ takes the paper's levels for each size (Table 1); VQ the same number of codewords.
"""
from fsq.config import parse_arg

SIZES = {"smoke": (6, 10), "embedded": (6, 8, 10, 12, 14)}
CONFIGS = {"vqvae": "configs/vqvae.py", "maskgit": "configs/maskgit_tokenizer.py"}


def get_sweep(arg: str | None = None) -> list[dict]:
  """Runs as {"name", "config" (scripts.train's --config), "overrides" (--config.KEY=VALUE)}."""
  arg = parse_arg(arg, scale="smoke", stage="vqvae")
  steps = {"smoke": 300, "embedded": 1500}[arg.scale]
  runs = []
  for log2 in SIZES[arg.scale]:
    for quantizer in ("fsq", "vq"):
      runs.append({
          "name": f"{quantizer}_{2**log2}",
          "config": f"{CONFIGS[arg.stage]}:quantizer={quantizer},codebook_size={2**log2},"
                    "runlocal,res=32",
          "overrides": {"total_steps": steps, "eval_every": steps, "checkpoint_every": steps,
                        "log_every": 50, "model.width": 32, "model.channel_multipliers": "(1,2)",
                        "optax.lr": 3e-3, "data.eval.num_examples": 1024},
      })
  return runs
