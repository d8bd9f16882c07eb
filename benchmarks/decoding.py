"""MaskGIT decoding: the compiled T-step parallel decode against T forward passes and against
token-by-token decoding of the same transformer.

  python -m benchmarks.decoding                 # scenes shape; ImageNet 256 without token-by-token
  python -m benchmarks.decoding --full          # also ImageNet 256 token by token (CPU: long)

Each shape builds the configs' transformer (random weights: speed does not depend on them)
over its tokenizer's token grid plus the class token: the scenes runlocal transformer on the
8 x 8 (tokens=8) and 16 x 16 scenes grids, the paper's on ImageNet 256's 16 x 16. `parallel`
is maskgit.decoding.parallel_decode (one jitted scan of T steps, sampling, confidence ranking
and re-masking included);
`T forwards` is T times the median of one jitted forward pass at the same batch, the floor
the decode loop can reach; the target ratio is <= 1.2x. `token-by-token` is
sequential_decode (one forward per token, S forwards). `images/s` counts token grids sampled;
`+ decoder` adds that Stage I decoder (configs' VQGAN, FSQ [8, 5, 5, 5]) turning tokens to pixels.
Without guidance; with classifier-free guidance every forward runs on twice the batch.
"""
from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

from benchmarks.timing import median_seconds
from configs import maskgit_tokenizer
from fsq.stages.tokenizer import autoencoder_from_config
from maskgit.decoding import parallel_decode, sequential_decode
from maskgit.transformer import MaskedTransformer, Vocabulary

SHAPES = {  # name: (transformer width, depth, heads, MLP, classes, tokenizer config).
    "scenes 8x8": (128, 4, 4, 512, 4, "variant=scenes,tokens=8"),
    "scenes 16x16": (128, 4, 4, 512, 4, "variant=scenes,tokens=16"),
    "imagenet256": (768, 24, 16, 3072, 1000, "variant=imagenet256"),
}


def decoder_fn(tokenizer: str, batch: int):
  """The tokenizer's jitted decoder, its (params, indices) arguments and its tokens per image."""
  config = maskgit_tokenizer.get_config(f"{tokenizer},levels=8-5-5-5")
  size = config.data.train.image_size
  side = size // 2 ** (len(config.model.channel_multipliers) - 1)  # The tokenizer's grid.
  seq_len = side * side
  vqgan = autoencoder_from_config(config)
  params = vqgan.init(jax.random.key(0), jnp.zeros((1, size, size, 3)))
  indices = jnp.zeros((batch, side, side), jnp.int32)
  decode = jax.jit(lambda p, i: vqgan.apply(p, i, method="decode_indices"))
  return decode, (params, indices), seq_len


def row(name: str, batch: int, steps: int, repeats: int, sequential: bool) -> str:
  width, depth, heads, mlp, classes, tokenizer = SHAPES[name]
  decode, decode_args, seq_len = decoder_fn(tokenizer, batch)
  vocab = Vocabulary(1000, classes)
  model = MaskedTransformer(vocab.size, 1 + seq_len, width, depth, heads, mlp, dropout=0.0)
  ids = jnp.full((batch, 1 + seq_len), vocab.mask_id, jnp.int32)
  params = model.init(jax.random.key(0), ids[:1])
  labels = jnp.arange(batch) % classes

  def logits_fn(p):
    return lambda x: model.apply(p, x)

  forward = jax.jit(lambda p, x: model.apply(p, x))
  parallel = jax.jit(lambda p, key: parallel_decode(logits_fn(p), key, labels, seq_len, vocab,
                                                    num_steps=steps)[-1])
  key = jax.random.key(1)
  t_forward = median_seconds(forward, params, ids, repeats=repeats)
  t_parallel = median_seconds(parallel, params, key, repeats=repeats)
  t_decoder = median_seconds(decode, *decode_args, repeats=repeats)
  if sequential:
    token_by_token = jax.jit(lambda p, key: sequential_decode(logits_fn(p), key, labels,
                                                              seq_len, vocab))
    t_seq = median_seconds(token_by_token, params, key, repeats=1)
    seq_cells = f"{t_seq:,.2f} | {batch / t_seq:,.2f} | {t_seq / t_parallel:,.1f}x |"
  else:
    seq_cells = "skipped (--full) | | |"
  return (f"| {name} | {batch} | {t_parallel:,.3f} | {steps} x {t_forward:,.4f} = "
          f"{steps * t_forward:,.3f} | {t_parallel / (steps * t_forward):.2f}x | "
          f"{batch / t_parallel:,.2f} | {batch / (t_parallel + t_decoder):,.2f} | {seq_cells}")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--scenes_batch", type=int, default=32)
  parser.add_argument("--imagenet_batch", type=int, default=4)
  parser.add_argument("--steps", type=int, default=12)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--full", action="store_true", help="ImageNet 256 token by token too")
  args = parser.parse_args()
  print(f"devices: {jax.devices()}  jax {jax.__version__}")
  print("| shape | batch | parallel s | T forwards s | ratio (target <= 1.2x) | images/s "
        "| images/s + decoder | token-by-token s | its images/s | slower than parallel |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  for name in ("scenes 8x8", "scenes 16x16"):
    print(row(name, args.scenes_batch, args.steps, args.repeats, True), flush=True)
  print(row("imagenet256", args.imagenet_batch, args.steps, args.repeats, args.full),
        flush=True)


if __name__ == "__main__":
  main()
