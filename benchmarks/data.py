"""Throughput of the procedural scenes: the generator alone and through the batchers.

  python -m benchmarks.data                  # 32/64/128 px, about a minute on a laptop core
  python -m benchmarks.data --workers 8      # on a machine with more cores

Columns are wall-clock examples/s: `generator` is Scenes.get in one thread (one core); `batch_for_step` adds the
index permutation, per-row generators and stacking (global batch --batch_size, one host); `train_batches` builds the
same batches ahead of the consumer in --workers spawned processes (0: one background thread). `CPU ms/example` is
the generator's process CPU time per scene, which other load on the machine does not inflate. `training eats` is
the examples/s of the fastest tiny training config (configs/vqvae.py:runlocal at that size, its train step alone on
this machine's devices); `ratio` is batch_for_step over it (target: at least 3x, so input is never the bottleneck).
"""
import argparse
import itertools
import os
import time

import jax

from configs import vqvae
from fsq import data
from fsq.stages import make_stage


def examples_per_second(run_one, examples_per_call: int, seconds: float) -> tuple[float, float]:
  """Calls run_one() for about `seconds` after a warm-up call: (examples/s, CPU ms per example) of this process."""
  run_one()
  calls, start, cpu_start = 0, time.perf_counter(), time.process_time()
  while time.perf_counter() - start < seconds:
    run_one()
    calls += 1
  examples = calls * examples_per_call
  return examples / (time.perf_counter() - start), 1000 * (time.process_time() - cpu_start) / examples


def training_consumption(size: int, seconds: float) -> float:
  """Examples/s the fastest tiny training config (the runlocal VQ-VAE) consumes at `size` px."""
  config = vqvae.get_config(f"runlocal,res={size}")
  stage = make_stage(config)
  source = data.make_source(config.data.train)
  batch = data.batch_for_step(source, 0, global_batch_size=config.batch_size, seed=0)
  state = stage.init(jax.random.key(0), batch)
  step = jax.jit(stage.train_step, donate_argnums=0)
  rng = jax.random.key(1)

  def run_one():
    nonlocal state
    state, metrics = step(state, batch, rng, {})
    jax.block_until_ready(metrics)

  return examples_per_second(run_one, config.batch_size, seconds)[0]


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument("--seconds", type=float, default=4.0, help="timing per cell")
  args = parser.parse_args()

  print(f"procedural scenes, examples/s ({os.cpu_count()} CPUs; batch {args.batch_size}; "
        f"train_batches with {args.workers} workers)")
  header = (f"{'px':>5} | {'generator':>10} | {'batch_for_step':>14} | {'train_batches':>13} | "
            f"{'CPU ms/example':>14} | {'training eats':>14} | ratio")
  print(header + "\n" + "-" * len(header))
  for size in args.sizes:
    source = data.make_source({"name": "scenes", "split": "train", "image_size": size})
    index = itertools.count()
    generator, cpu_ms = examples_per_second(lambda: source[next(index) % len(source)], 1, args.seconds)
    step = itertools.count()
    batched, _ = examples_per_second(
        lambda: data.batch_for_step(source, next(step), global_batch_size=args.batch_size, seed=0),
        args.batch_size, args.seconds)
    stream = data.train_batches(source, start_step=0, global_batch_size=args.batch_size, seed=0,
                                num_workers=args.workers)
    next(stream)  # Start-up (process spawn) is not throughput.
    streamed, _ = examples_per_second(lambda: next(stream), args.batch_size, args.seconds)
    stream.close()
    consumed = training_consumption(size, args.seconds)
    print(f"{size:>5} | {generator:>10.0f} | {batched:>14.0f} | {streamed:>13.0f} | {cpu_ms:>14.2f} | "
          f"{consumed:>14.0f} | {batched / consumed:>5.1f}x")


if __name__ == "__main__":
  main()
