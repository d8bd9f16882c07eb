"""Collects a sweep's runs into CSV and markdown tables and the paper's plots.

  python -m scripts.reproduce --root=runs/tradeoff --out=results/tradeoff            # Fig. 3
  python -m scripts.reproduce --root=runs/levels --out=results/levels --figure=levels  # Fig. 10
  python -m scripts.reproduce --root=runs/uvim --out=docs/results/uvim --figure=uvim  # Table 2
  python -m scripts.reproduce --sweep=configs/sweeps/tradeoff.py:scale=smoke --root=runs/smoke \
      --out=runs/smoke/results    # runs (or resumes) the sweep first: one command per figure

Each run's final evaluation (the last event of its metrics.jsonl with eval/ metrics) becomes
one row. `tradeoff` plots each metric against codebook size for FSQ and VQ (usage with the
100% and 50% lines); `levels` plots FSQ runs coloured by their smallest level; `uvim` writes
UViM's per-task table, figure and pictures (uvim/results.py).
"""
from __future__ import annotations

import argparse
import csv
import json
import os

from fsq.quantizers import make_quantizer
from fsq.train.writers import evaluated_runs
from scripts.sweep import run_sweep
from uvim import results as uvim_results

# Plotted when present, in this order: (metric, label, lower is better).
METRICS = [("eval/recon/fid", "reconstruction FID", True),
           ("eval/recon/psnr", "reconstruction PSNR (dB)", False),
           ("eval/recon/usage", "codebook usage", False),
           ("eval/bits/bits_per_token", "compression cost (bits/token)", True),
           ("eval/sample/fid", "sampling FID", True)]


def _quantizer_row(config: dict) -> dict:
  """The quantizer columns of a run's config.json."""
  quantizer = config["quantizer"]
  levels = quantizer.get("levels")  # FSQ's only.
  return {"quantizer": quantizer["name"],
          "codebook_size": make_quantizer(**quantizer).codebook_size,
          "levels": "-".join(map(str, levels)) if levels else "",
          "d": len(levels) if levels else "", "min_level": min(levels) if levels else ""}


def collect(root: str) -> list[dict]:
  """One row per tokenizer run below `root`, with its final evaluation.

  A Stage II run's (one with a `tokenizer`) evaluations join its tokenizer's row; one whose
  tokenizer is not below `root` is a row of its own.
  """
  rows, stage2 = {}, []
  for name, workdir, config, final in evaluated_runs(root):
    if config.get("tokenizer"):
      stage2.append((name, config["tokenizer"], final))
    else:
      rows[os.path.realpath(workdir)] = {"run": name, **_quantizer_row(config), **final}
  for name, tokenizer, final in stage2:
    sampled = {k: v for k, v in final.items() if k.startswith("eval/")}
    row = rows.get(os.path.realpath(tokenizer))
    if row is not None:
      row.update(sampled, stage2_run=name)
    else:
      with open(os.path.join(tokenizer, "config.json")) as f:
        tokenizer_config = json.load(f)
      rows[name] = {"run": name, **_quantizer_row(tokenizer_config), "step": final["step"],
                    **sampled}
  return list(rows.values())


def write_tables(rows: list[dict], out: str) -> str:
  columns = ["run", "quantizer", "codebook_size", "levels", "step"] + [
      m for m, _, _ in METRICS if any(m in r for r in rows)] + ["eval/recon/perplexity"]
  with open(os.path.join(out, "results.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
  lines = ["| " + " | ".join(c.removeprefix("eval/") for c in columns) + " |",
           "|" + "---|" * len(columns)]
  for row in sorted(rows, key=lambda r: (r["quantizer"], r["codebook_size"])):
    cells = []
    for c in columns:
      value = row.get(c, "")
      cells.append(f"{value:.1%}" if c == "eval/recon/usage" else
                   f"{value:.3f}" if isinstance(value, float) else str(value))
    lines.append("| " + " | ".join(cells) + " |")
  table = "\n".join(lines) + "\n"
  with open(os.path.join(out, "results.md"), "w") as f:
    f.write(table)
  return table


def plot(rows: list[dict], out: str, figure: str) -> str:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  metrics = [m for m in METRICS if any(m[0] in r for r in rows)]
  fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
  for ax, (metric, label, _) in zip(axes[0], metrics):
    if figure == "levels":
      fsq = [r for r in rows if r["quantizer"] == "fsq" and metric in r]
      points = ax.scatter([r["codebook_size"] for r in fsq], [r[metric] for r in fsq],
                          c=[r["min_level"] for r in fsq], cmap="viridis")
      fig.colorbar(points, ax=ax, label="smallest L_i")
    else:
      for quantizer in sorted({r["quantizer"] for r in rows}):
        runs = sorted((r for r in rows if r["quantizer"] == quantizer and metric in r),
                      key=lambda r: r["codebook_size"])
        ax.plot([r["codebook_size"] for r in runs], [r[metric] for r in runs], "o-",
                label=quantizer.upper())
      ax.legend()
    if metric == "eval/recon/usage":
      ax.set_ylim(0.0, 1.05)
      ax.axhline(1.0, color="grey", ls="--", lw=1)
      ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("codebook size")
    ax.set_ylabel(label)
  fig.tight_layout()
  path = os.path.join(out, f"{figure}.png")
  fig.savefig(path, dpi=120)
  return path


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--root", required=True)
  parser.add_argument("--out", required=True)
  parser.add_argument("--figure", choices=("tradeoff", "levels", "uvim"), default="tradeoff")
  parser.add_argument("--sweep", help="run this sweep (scripts.sweep) into --root first")
  parser.add_argument("--parallel", type=int, default=0,
                      help="with --sweep: runs at once (0: by cores, as scripts.sweep)")
  args = parser.parse_args()
  if args.sweep:
    run_sweep(args.sweep, args.root, args.parallel)
  if args.figure == "uvim":
    rows = uvim_results.collect(args.root)
    if not rows:
      raise SystemExit(f"no finished UViM evaluations under {args.root}")
    print(uvim_results.write(rows, args.out))
    return
  rows = collect(args.root)
  if not rows:
    raise SystemExit(f"no finished evaluations under {args.root}")
  os.makedirs(args.out, exist_ok=True)
  print(write_tables(rows, args.out))
  print(f"wrote {os.path.join(args.out, 'results.csv')}, results.md and "
        f"{plot(rows, args.out, args.figure)}")


if __name__ == "__main__":
  main()
