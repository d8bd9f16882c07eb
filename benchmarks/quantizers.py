"""Quantizer throughput and memory: FSQ vs MaskGIT VQ, and FSQ against a memory copy.

  python -m benchmarks.quantizers            # the table in the README (CPU: minutes)
  python -m benchmarks.quantizers --full     # also the VQ cells over the FLOP budget

Throughput is tokens/s (median of `--repeats` timed calls after a compile-and-warm-up call).
"XLA MiB" is the compiled program's buffer plan (arguments + outputs + temporaries) from
XLA's memory analysis: deterministic, and what bounds the device memory a call needs.
"""
from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.timing import median_seconds
from fsq import FSQ, FSQQuantizer, VectorQuantizer, levels_for_codebook_size

VQ_DIM = 256  # MaskGIT's embedding dimension.
VQ_FLOP_BUDGET = 2**38  # Distance-matmul FLOPs above which a CPU cell is skipped.


def xla_mib(fn, *args) -> float:
  memory = jax.jit(fn).lower(*args).compile().memory_analysis()
  if memory is None:
    return float("nan")
  total = (memory.argument_size_in_bytes + memory.output_size_in_bytes
           + memory.temp_size_in_bytes)
  return total / 2**20


def quantizer_fns(name: str, size: int, tokens: int):
  """(forward, forward+backward, inputs) for one quantizer at one codebook size."""
  key = jax.random.key(0)
  if name == "fsq":
    layer = FSQQuantizer(levels=levels_for_codebook_size(size))
    z = jax.random.normal(key, (tokens, layer.latent_dim))
    variables = {}
  else:
    layer = VectorQuantizer(codebook_size=size, dim=VQ_DIM)
    z = jax.random.normal(key, (tokens, layer.latent_dim))
    variables = layer.init(key, z[:8])

  def forward(variables, z):
    z_q, aux = layer.apply(variables, z)
    return z_q, aux["indices"], aux["loss"]

  def loss(variables, z):
    z_q, aux = layer.apply(variables, z)
    return jnp.mean(z_q**2) + aux["loss"]

  return jax.jit(forward), jax.jit(jax.grad(loss, argnums=(0, 1))), (variables, z)


def quantizer_table(sizes, token_counts, repeats: int, full: bool) -> list[str]:
  rows = ["| quantizer | codebook | tokens | fwd tokens/s | fwd+bwd tokens/s | fwd XLA MiB "
          "| fwd+bwd XLA MiB |", "|---|---|---|---|---|---|---|"]
  for name in ("fsq", "vq"):
    for size in sizes:
      for tokens in token_counts:
        flops = 2 * tokens * size * VQ_DIM
        label = f"| {name} | 2^{int(np.log2(size))} | 2^{int(np.log2(tokens))} |"
        if name == "vq" and flops > VQ_FLOP_BUDGET and not full:
          rows.append(f"{label} skipped: {flops / 1e12:.1f} TFLOP | | | |")
          continue
        forward, backward, args = quantizer_fns(name, size, tokens)
        t_fwd = median_seconds(forward, *args, repeats=repeats)
        t_bwd = median_seconds(backward, *args, repeats=repeats)
        rows.append(f"{label} {tokens / t_fwd:,.0f} | {tokens / t_bwd:,.0f} | "
                    f"{xla_mib(forward, *args):,.0f} | {xla_mib(backward, *args):,.0f} |")
        print(rows[-1], flush=True)
  return rows


def copy_ratio(repeats: int) -> list[str]:
  """FSQ forward (codes + indices, fp32, 2^20 x 5) against copying the bytes it moves.

  Two copies of the same bytes (read z, write codes and int32 indices): a compiled XLA copy,
  which like FSQ allocates fresh output buffers on every call, and numpy copying into a
  preallocated buffer (the floor no function returning new arrays reaches). The three are
  timed interleaved, so machine load and allocator state hit them alike.
  """
  tokens, levels = 2**20, levels_for_codebook_size(2**12)
  fsq = FSQ(levels)
  z = jax.random.normal(jax.random.key(0), (tokens, len(levels)), jnp.float32)
  forward = jax.jit(fsq.__call__)
  xla_copy = jax.jit(lambda z: (jnp.copy(z), jax.lax.bitcast_convert_type(z[:, 0], jnp.int32)))
  moved = z.nbytes * 2 + tokens * 4  # Read z, write codes (fp32) and indices (int32).
  src = np.random.default_rng(0).random(moved // 8 // 2)  # Copy reads and writes half each.
  dst = np.empty_like(src)
  calls = {"fsq": lambda: forward(z), "xla": lambda: xla_copy(z),
           "numpy": lambda: np.copyto(dst, src)}
  times = {name: [] for name in calls}
  for step in range(repeats + 1):
    for name, call in calls.items():
      start = time.perf_counter()
      jax.block_until_ready(call())
      if step:  # The first round compiles and warms up.
        times[name].append(time.perf_counter() - start)
  t = {name: statistics.median(ts) for name, ts in times.items()}
  return [f"FSQ forward, {tokens} tokens x {len(levels)} channels fp32 (codes + indices): "
          f"{t['fsq'] * 1e3:.2f} ms; copying the same {moved / 2**20:.0f} MiB with XLA: "
          f"{t['xla'] * 1e3:.2f} ms (ratio {t['fsq'] / t['xla']:.2f}x, target <= 3x), "
          f"with numpy into a preallocated buffer: {t['numpy'] * 1e3:.2f} ms "
          f"(ratio {t['fsq'] / t['numpy']:.2f}x)"]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--copy_repeats", type=int, default=50)
  parser.add_argument("--full", action="store_true", help="run VQ cells over the budget")
  parser.add_argument("--sizes", default="8,10,12,14,16", help="log2 codebook sizes")
  parser.add_argument("--tokens", default="16,18,20", help="log2 token counts")
  args = parser.parse_args()
  sizes = [2 ** int(s) for s in args.sizes.split(",")]
  token_counts = [2 ** int(t) for t in args.tokens.split(",")]
  print(f"devices: {jax.devices()}  jax {jax.__version__}")
  lines = copy_ratio(args.copy_repeats)
  print(lines[0], flush=True)
  table = quantizer_table(sizes, token_counts, args.repeats, args.full)
  print("\n".join(lines + [""] + table))


if __name__ == "__main__":
  main()
