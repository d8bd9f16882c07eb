"""MaskGIT Stage I: the VQGAN tokenizer with FSQ or VQ (arXiv 2309.15505, Sec. 4, MaskGIT).

  python -m scripts.train --config=configs/maskgit_tokenizer.py:quantizer=fsq,levels=8-5-5-5 \
      --workdir=runs/tok_fsq
  python -m scripts.train --workdir=runs/tok_vq \
      --config=configs/maskgit_tokenizer.py:quantizer=vq,codebook_size=1024,variant=imagenet256

Arguments: quantizer (fsq | vq), levels (FSQ, e.g. 8-5-5-5), codebook_size (VQ; or FSQ with
the paper's levels for that size when levels is not given), variant, runlocal (a minutes-long
version of the same run), tokens (scenes: the token grid's side, 16 or 8). Variants:
  scenes       64 px procedural scenes, 16 x 16 tokens (8 x 8 with tokens=8: each token then
               covers 8 x 8 pixels, a 4x shorter sequence for Stage II), small widths: trains
               on a CPU.
  imagenet128  the trade-off study (Fig. 3): 128 px, batch 256, ~500k steps (100 epochs).
  imagenet256  FSQ [8,5,5,5] vs VQ 1024 (the 256 px results): 256 px, batch 512, 1M steps,
               16 x 16 tokens.
The ImageNet variants read TFDS imagenet2012 (prepared as array_record, see docs/data.md).
"""
import ml_collections

from configs.common import data_config, loop_config, quantizer_config, reconstruction_eval
from fsq.config import ConfigError, parse_arg
from fsq.train.optim import default_optax

VARIANTS = ("scenes", "imagenet128", "imagenet256")


def _imagenet(config: ml_collections.ConfigDict, image_size: int) -> None:
  """The paper's recipe; what the paper leaves open is marked as a guess."""
  config.data = {"train": {"name": "imagenet2012", "split": "train", "image_size": image_size},
                 "eval": {"name": "imagenet2012", "split": "validation",
                          "image_size": image_size}}
  # Public MaskGIT tokenizer: /16, so 16 x 16 tokens at 256 px (and, a guess, 8 x 8 at 128 px).
  config.model = dict(width=128, channel_multipliers=(1, 1, 2, 2, 4), num_res_blocks=2,
                      mid_blocks=True)
  # StyleGAN's widths (channel_multiplier 1) with blur-pool resampling, as MaskGIT's config.
  config.discriminator = dict(base_width=64, max_width=512, blur_filter_size=4)
  config.losses = dict(
      reconstruction="l2",  # Guess: the paper does not say; L2 is MaskGIT/MAGVIT's usual.
      # MaskGIT's perceptual network is not public; the stand-in is the FID Inception's maps
      # (fsq/evaluators/networks.py) from the converted weights file (docs/evaluators.md).
      perceptual_weight=0.1, perceptual_network="inception", perceptual_weights="",
      perceptual_input="rgb",
      g_adversarial_weight=0.1,  # Non-saturating loss.
      r1_weight=10.0,
      gan_start_step=0,  # Guess: the paper names no delayed discriminator start.
      lecam_weight=0.0,  # Not in MaskGIT (MAGVIT uses 0.001).
      lecam_decay=0.999)
  config.optax = default_optax(name="adam", lr=1e-4, b1=0.0, b2=0.99, warmup_steps=2000,
                               schedule="constant")
  config.d_optax = default_optax(name="adam", lr=1e-4, b1=0.0, b2=0.99, warmup_steps=2000,
                                 schedule="constant")
  config.ema_decay = 0.999
  config.evals = {"recon": reconstruction_eval("inception")}  # Reconstruction FID on pool3.


