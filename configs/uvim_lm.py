"""UViM Stage II: the language model of a frozen oracle's codes.

  python -m scripts.train --workdir=runs/uvim/lm_depth_fsq \
      --config=configs/uvim_lm.py:oracle=runs/uvim/oracle_depth_fsq,task=depth,runlocal

Arguments: oracle (the Stage I workdir, configs/uvim_oracle.py: its latest checkpoint is
loaded, frozen; its code grid is the LM's sequence), task (the oracle's: it picks the paper's
dataset and colourisation's FID; a mismatch is an error), res (the oracle's image size; a mismatch is an error
that names the right value), runlocal (the embedded scenes, minutes on a CPU), variant (scenes
| paper: UViM's LM at the paper's widths, ViT-L/16 encoder and 24-layer decoder, batch 512,
big_vision's configs/proj/uvim/train_*_pretrained.py; arXiv 2309.15505, Sec. 4.2), model_init
(a ViT .npz in big_vision's layout, e.g. the AugReg ImageNet-21k ViT-L/16 the paper starts
from, as the LM's image encoder: uvim/vit_init.py; its learning rate is then x0.1, as UViM's).

Decoding: `config.temperature` 0 is greedy. The paper variant's colourisation samples at 1.0,
as big_vision's UViM colourisation notebook (configs/proj/uvim/uvim_color_task.ipynb) does; on
the scenes greedy decoding scores better (FID 14.2 against 34.5 sampled at 1.0:
docs/results/uvim_table2.md).
"""
import os

import ml_collections

from configs.common import data_config, loop_config
from configs.uvim_oracle import COLTRAN_FID, PAPER, TASKS
from fsq.config import ConfigError, parse_arg
from fsq.train.optim import default_optax

# The LM's epochs per task in UViM's configs (the oracle's are in configs/uvim_oracle.py).
PAPER_EPOCHS = {"depth": 50, "colorization": 50, "panoptic": 200}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = parse_arg(arg, oracle="", task="depth", res=0, runlocal=False, variant="scenes",
                  model_init="")
  if arg.variant not in ("scenes", "paper"):
    raise ConfigError(f"variant={arg.variant!r}: choose scenes or paper.")
  if arg.task not in TASKS:
    raise ConfigError(f"task={arg.task!r}: choose one of {', '.join(TASKS)}.")
  if arg.runlocal and arg.variant == "paper":
    raise ConfigError("runlocal is the scenes variant: leave out variant=paper.")
  if arg.model_init and not os.path.isfile(arg.model_init):
    raise ConfigError(f"model_init={arg.model_init!r}: no such file (a ViT .npz, "
                      "big_vision's layout).")
  if arg.variant == "paper":
    dataset, examples, _, _ = PAPER[arg.task]
    batch = 512
    config = ml_collections.ConfigDict(loop_config(
        total_steps=examples * PAPER_EPOCHS[arg.task] // batch, batch_size=batch,
        eval_batch_size=256, log_every=100, eval_every=10_000, checkpoint_every=2000))
    crop = {"crop": "inception"} if arg.task == "colorization" else {}
    res = arg.res or 512
    config.data = {"train": {"name": dataset, "split": "train", "image_size": res, **crop},
                   "eval": {"name": dataset, "split": "validation", "image_size": res, **crop}}
    # VTT "large": a ViT-L/16 encoder and a decoder of the same size.
    config.model = dict(patch_size=16, width=1024, encoder_depth=24, decoder_depth=24,
                        mlp_dim=4096, num_heads=16, dropout=0.0)
    warmup, network = 4000, "inception"
  else:
    config = ml_collections.ConfigDict(loop_config(
        total_steps=3000, batch_size=32, eval_batch_size=128, log_every=100, eval_every=3000,
        checkpoint_every=500))
    config.data = data_config("scenes", arg.res or (32 if arg.runlocal else 64),
                              eval_examples=512)
    config.model = dict(patch_size=4 if arg.runlocal else 8, width=128, encoder_depth=2,
                        decoder_depth=2, mlp_dim=256, num_heads=4, dropout=0.0)
    warmup, network = 200, "scenes"
  config.stage = "uvim.stage2:LMStage"
  config.oracle = arg.oracle
  config.task = arg.task
  config.temperature = 1.0 if arg.task == "colorization" and arg.variant == "paper" else 0.0
  config.model_init = arg.model_init
  # big_vision's Adafactor with UViM's LM settings: lr 1e-3, weight decay 1e-6, cosine; a
  # pretrained encoder learns at 0.1 x lr (configs/proj/uvim/train_*_pretrained.py).
  encoder = ("(patch_embedding|encoder_position_embedding|encoder)(/.*)?", 0.1)
  config.optax = default_optax(name="bv_adafactor", lr=1e-3, b1=0.9, beta2_cap=0.95,
                               weight_decay=1e-6, warmup_steps=warmup, schedule="cosine",
                               grad_clip=1.0, lr_mults=(encoder,) if arg.model_init else ())
  config.ema_decay = 0.0
  fid = network if arg.task == "colorization" else ""
  evaluator = {"type": "uvim.evaluator", "network": fid, "weights": "",
               **(COLTRAN_FID if fid and arg.variant == "paper" else {})}
  config.evals = {
      "lm": {**evaluator, "pred": "predict", "agreement": "oracle_codes",
             "show_also": ("predict_oracle", "predict_context_only")},
      "oracle": {**evaluator, "pred": "predict_oracle"},
      "context_only": {**evaluator, "pred": "predict_context_only"},
      "bits": {"type": "fsq.evaluators.compression"},
  }
  config.lock()
  return config
