"""A minutes-long FSQ-vs-VQ comparison on a toy manifold: reconstruction and codebook usage.

  python -m scripts.demo --out runs/demo

A small MLP autoencoder compresses 32-dimensional points lying on a curved 4-dimensional
manifold into one token, with FSQ (the paper's levels) or MaskGIT's VQ (same codebook
size, entropy loss on), for codebook sizes 2^6 .. 2^12. It prints a markdown table of
held-out MSE and codebook usage and saves `demo.png` and `demo.md` in --out.
"""
from __future__ import annotations

import argparse
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from configs.common import quantizer_config
from fsq import CodebookUsage, make_quantizer

DATA_DIM, LATENT_DIM = 32, 4


def toy_manifold(n: int, seed: int) -> np.ndarray:
  """Points sin(W s + b) for s uniform in [-1, 1]^4: a curved 4-d manifold in R^32."""
  rng = np.random.default_rng(0)  # The manifold is fixed; `seed` draws the points.
  w, b = rng.normal(size=(LATENT_DIM, DATA_DIM)) * 1.5, rng.uniform(0, np.pi, DATA_DIM)
  s = np.random.default_rng(seed).uniform(-1, 1, (n, LATENT_DIM))
  return np.sin(s @ w + b).astype(np.float32)


class TokenAutoencoder(nn.Module):
  """MLP encoder -> quantizer (one token) -> MLP decoder."""
  quantizer: nn.Module
  width: int = 256

  @nn.compact
  def __call__(self, x, train: bool = False):
    h = nn.gelu(nn.Dense(self.width)(x))
    z = nn.Dense(self.quantizer.latent_dim)(nn.gelu(nn.Dense(self.width)(h)))
    z_q, aux = self.quantizer(z, train=train)
    h = nn.gelu(nn.Dense(self.width)(z_q))
    return nn.Dense(x.shape[-1])(nn.gelu(nn.Dense(self.width)(h))), aux


def train_and_evaluate(name: str, size: int, steps: int, seed: int = 0) -> dict[str, float]:
  model = TokenAutoencoder(make_quantizer(**quantizer_config(name, codebook_size=size, vq_dim=16)))
  train_x, test_x = toy_manifold(2**16, seed=1), toy_manifold(2**15, seed=2)
  params = model.init(jax.random.key(seed), train_x[:2])["params"]
  tx = optax.adam(optax.warmup_cosine_decay_schedule(0.0, 2e-3, steps // 20, steps))
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, x):
    def loss_fn(params):
      x_hat, aux = model.apply({"params": params}, x, train=True)
      return jnp.mean((x_hat - x) ** 2) + aux["loss"]
    grads = jax.grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  rng = np.random.default_rng(seed)
  for _ in range(steps):
    params, opt_state = step(params, opt_state, train_x[rng.integers(0, len(train_x), 256)])
  x_hat, aux = jax.jit(lambda x: model.apply({"params": params}, x))(test_x)
  usage = CodebookUsage(quantizer.codebook_size)
  usage.update(aux["indices"])
  return {"codebook_size": quantizer.codebook_size, "mse": float(jnp.mean((x_hat - test_x) ** 2)),
          "usage": usage.usage(), "perplexity": usage.perplexity()}


def plot(results: dict[str, list[dict[str, float]]], path: pathlib.Path) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, (ax_mse, ax_usage) = plt.subplots(1, 2, figsize=(9, 3.5))
  for name, rows in results.items():
    sizes = [r["codebook_size"] for r in rows]
    ax_mse.plot(sizes, [r["mse"] for r in rows], "o-", label=name.upper())
    ax_usage.plot(sizes, [r["usage"] for r in rows], "o-", label=name.upper())
  ax_usage.axhline(0.5, color="grey", ls=":", lw=1)
  ax_usage.axhline(1.0, color="grey", ls="--", lw=1)
  for ax, label in ((ax_mse, "held-out MSE"), (ax_usage, "codebook usage")):
    ax.set_xscale("log", base=2)
    ax.set_xlabel("codebook size")
    ax.set_ylabel(label)
    ax.legend()
  ax_mse.set_yscale("log")
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="runs/demo")
  parser.add_argument("--steps", type=int, default=1500)
  parser.add_argument("--sizes", default="6,8,10,12", help="log2 codebook sizes")
  args = parser.parse_args()
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  results = {"fsq": [], "vq": []}
  table = ["| quantizer | codebook size | held-out MSE | usage | perplexity |",
           "|---|---|---|---|---|"]
  for log2 in map(int, args.sizes.split(",")):
    for name in results:
      row = train_and_evaluate(name, 2**log2, args.steps)
      results[name].append(row)
      table.append(f"| {name.upper()} | {row['codebook_size']} | {row['mse']:.4f} | "
                   f"{row['usage']:.1%} | {row['perplexity']:.0f} |")
      print(table[-1], flush=True)
  (out / "demo.md").write_text("\n".join(table) + "\n")
  plot(results, out / "demo.png")
  print("\n".join(table))
  print(f"wrote {out / 'demo.md'} and {out / 'demo.png'}")


if __name__ == "__main__":
  main()
