"""Claim 4 of arXiv 2309.15505 (Sec. 4.1) on the scenes: MaskGIT Stage II on FSQ and VQ tokens.

  python -m scripts.sweep --sweep=configs/sweeps/maskgit_scenes.py --root=runs/maskgit_scenes
  python -m scripts.reproduce --root=runs/maskgit_scenes --out=docs/results/maskgit_scenes
  python -m scripts.sweep --root=runs/maskgit_scenes_x4 \
      --sweep=configs/sweeps/maskgit_scenes.py:tokenizers=runs/maskgit_scenes,stage2_steps=8800,stage2_seeds=1

Per quantizer (FSQ [8, 5, 5, 5], MaskGIT's VQ with 1024 codewords) one 8 x 8-token scenes
tokenizer (configs/maskgit_tokenizer.py, tokens=8), its token cache of `cache` training scenes
(scripts.tokenize), and `stage2_seeds` Stage II runs on that cache (configs/maskgit_transformer.py
runlocal at each quantizer's guidance; seeds 0, 1, ...: the tokenizer is shared, so the spread is
Stage II's). Breadth first: both tokenizers and their seed-0 Stage II, then the other seeds.
scripts.reproduce averages the Stage II seeds of each tokenizer (mean ± sd per cell).

Arguments: stage2_seeds, cache (scenes in each token cache), stage2_steps (Stage II's length;
with more than runlocal's 2200 it also evaluates every 2200 steps, a curve of sample quality
against training), tokenizers (a root whose tokenizers and caches are reused: the sweep is then
Stage II runs only, e.g. a longer Stage II on the tokenizers of an earlier root).
"""
import functools

from fsq.config import ConfigError, parse_arg

TOKENIZERS = {"fsq": "quantizer=fsq,levels=8-5-5-5", "vq": "quantizer=vq,codebook_size=1024"}
# The guidance each quantizer's Stage II samples at by default (the paper's, Sec. 4.1).
GUIDANCE = {"fsq": 0.2, "vq": 0.1}
RUNLOCAL_STEPS = 2200  # configs/maskgit_transformer.py, runlocal.


def _stage2(quantizer: str, seed: int, steps: int, tokenizers: str) -> dict:
  tokenizer = f"tok8_{quantizer}"
  overrides = {"seed": seed}
  if steps != RUNLOCAL_STEPS:
    overrides.update(total_steps=steps, eval_every=min(steps, RUNLOCAL_STEPS))
  return {"name": f"s2_{tokenizer}" + (f"_seed{seed}" if seed else ""),
          "after": [] if tokenizers else [tokenizer, f"tokens_{tokenizer}"],
          "overrides": overrides,
          "config": f"configs/maskgit_transformer.py:tokenizer={tokenizers or '{root}'}/{tokenizer},"
                    f"token_cache={tokenizers or '{root}'}/tokens_{tokenizer}/tokens,"
                    f"guidance={GUIDANCE[quantizer]},runlocal"}


def get_sweep(arg: str | None = None) -> list[dict]:
  """Runs as {"name", "config" or "tokenize", "overrides", "after"}."""
  arg = parse_arg(arg, stage2_seeds=3, cache=30_000, stage2_steps=RUNLOCAL_STEPS, tokenizers="")
  if min(arg.stage2_seeds, arg.cache, arg.stage2_steps) < 1:
    raise ConfigError(f"stage2_seeds={arg.stage2_seeds}, cache={arg.cache}, "
                      f"stage2_steps={arg.stage2_steps}: each must be >= 1.")
  stage2 = functools.partial(_stage2, steps=arg.stage2_steps, tokenizers=arg.tokenizers)
  if arg.tokenizers:
    return [stage2(q, seed) for seed in range(arg.stage2_seeds) for q in TOKENIZERS]
  runs = []
  for quantizer, levels in TOKENIZERS.items():
    tokenizer = f"tok8_{quantizer}"
    runs += [{"name": tokenizer, "config": f"configs/maskgit_tokenizer.py:{levels},tokens=8"},
             {"name": f"tokens_{tokenizer}", "tokenize": tokenizer, "num_examples": arg.cache,
              "after": [tokenizer]},
             stage2(quantizer, 0)]
  return runs + [stage2(q, seed) for seed in range(1, arg.stage2_seeds) for q in TOKENIZERS]
