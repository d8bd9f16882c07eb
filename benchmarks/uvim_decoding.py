"""UViM Stage II decoding: KV-cached greedy decoding against the uncached decoder loop.

  python -m benchmarks.uvim_decoding                      # embedded + 256 codes, small decoder
  python -m benchmarks.uvim_decoding --shapes embedded    # the embedded shape only
  python -m benchmarks.uvim_decoding --full               # also the paper's LM (CPU: very long)

Each shape builds uvim.lm.LanguageModel (random weights, logits kernel included: speed does
not depend on them) with vocab 4375 + 1 (FSQ [7, 5, 5, 5, 5] and the start token,
arXiv 2309.15505, Sec. 4.2) and times uvim.decode.greedy_decode on the encoder output (the
encoder runs once before decoding and is not timed; encoder depth 1). `cached` is one jitted
scan of single-token steps on the KV cache (self-attention keys/values per position, the
cross-attention keys/values of the encoder output projected once); `uncached` re-runs the
full causal decoder over the padded sequence at every position (projecting the encoder
output again each time). Shapes: "embedded" is the embedded UViM (4 x 4 code grid, 32 px
images, patch 4); "256 codes" is UViM's sequence (16 x 16 codes, 512 px, patch 16:
1024 encoder tokens) with a small decoder; "paper" adds UViM's ViT-L decoder (arXiv
2205.10337). Target: cached >= 5x faster than uncached at 256 codes.
"""
from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

from benchmarks.timing import median_seconds
from uvim.decode import greedy_decode
from uvim.lm import LanguageModel

VOCAB = 4375 + 1
SHAPES = {  # name: (codes, image, patch, width, decoder depth, heads, MLP, batch).
    "embedded": (16, 32, 4, 128, 2, 4, 256, 32),
    "256 codes": (256, 512, 16, 256, 4, 4, 1024, 2),
    "paper": (256, 512, 16, 1024, 24, 16, 4096, 1),
}


def row(name: str, repeats: int) -> str:
  seq_len, image, patch, width, depth, heads, mlp, batch = SHAPES[name]
  model = LanguageModel(VOCAB, seq_len, image, patch, width, encoder_depth=1,
                        decoder_depth=depth, mlp_dim=mlp, num_heads=heads)
  images = jax.random.uniform(jax.random.key(0), (batch, image, image, 3), minval=-1, maxval=1)
  variables = jax.jit(model.init)(jax.random.key(1), images[:1],
                                  jnp.zeros((1, seq_len), jnp.int32))
  logits = variables["params"]["decoder"]["logits"]  # Zero-initialised: make it random.
  logits["kernel"] = jax.random.normal(jax.random.key(2), logits["kernel"].shape)
  encoded = jax.jit(lambda v, x: model.apply(v, x, method="encode"))(variables, images)
  t_cached = median_seconds(lambda: greedy_decode(model, variables, encoded), repeats=repeats)
  t_uncached = median_seconds(lambda: greedy_decode(model, variables, encoded, cached=False),
                              repeats=repeats)
  codes = batch * seq_len
  return (f"| {name} | {seq_len} | {width} x {depth}, {heads} heads, MLP {mlp} | "
          f"{encoded.shape[1]} | {batch} | {t_cached:,.3f} | {codes / t_cached:,.0f} | "
          f"{t_uncached:,.3f} | {codes / t_uncached:,.0f} | {t_uncached / t_cached:,.1f}x |")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--shapes", default="embedded,256 codes",
                      help=f"comma-separated, of {list(SHAPES)}")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--full", action="store_true", help="the paper's ViT-L decoder too")
  args = parser.parse_args()
  names = args.shapes.split(",") + (["paper"] if args.full else [])
  print(f"devices: {jax.devices()}  jax {jax.__version__}")
  print("| shape | codes | decoder (width x depth) | encoder tokens | batch | cached s "
        "| cached codes/s | uncached s | uncached codes/s | cached speed-up (target >= 5x "
        "at 256 codes) |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  for name in names:
    print(row(name, args.repeats), flush=True)


if __name__ == "__main__":
  main()
