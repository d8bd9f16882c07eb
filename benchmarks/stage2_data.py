"""MaskGIT Stage II training: tokenising each batch on the fly vs reading a token cache.

  python -m benchmarks.stage2_data --tokenizer=runs/tok_scenes   # a Stage I workdir (scenes)
  python -m benchmarks.stage2_data                                # a throwaway 64 px tokenizer

At the scenes runlocal config (configs/maskgit_transformer.py:tokenizer=...,runlocal), first
scripts/tokenize.py caches --examples training scenes (`cache written`: its one-time cost,
rendering and tokenising). Then one row per way of getting the tokens, on the same examples
(on the fly with data.train.num_examples = --examples): `batch ms` builds one batch on the host
alone (batch_for_step: rendering the scenes vs reading rows of the cache); `step ms` is the
jitted step alone on a batch already on the device (on the fly it runs the tokenizer's
encoder too); `steps/s` runs --steps steps as fsq.train.loop does (train_batches building
batches ahead in a background thread, the state donated, one device), so it counts both and
their overlap; `speed-up` is steps/s over the on-the-fly row's. Medians of --repeats (after one untimed call).

Without --tokenizer, a tokenizer is trained for one step in a temporary directory
(configs/vqvae.py:runlocal at 64 px with levels 8-5-5-5: the scenes tokenizer's 16 x 16 tokens
of 1000 codes); its weights do not matter to the timings, its encoder's cost does (a VQ-VAE
encoder of width 16, not the VQGAN's).
"""
from __future__ import annotations

import argparse
import functools
import itertools
import os
import tempfile
import time

import jax

from benchmarks.timing import median_seconds, median_step_seconds
from configs import maskgit_transformer, vqvae
from fsq import data as data_lib
from fsq.stages import make_stage
from fsq.train.loop import train
from scripts import tokenize


def throwaway_tokenizer(workdir: str) -> str:
  config = vqvae.get_config("runlocal,res=64,levels=8-5-5-5")
  config.total_steps = config.checkpoint_every = config.eval_every = 1
  config.data.eval.num_examples, config.evals.recon.network, config.tensorboard = 16, "", False
  train(make_stage(config), config, workdir)
  return workdir


def timings(tokenizer: str, token_cache: str, examples: int, steps: int, repeats: int
            ) -> tuple[float, float, float]:
  """(batch ms, step ms, loop steps/s) of Stage II with its tokens read from `token_cache`, or
  tokenised on the fly when it is ""."""
  cache = f",token_cache={token_cache}" if token_cache else ""
  config = maskgit_transformer.get_config(f"tokenizer={tokenizer}{cache},runlocal")
  if not token_cache:
    with config.unlocked():
      config.data.train.num_examples = examples
  stage = make_stage(config)
  source = data_lib.make_source(config.data.train)
  kwargs = dict(global_batch_size=config.batch_size, seed=config.seed)
  batch_s = median_seconds(functools.partial(data_lib.batch_for_step, source, 0, **kwargs),
                           repeats=repeats)
  batch = jax.device_put(data_lib.batch_for_step(source, 0, **kwargs))
  state = jax.jit(stage.init)(jax.random.key(0), batch)
  frozen = jax.device_put(stage.frozen_variables())
  step = jax.jit(stage.train_step, donate_argnums=0)
  step_s, state = median_step_seconds(step, state, batch, jax.random.key(0), frozen,
                                      repeats=repeats)
  batches = data_lib.train_batches(source, start_step=0, **kwargs)
  start = time.perf_counter()
  for s, local in itertools.islice(batches, steps):
    state, metrics = step(state, jax.device_put(local), jax.random.key(s), frozen)
  jax.block_until_ready(metrics)
  loop_rate = steps / (time.perf_counter() - start)
  batches.close()
  return batch_s * 1e3, step_s * 1e3, loop_rate


def main(argv: list[str] | None = None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tokenizer", default="", help="a Stage I workdir (default: throwaway)")
  parser.add_argument("--examples", type=int, default=2048, help="scenes cached and trained on")
  parser.add_argument("--steps", type=int, default=100, help="steps of the loop-like timing")
  parser.add_argument("--repeats", type=int, default=10)
  args = parser.parse_args(argv)
  with tempfile.TemporaryDirectory() as tmp:
    tokenizer = args.tokenizer or throwaway_tokenizer(os.path.join(tmp, "tokenizer"))
    start = time.perf_counter()
    cache = tokenize.main([f"--tokenizer={tokenizer}", f"--out={os.path.join(tmp, 'cache')}",
                           f"--num_examples={args.examples}"])
    written = time.perf_counter() - start
    print(f"devices: {jax.devices()}  jax {jax.__version__}; tokenizer: "
          f"{args.tokenizer or 'throwaway (configs/vqvae.py:runlocal, 64 px, 8-5-5-5)'}")
    print(f"cache written: {args.examples} scenes in {written:.1f} s "
          f"({args.examples / written:,.0f} examples/s, with loading and compiling)")
    print("| tokens | batch ms | step ms | steps/s | speed-up |")
    print("|---|---|---|---|---|")
    baseline = None
    for name, path in (("on the fly", ""), ("token cache", cache)):
      batch_ms, step_ms, rate = timings(tokenizer, path, args.examples, args.steps, args.repeats)
      baseline = baseline or rate
      print(f"| {name} | {batch_ms:.1f} | {step_ms:.1f} | {rate:.2f} | {rate / baseline:.2f}x |",
            flush=True)


if __name__ == "__main__":
  main()