def _scenes(config: ml_collections.ConfigDict, tokens: int) -> None:
  """A CPU-sized tokenizer: 64 px -> 16 x 16 (or 8 x 8) tokens, ~12 minutes on 2 free cores.

  Deviations from the paper, for that budget: narrow nets (the full-resolution level is the
  costly one, so it gets the fewest channels), one residual block per level, a higher learning
  rate with b1 = 0.9 and cosine decay, a faster generator EMA, and the GAN (with a tiny
  discriminator) only for the second half of the run. The perceptual loss reads the maps of a
  second scenes network (seed 1), not the judge's (seed 0, which scores the tokenizer by
  scenes-FID and class consistency): on the judge, the 8 x 8 tokenizer learnt to paint the
  red-blue edge patterns that network reads as shapes, which inflated its scores while no real
  scene looks like them (docs/results/maskgit_scenes.md). Its weight is 0.03 for 16 x 16 tokens
  (with FSQ [8, 5, 5, 5] at 1000 steps 23.6 dB held-out PSNR, against 22.2 dB at 0.1, where it
  outweighs the L2 loss) and 0.003 for 8 x 8 tokens, where each token's 8 x 8 pixels leave the
  decoder more to invent and 0.03 gave those stripes. Usage is counted over 2048 held-out
  scenes (~500k tokens for the 1000 codes).
  """
  config.data = data_config("scenes", 64, eval_examples=2048)
  # One more (cheap, 8 x 8) level of the widest width halves the token grid's side.
  multipliers = {16: (1, 2, 4), 8: (1, 2, 4, 4)}
  if tokens not in multipliers:
    raise ConfigError(f"tokens={tokens}: the scenes tokenizer makes 16 x 16 or 8 x 8 tokens.")
  config.model = dict(width=16, channel_multipliers=multipliers[tokens], num_res_blocks=1,
                      mid_blocks=True)
  config.discriminator = dict(base_width=4, max_width=32, blur_filter_size=4)
  config.losses = dict(reconstruction="l2", perceptual_weight={16: 0.03, 8: 0.003}[tokens],
                       perceptual_network="scenes_seed1", perceptual_weights="",
                       perceptual_input="rgb",
                       g_adversarial_weight=0.1, r1_weight=10.0, gan_start_step=500,
                       lecam_weight=0.0, lecam_decay=0.999)
  config.optax = default_optax(name="adam", lr=1e-3, b1=0.9, b2=0.99, warmup_steps=200,
                               schedule="cosine", end_factor=0.05)
  config.d_optax = default_optax(name="adam", lr=1e-4, b1=0.0, b2=0.99, warmup_steps=100,
                                 schedule="constant")
  config.ema_decay = 0.99
  # Scenes-FID and class consistency: the judge network, not the perceptual loss's.
  config.evals = {"recon": reconstruction_eval("scenes")}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = parse_arg(arg, quantizer="fsq", levels=(), codebook_size=1024, variant="scenes",
                  tokens=16, runlocal=False)
  if arg.variant not in VARIANTS:
    raise ConfigError(f"variant={arg.variant!r}: choose one of {', '.join(VARIANTS)}.")
  if arg.variant == "scenes":
    config = ml_collections.ConfigDict(loop_config(
        total_steps=1000, batch_size=16, eval_batch_size=128, log_every=100, eval_every=500,
        checkpoint_every=500))
    _scenes(config, arg.tokens)
  else:
    config = ml_collections.ConfigDict(loop_config(
        total_steps=500_000 if arg.variant == "imagenet128" else 1_000_000,
        batch_size=256 if arg.variant == "imagenet128" else 512, eval_batch_size=256,
        log_every=100, eval_every=20_000, checkpoint_every=5000))
    _imagenet(config, 128 if arg.variant == "imagenet128" else 256)
  config.stage = "maskgit.stage1:Stage1"
  config.quantizer = quantizer_config(arg.quantizer, levels=arg.levels,
                                      codebook_size=arg.codebook_size,
                                      vq_dim=32 if arg.variant == "scenes" else 256)
  if arg.runlocal:
    config.total_steps, config.batch_size, config.eval_batch_size = 200, 8, 32
    config.log_every, config.eval_every, config.checkpoint_every = 20, 100, 100
    config.losses.gan_start_step = 100
    config.losses.perceptual_weight = 0.0  # A smoke run: no perceptual network.
    config.optax.warmup_steps = config.d_optax.warmup_steps = 20
    config.model.width, config.discriminator.base_width = 8, 4
    if arg.variant == "scenes":
      config.data.eval.num_examples = 128
  config.lock()
  return config
