"""MaskGIT Stage I training step: images/s, XLA's FLOP count, and the share of matmul peak.

  python -m benchmarks.stage1                           # scenes and ImageNet 128 shapes (CPU: minutes)
  python -m benchmarks.stage1 --imagenet_batch 256      # the paper's batch, on an accelerator

Each row jits one whole Stage I step (generator forward/backward with the GAN and, where its
network is at hand, the perceptual loss; discriminator update with R1; generator EMA) with the
configs' shapes, and times it after a warm-up step (median of --repeats). `GFLOP/step` is
XLA's cost analysis of the compiled step; `of matmul peak` divides the step's achieved
FLOP/s by this machine's measured fp32 matmul throughput (a 2048^3 jnp.matmul), so it says
how far the step is from being matmul-bound.
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.timing import median_step_seconds
from configs import maskgit_tokenizer
from maskgit.stage1 import Stage1


def matmul_flops_per_second(n: int = 2048, repeats: int = 10) -> float:
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  jax.block_until_ready(matmul(a, a))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(matmul(a, a))
    times.append(time.perf_counter() - start)
  return 2 * n**3 / min(times)


def step_row(variant: str, batch_size: int, repeats: int, peak: float) -> str:
  config = maskgit_tokenizer.get_config(f"variant={variant}")
  perceptual = config.losses.perceptual_network
  if variant != "scenes":  # The Inception weights are user-supplied: leave the loss out.
    config.unlock()
    config.losses.perceptual_weight, perceptual = 0.0, "none (user weights)"
  config.unlock()
  config.batch_size = batch_size
  stage = Stage1(config)
  size = config.data.train.image_size
  images = np.random.default_rng(0).integers(0, 256, (batch_size, size, size, 3), np.uint8)
  batch = {"image": jnp.asarray(images)}
  # The EMA starts as the parameters themselves: copy so donation sees distinct buffers.
  state = jax.tree.map(jnp.copy, stage.init(jax.random.key(0), batch))
  compiled = jax.jit(stage.train_step, donate_argnums=0).lower(state, batch, jax.random.key(1), {}).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  flops = float(cost.get("flops", float("nan")))
  t, _ = median_step_seconds(compiled, state, batch, jax.random.key(1), {},
                             repeats=repeats)
  return (f"| {variant} | {size} | {batch_size} | {perceptual} | {batch_size / t:,.1f} | "
          f"{t * 1e3:,.0f} | {flops / 1e9:,.1f} | {flops / t / 1e9:,.1f} | "
          f"{flops / t / peak:.0%} |")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--scenes_batch", type=int, default=16, help="the scenes config's batch")
  parser.add_argument("--imagenet_batch", type=int, default=4,
                      help="batch at the ImageNet 128 shape (the paper: 256)")
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()
  peak = matmul_flops_per_second()
  print(f"devices: {jax.devices()}  jax {jax.__version__}; "
        f"fp32 matmul (2048^3): {peak / 1e9:,.1f} GFLOP/s")
  print("| config | px | batch | perceptual | images/s | ms/step | GFLOP/step | GFLOP/s "
        "| of matmul peak |")
  print("|---|---|---|---|---|---|---|---|---|")
  print(step_row("scenes", args.scenes_batch, args.repeats, peak), flush=True)
  print(step_row("imagenet128", args.imagenet_batch, args.repeats, peak), flush=True)


if __name__ == "__main__":
  main()
