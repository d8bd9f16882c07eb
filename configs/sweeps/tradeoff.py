"""The paper's trade-off study (Fig. 3): FSQ vs VQ over codebook sizes.

  python -m scripts.sweep --sweep=configs/sweeps/tradeoff.py:scale=embedded --root=runs/tradeoff
  python -m scripts.sweep --print_commands --root=/data/tradeoff \
      --sweep=configs/sweeps/tradeoff.py:scale=paper,stage=maskgit,stage2=True

Arguments: scale = smoke (the main job: 2^6 and 2^10, 600 steps, no FID: docs/results/smoke.md) |
embedded (2^6 .. 2^14 on the scenes, the CPU reproduction) | paper (2^4 .. 2^16 on ImageNet 128
with the paper's steps and batch sizes, for accelerators; stage=maskgit) ; stage = vqvae (the plain
VQ-VAE; fast) | maskgit (MaskGIT Stage I) ; stage2 (MaskGIT: also a Stage II run on each
tokenizer, for sampling FID and compression cost); ifsq (also FSQ with iFSQ's bound,
`quantizer.bound=ifsq`, arXiv 2601.17124: runs ifsq_N, a third curve).
FSQ takes the paper's levels for each size (Table 1); VQ the same number of codewords.
"""
from fsq.config import ConfigError, parse_arg

SIZES = {"smoke": (6, 10), "embedded": (6, 8, 10, 12, 14),
         "paper": (4, 6, 8, 9, 10, 11, 12, 14, 16)}
CONFIGS = {"vqvae": "configs/vqvae.py", "maskgit": "configs/maskgit_tokenizer.py"}
# The VQ-VAE at CPU scales: 32 px scenes -> 8 x 8 tokens (each 4 x 4 pixels, so the codebook
# size limits the reconstruction, as in the paper's regime), a small network, lr 3e-3.
STEPS = {"smoke": 600, "embedded": 1500}
# The main job's evaluation: PSNR and usage on 512 scenes, no scenes-FID: on 32 px scenes it
# mostly measures high-frequency artefacts (docs/results/smoke.md).
SMOKE_EVAL = {"evals.recon.network": "", "data.eval.num_examples": 512}
CPU_OVERRIDES = {"log_every": 50, "model.width": 32, "model.channel_multipliers": "(1,2,2)",
                 "optax.lr": 3e-3, "data.eval.num_examples": 1024}


def vqvae_run(quantizer: str, codebook_size: int, steps: int, name: str = "",
              every: int = 0, **overrides) -> dict:
  """A CPU-scale VQ-VAE run on 32 px scenes; quantizer "fsq", "vq" or "ifsq" (FSQ with
  iFSQ's bound); evaluated and checkpointed every `every` steps (default: at the end)."""
  bound = {"quantizer.bound": "ifsq"} if quantizer == "ifsq" else {}
  return {"name": name or f"{quantizer}_{codebook_size}",
          "config": f"configs/vqvae.py:quantizer={'fsq' if quantizer == 'ifsq' else quantizer},"
                    f"codebook_size={codebook_size},runlocal,res=32",
          "overrides": {"total_steps": steps, "eval_every": every or steps,
                        "checkpoint_every": every or steps, **CPU_OVERRIDES, **bound,
                        **overrides}}


def get_sweep(arg: str | None = None) -> list[dict]:
  """Runs as {"name", "config" (scripts.train's --config), "overrides", "after"}."""
  arg = parse_arg(arg, scale="smoke", stage="vqvae", stage2=False, ifsq=False)
  if arg.scale not in SIZES or arg.stage not in CONFIGS:
    raise ConfigError(f"scale={arg.scale!r} stage={arg.stage!r}: choose scale from "
                      f"{', '.join(SIZES)} and stage from {', '.join(CONFIGS)}.")
  if arg.stage != "maskgit" and (arg.scale == "paper" or arg.stage2):
    raise ConfigError("scale=paper and stage2=True are MaskGIT studies: add stage=maskgit.")
  if arg.ifsq and arg.stage != "vqvae":
    raise ConfigError("ifsq=True adds VQ-VAE runs: leave out stage=maskgit.")
  runs = []
  # Largest codebooks first: VQ's entropy loss makes them the slowest runs, so a parallel
  # sweep starts its longest runs first.
  for log2 in sorted(SIZES[arg.scale], reverse=True):
    for quantizer in ("fsq", "vq") + ("ifsq",) * arg.ifsq:
      if arg.stage == "vqvae":
        runs.append(vqvae_run(quantizer, 2**log2, STEPS[arg.scale],
                              **(SMOKE_EVAL if arg.scale == "smoke" else {})))
        continue
      # The scenes config (~12 min a run on 2 cores), its smoke version, or ImageNet 128 with
      # the paper's steps and batch (arXiv 2309.15505, Sec. 4, MaskGIT).
      name = f"{quantizer}_{2**log2}"
      config = {"smoke": ",runlocal", "embedded": "", "paper": ",variant=imagenet128"}[arg.scale]
      runs.append({"name": name, "overrides": {},
                   "config": f"{CONFIGS[arg.stage]}:quantizer={quantizer},"
                             f"codebook_size={2**log2}{config}"})
      if arg.stage2:
        # Stage II on ImageNet 128: 200 epochs, ~1M steps at batch 256 (arXiv 2309.15505,
        # Sec. 4, MaskGIT).
        stage2 = ",data=imagenet2012,res=128" if arg.scale == "paper" else ",runlocal"
        runs.append({"name": f"{name}_stage2", "after": [name],
                     "overrides": {"total_steps": 1_000_000} if arg.scale == "paper" else {},
                     "config": f"configs/maskgit_transformer.py:tokenizer={{root}}/{name},"
                               f"guidance={0.2 if quantizer == 'fsq' else 0.1}{stage2}"})
  return runs
