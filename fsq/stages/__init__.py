"""Stages by config name: each has init, train_step, evaluate and parameters (fsq.train.loop)."""
from __future__ import annotations

import importlib

import ml_collections

# name -> "module:Class"; imported on use so a stage's dependencies load only when run.
STAGES = {
    "vqvae": "fsq.stages.vqvae:VQVAEStage",
    "maskgit_stage1": "maskgit.stage1:Stage1",
    "maskgit_stage2": "maskgit.stage2:MaskGITStage2",
    "scenes_classifier": "fsq.stages.classifier:ClassifierStage",
}


def make_stage(config: ml_collections.ConfigDict):
  if config.stage not in STAGES:
    raise ValueError(f"unknown stage {config.stage!r}; known: {sorted(STAGES)}.")
  module, cls = STAGES[config.stage].split(":")
  return getattr(importlib.import_module(module), cls)(config)
