"""FSQ: Finite Scalar Quantization and its VQ baselines in JAX/Flax."""
from fsq.quantizers import (FSQ, CodebookUsage, EMAVectorQuantizer, FSQQuantizer,
                            VectorQuantizer, levels_for_codebook_size, make_quantizer)

__all__ = ["FSQ", "FSQQuantizer", "VectorQuantizer", "EMAVectorQuantizer", "CodebookUsage",
           "levels_for_codebook_size", "make_quantizer"]
