"""MaskGIT Stage II: the masked transformer over a frozen Stage I tokenizer's tokens.

  python -m scripts.train --workdir=runs/stage2 \
      --config=configs/maskgit_transformer.py:tokenizer=runs/stage1,runlocal
  python -m scripts.train --workdir=runs/stage2 \
      --config=configs/maskgit_transformer.py:tokenizer=runs/stage1,token_cache=runs/tokens,runlocal

Arguments: tokenizer (the Stage I workdir: its latest checkpoint is loaded, frozen),
token_cache (a directory scripts/tokenize.py wrote from that checkpoint: training reads its
tokens instead of tokenising every batch; evaluation still reads the images; both give the
same tokens, benchmarks/stage2_data.py says which is faster), data and res (the tokenizer's
dataset and image size; a mismatch is an error that names the right values), guidance
(classifier-free guidance weight at evaluation; the paper's best: 0.1 VQ, 0.2 FSQ), runlocal
(a minutes-long CPU version, sized for the 8 x 8-token scenes tokenizer:
configs/maskgit_tokenizer.py:tokens=8; for 16 x 16 tokens add --config.batch_size=16).
"""
import ml_collections

from configs.common import loop_config
from fsq.config import ConfigError, parse_arg
from fsq.train.optim import default_optax

NUM_CLASSES = {"scenes": 4, "digits": 10, "imagenet2012": 1000, "imagenette/160px-v2": 10}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = parse_arg(arg, tokenizer="", token_cache="", data="scenes", res=64, guidance=0.2,
                  runlocal=False)
  if arg.data not in NUM_CLASSES:
    raise ConfigError(f"data={arg.data!r}: choose one of {', '.join(NUM_CLASSES)}.")
  config = ml_collections.ConfigDict(loop_config(
      total_steps=200_000, batch_size=256, eval_batch_size=256, log_every=100, eval_every=10_000,
      checkpoint_every=5000))
  config.stage = "maskgit.stage2:MaskGITStage2"
  config.tokenizer = arg.tokenizer
  evaluation = {"name": arg.data, "split": "validation", "image_size": arg.res}
  train = ({"name": "tokens", "path": arg.token_cache} if arg.token_cache
           else {**evaluation, "split": "train"})
  config.data = {"train": train, "eval": evaluation}
  config.num_classes = NUM_CLASSES[arg.data]
  # arXiv 2309.15505, Sec. 4 (MaskGIT): 24 layers, width 768, 16 heads, MLP 3072, dropout 0.1, post-LN.
  config.model = dict(width=768, depth=24, num_heads=16, mlp_dim=3072, dropout=0.1)
  config.label_smoothing = 0.1
  config.label_dropout = 0.1  # Class tokens replaced by the mask token (CFG).
  # Adam(0.9, 0.96), lr 1e-4, 5k warmup, weight decay 0.045 (applied as AdamW's, decoupled).
  config.optax = default_optax(name="adamw", lr=1e-4, b1=0.9, b2=0.96, weight_decay=0.045,
                               warmup_steps=5000, schedule="cosine")
  config.ema_decay = 0.0
  config.sampling = dict(num_steps=12, choice_temperature=4.5)
  # Sampling metrics: one sample per held-out label (up to num_samples), judged by the scenes
  # network on the scenes and the FID Inception (user-supplied weights) elsewhere.
  network = "scenes" if arg.data == "scenes" else "inception"
  config.evals = {
      "bits": {"type": "fsq.evaluators.compression"},
      "sample": {"type": "fsq.evaluators.sampling", "network": network, "weights": "",
                 "guidance": arg.guidance, "guidance_sweep": (), "num_samples": 50_000,
                 "grid_per_class": 8},
  }
  if arg.runlocal:
    # A CPU run of ~4k tokens a step (batch 64 on 8 x 8 tokens), with no dropout: ~140k
    # examples, 4.7 passes over the README's 30k-scene token cache. On the 8 x 8 tokenizers
    # (README) 2200 steps at lr 2e-3 take 10-26 min on 2 cores, by machine, and give samples of
    # the requested class (best class consistency 0.61 FSQ, 0.77 VQ; chance 0.25); 800 steps
    # at 1e-3 did not.
    config.total_steps, config.batch_size, config.eval_batch_size = 2200, 64, 64
    config.log_every, config.eval_every, config.checkpoint_every = 50, 2200, 275
    config.model = dict(width=128, depth=4, num_heads=4, mlp_dim=512, dropout=0.0)
    config.optax.lr, config.optax.warmup_steps = 2e-3, 100
    config.evals.sample.guidance_sweep = (0.0, 1.0, 3.0, 10.0)
    config.evals.sample.num_samples = 256
    if arg.data == "scenes":
      config.data.eval.num_examples = 512
  config.lock()
  return config
