"""UViM Stage I: the oracle (a ViT VQ-VAE of the task's targets, guided by the image).

  python -m scripts.train --config=configs/uvim_oracle.py:task=depth,quantizer=fsq,runlocal \
      --workdir=runs/oracle_depth_fsq
  python -m scripts.train --workdir=runs/oracle_depth_vq_nosplit \
      --config=configs/uvim_oracle.py:task=depth,quantizer=vq_ema,split=False,runlocal

Arguments: task (depth | colorization | panoptic), quantizer (fsq | vq_ema), levels (FSQ;
default the paper's [7, 5, 5, 5, 5]), codebook_size (VQ; default 4096), split (the EMA VQ's
codebook splitting; False is the paper's "VQ without splitting" row), context (False: the
"without context" ablation, no image anywhere in the oracle), code_grid (the side of the code
grid), runlocal (the embedded scenes, minutes on a CPU), variant (scenes | paper: NYU Depth
v2, ImageNet or COCO panoptic through TFDS at 512 px with the paper's widths, batch and
epochs; arXiv 2309.15505, Sec. 4, UViM, and the UViM configs of big_vision).
"""
import ml_collections

from configs.common import data_config, loop_config, quantizer_config
from fsq.config import ConfigError, parse_arg
from fsq.data.scenes import IS_THING, SEMANTIC_NAMES
from fsq.train.optim import default_optax

TASKS = ("depth", "colorization", "panoptic")
# The paper's colourisation FID-5k, ColTran's protocol (big_vision's
# evaluators/proj/uvim/coltran_fid.py): 5k colourised validation images against a disjoint 5k of
# real ones. ColTran takes both blocks in TFDS's interleaved read order (validation images 0-5k
# and 10k-15k as read); these are the same blocks by index, so other images, the same protocol.
COLTRAN_FID = {"data": {"split": "validation[:5000]"},
               "reference": {"split": "validation[10000:15000]"}}
# The paper's data and schedule per task: (TFDS name, train examples, epochs, lr).
PAPER = {"depth": ("nyu_depth_v2", 47_584, 200, 1e-3),
         "colorization": ("imagenet2012", 1_281_167, 100, 4e-4),
         "panoptic": ("coco/2017_panoptic", 118_287, 1000, 4e-4)}


def _task(name: str, variant: str) -> dict:
  """The task plug-in's settings (uvim/tasks)."""
  if name == "depth":
    return {"name": "depth", "num_bins": 256, "min_depth": 1e-3, "max_depth": 10.0}
  if name == "colorization":
    return {"name": "colorization"}
  if variant == "paper":  # COCO: 133 classes + void, up to 100 canonical segments.
    return {"name": "panoptic", "num_classes": 134, "max_segments": 100, "thing_classes": ()}
  return {"name": "panoptic", "num_classes": len(SEMANTIC_NAMES), "max_segments": 8,
          "thing_classes": tuple(i for i, thing in enumerate(IS_THING) if thing)}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = parse_arg(arg, task="depth", quantizer="fsq", levels=(7, 5, 5, 5, 5),
                  codebook_size=4096, split=True, context=True, code_grid=0, runlocal=False,
                  variant="scenes")
  if arg.task not in TASKS:
    raise ConfigError(f"task={arg.task!r}: choose one of {', '.join(TASKS)}.")
  if arg.variant not in ("scenes", "paper"):
    raise ConfigError(f"variant={arg.variant!r}: choose scenes or paper.")
  options = {"split": arg.split} if arg.quantizer == "vq_ema" else {}
  if arg.variant == "paper":
    dataset, examples, epochs, lr = PAPER[arg.task]
    batch = 1024
    config = ml_collections.ConfigDict(loop_config(
        total_steps=examples * epochs // batch, batch_size=batch, eval_batch_size=256,
        log_every=100, eval_every=10_000, checkpoint_every=2000))
    # UViM's views (fsq/data/tfds_sources.py): inception crops and flips for training; NYU's
    # Eigen crop (scored at the sensor's resolution), whole COCO and ImageNet images for eval.
    crop = {"crop": "inception"} if arg.task == "colorization" else {}
    config.data = {"train": {"name": dataset, "split": "train", "image_size": 512, **crop},
                   "eval": {"name": dataset, "split": "validation", "image_size": 512, **crop}}
    # UViM's oracle (big_vision configs/proj/uvim/vqvae_*.py): ViT-B widths, 6 + 12 layers.
    config.model = dict(image_size=512, patch_size=16, code_grid=arg.code_grid or 16,
                        width=768, encoder_depth=6, decoder_depth=12, mlp_dim=3072,
                        num_heads=12)
    vq_dim, network, warmup = 768, "inception", 4000
  else:
    config = ml_collections.ConfigDict(loop_config(
        total_steps=8000, batch_size=32, eval_batch_size=128, log_every=100,
        eval_every=2000, checkpoint_every=500))
    config.data = data_config("scenes", 64, eval_examples=512)
    # A CPU-sized oracle: 64 px, patch 8 (8 x 8 tokens) -> 4 x 4 codes, the paper's 4x fewer
    # codes than tokens.
    config.model = dict(image_size=64, patch_size=8, code_grid=arg.code_grid or 4, width=128,
                        encoder_depth=2, decoder_depth=2, mlp_dim=256, num_heads=4)
    vq_dim, network, warmup, lr = 128, "scenes", 200, 1e-3
    if arg.runlocal:  # 32 px, patch 4: 8 x 8 tokens and 4 x 4 codes again, ~3 steps/s on 2 cores.
      config.total_steps, config.eval_every, config.checkpoint_every = 1500, 1500, 250
      config.data = data_config("scenes", 32, eval_examples=512)
      config.model.image_size, config.model.patch_size = 32, 4
  config.stage = "uvim.stage1:OracleStage"
  config.task = _task(arg.task, arg.variant)
  config.context = arg.context
  config.quantizer = quantizer_config(arg.quantizer, levels=arg.levels,
                                      codebook_size=arg.codebook_size, vq_dim=vq_dim, **options)
  # big_vision's Adafactor with UViM's settings (configs/proj/uvim/vqvae_nyu_depth.py).
  config.optax = default_optax(name="bv_adafactor", lr=lr, b1=0.9, beta2_cap=0.95,
                               weight_decay=1e-5, warmup_steps=warmup, schedule="cosine",
                               grad_clip=1.0)
  config.ema_decay = 0.0
  fid = network if arg.task == "colorization" else ""
  evaluator = {"type": "uvim.evaluator", "network": fid, "weights": "",
               **(COLTRAN_FID if fid and arg.variant == "paper" else {})}
  config.evals = {"oracle": {**evaluator, "pred": "predict",
                             "show_also": ("predict_context_only",)},
                  "context_only": {**evaluator, "pred": "predict_context_only"},
                  "baseline": {**evaluator, "pred": "baseline", "baseline_examples": 256}}
  if arg.runlocal and arg.variant == "paper":
    raise ConfigError("runlocal is the scenes variant: leave out variant=paper.")
  config.lock()
  return config
