"""Claim 4 of arXiv 2309.15505 (Sec. 4.1) on the scenes: MaskGIT Stage II on FSQ and VQ tokens.

  python -m scripts.sweep --sweep=configs/sweeps/maskgit_scenes.py --root=runs/maskgit_scenes
  python -m scripts.reproduce --root=runs/maskgit_scenes --out=docs/results/maskgit_scenes

Per quantizer (FSQ [8, 5, 5, 5], MaskGIT's VQ with 1024 codewords) one 8 x 8-token scenes
tokenizer (configs/maskgit_tokenizer.py, tokens=8), its token cache of `cache` training scenes
(scripts.tokenize), and `stage2_seeds` Stage II runs on that cache (configs/maskgit_transformer.py
runlocal at each quantizer's guidance; seeds 0, 1, ...: the tokenizer is shared, so the spread is
Stage II's). Breadth first: both tokenizers and their seed-0 Stage II, then the other seeds.
scripts.reproduce averages the Stage II seeds of each tokenizer (mean ± sd per cell).
"""
from fsq.config import ConfigError, parse_arg

TOKENIZERS = {"fsq": "quantizer=fsq,levels=8-5-5-5", "vq": "quantizer=vq,codebook_size=1024"}
# The guidance each quantizer's Stage II samples at by default (the paper's, Sec. 4.1).
GUIDANCE = {"fsq": 0.2, "vq": 0.1}


def _stage2(quantizer: str, seed: int) -> dict:
  tokenizer = f"tok8_{quantizer}"
  return {"name": f"s2_{tokenizer}" + (f"_seed{seed}" if seed else ""),
          "after": [tokenizer, f"tokens_{tokenizer}"], "overrides": {"seed": seed},
          "config": f"configs/maskgit_transformer.py:tokenizer={{root}}/{tokenizer},"
                    f"token_cache={{root}}/tokens_{tokenizer}/tokens,"
                    f"guidance={GUIDANCE[quantizer]},runlocal"}


def get_sweep(arg: str | None = None) -> list[dict]:
  """Runs as {"name", "config" or "tokenize", "overrides", "after"}."""
  arg = parse_arg(arg, stage2_seeds=3, cache=30_000)
  if arg.stage2_seeds < 1 or arg.cache < 1:
    raise ConfigError(f"stage2_seeds={arg.stage2_seeds}, cache={arg.cache}: both must be >= 1.")
  runs = []
  for quantizer, levels in TOKENIZERS.items():
    tokenizer = f"tok8_{quantizer}"
    runs += [{"name": tokenizer, "config": f"configs/maskgit_tokenizer.py:{levels},tokens=8"},
             {"name": f"tokens_{tokenizer}", "tokenize": tokenizer, "num_examples": arg.cache,
              "after": [tokenizer]},
             _stage2(quantizer, 0)]
  return runs + [_stage2(q, seed) for seed in range(1, arg.stage2_seeds) for q in TOKENIZERS]
