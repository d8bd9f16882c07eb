"""MaskGIT Stage II: the masked transformer over a frozen Stage I tokenizer's tokens.

  python -m scripts.train --workdir=runs/stage2 \
      --config=configs/maskgit_transformer.py:tokenizer=runs/stage1,runlocal

Arguments: tokenizer (the Stage I workdir: its config and latest checkpoint are loaded),
guidance (classifier-free guidance weight at sampling; the paper's best: 0.1 VQ, 0.2 FSQ),
runlocal (a minutes-long CPU version). The data (images and labels) are the tokenizer's.
--config.token_cache=DIR trains on the tokens scripts/tokenize.py cached in DIR (from this
tokenizer's latest checkpoint) instead of tokenising every batch; evaluation still reads the
images. Both give the same tokens; benchmarks/stage2_data.py says which is faster.
"""
import os

import ml_collections

from configs.common import loop_config
from fsq.config import parse_arg
from fsq.train.optim import default_optax
from fsq.train.restore import load_config

NUM_CLASSES = {"scenes": 4, "digits": 10, "imagenet2012": 1000, "imagenette/160px-v2": 10}


def num_tokens(tokenizer: ml_collections.ConfigDict) -> int:
  """Tokens per image of a convolutional tokenizer: its grid is the image over 2^(levels-1)."""
  side = tokenizer.data.train.image_size // 2 ** (len(tokenizer.model.channel_multipliers) - 1)
  return side * side


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = parse_arg(arg, tokenizer="", guidance=0.2, runlocal=False)
  config = ml_collections.ConfigDict(loop_config(
      total_steps=200_000, batch_size=256, eval_batch_size=256, log_every=100, eval_every=10_000,
      checkpoint_every=5000))
  config.stage = "maskgit_stage2"
  config.tokenizer = arg.tokenizer
  config.token_cache = ""  # A scripts/tokenize.py directory: data.train becomes its tokens.
  # A missing tokenizer workdir is reported by validation (fsq.config), not here.
  tokenizer = (load_config(arg.tokenizer)
               if os.path.exists(os.path.join(arg.tokenizer, "config.json")) else None)
  config.data = tokenizer.data.to_dict() if tokenizer else {
      "train": {"name": "scenes", "split": "train", "image_size": 64},
      "eval": {"name": "scenes", "split": "validation", "image_size": 64}}
  config.num_classes = NUM_CLASSES.get(config.data.train.name, 0)
  # The paper (section 4): 24 layers, width 768, 16 heads, MLP 3072, dropout 0.1, post-LN.
  config.model = dict(width=768, depth=24, num_heads=16, mlp_dim=3072, dropout=0.1)
  config.label_smoothing = 0.1
  config.label_dropout = 0.1  # Class tokens replaced by the mask token (CFG).
  # Adam(0.9, 0.96), lr 1e-4, 5k warmup, weight decay 0.045 (applied as AdamW's, decoupled).
  config.optax = default_optax(name="adamw", lr=1e-4, b1=0.9, b2=0.96, weight_decay=0.045,
                               warmup_steps=5000, schedule="cosine")
  config.ema_decay = 0.0
  # Sampling metrics: one sample per held-out label (up to num_eval_samples), judged by the
  # scenes network on the scenes and the FID Inception (user-supplied weights) elsewhere.
  config.sampling = dict(num_steps=12, choice_temperature=4.5, guidance=arg.guidance,
                         guidance_sweep=(), num_eval_samples=50_000, grid_per_class=8)
  config.fid = dict(network="scenes" if config.data.train.name == "scenes" else "inception",
                    weights="")
  if arg.runlocal:
    # A CPU run of ~4k tokens a step (batch 16 on 16 x 16 tokens, 64 on 8 x 8), with no
    # dropout: ~140k examples, 4.7 passes over the README's 30k-scene token cache. On the 8 x 8
    # tokenizers (README) 2200 steps at lr 2e-3 take 10-26 min on 2 cores, by machine, and give
    # samples of the requested class (best class consistency 0.61 FSQ, 0.77 VQ; chance 0.25);
    # 800 steps at 1e-3 did not.
    tokens = num_tokens(tokenizer) if tokenizer else 256
    config.total_steps, config.eval_batch_size = 2200, 64
    config.batch_size = max(16, 4096 // tokens)
    config.log_every, config.eval_every, config.checkpoint_every = 50, 2200, 275
    config.model = dict(width=128, depth=4, num_heads=4, mlp_dim=512, dropout=0.0)
    config.optax.lr, config.optax.warmup_steps = 2e-3, 100
    config.sampling.guidance_sweep, config.sampling.num_eval_samples = (0.0, 1.0, 3.0, 10.0), 256
    if config.data.eval.name == "scenes":
      config.data.eval.num_examples = 512
  config.lock()
  return config
