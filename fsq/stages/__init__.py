"""Stages: the contract (base), the plain VQ-VAE and the scenes classifier, and run loading."""
from fsq.stages.base import Stage, make_stage, stage_class

__all__ = ["Stage", "make_stage", "stage_class"]
