"""Quantizers with one interface: `module(z, train) -> (z_q, aux)`.

aux always holds "indices" (integer codes, int32) and "loss" (the auxiliary loss to add to
the training objective: 0 for FSQ); VQ variants add their loss terms and statistics. Every
quantizer has `codebook_size` (distinct indices per token) and a `decode_indices` method.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn

from fsq.quantizers.ema_vq import EMAVectorQuantizer
from fsq.quantizers.fsq import FSQ, FSQQuantizer, round_ste, validate_levels
from fsq.quantizers.levels import RECOMMENDED_LEVELS, levels_for_codebook_size
from fsq.quantizers.nearest import entropy_loss, nearest_codes
from fsq.quantizers.usage import CodebookUsage
from fsq.quantizers.vq import VectorQuantizer

QUANTIZERS = {"fsq": FSQQuantizer, "vq": VectorQuantizer, "vq_ema": EMAVectorQuantizer}


def make_quantizer(name: str, **kwargs: Any) -> nn.Module:
  """The quantizer named by a config: "fsq", "vq" (MaskGIT) or "vq_ema" (UViM)."""
  if name not in QUANTIZERS:
    raise ValueError(f"unknown quantizer {name!r}; choose one of {sorted(QUANTIZERS)}.")
  return QUANTIZERS[name](**kwargs)


__all__ = [
    "FSQ", "FSQQuantizer", "VectorQuantizer", "EMAVectorQuantizer", "CodebookUsage",
    "RECOMMENDED_LEVELS", "levels_for_codebook_size", "make_quantizer",
    "nearest_codes", "entropy_loss", "round_ste", "validate_levels", "QUANTIZERS",
]
