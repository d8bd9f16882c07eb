"""Collects a sweep's runs into CSV and markdown tables and the paper's plots.

  python -m scripts.reproduce --root=runs/tradeoff --out=results/tradeoff            # Fig. 3
  python -m scripts.reproduce --root=runs/levels --out=results/levels --figure=levels  # Fig. 10
  python -m scripts.reproduce --root=runs/uvim --out=docs/results/uvim_oracle --figure=uvim
  python -m scripts.reproduce --root=runs/uvim_table2 --out=docs/results/uvim_table2 \
      --figure=uvim_table2                                                         # Table 2
  python -m scripts.reproduce --root=runs/tradeoff --out=docs/results/usage_drop \
      --figure=usage_drop                                     # FSQ's usage above 2^10
  python -m scripts.reproduce --sweep=configs/sweeps/tradeoff.py:scale=smoke --root=runs/smoke \
      --out=runs/smoke/results --figure=smoke  # runs (or resumes) the sweep first: the main job

Each run's final evaluation (the last event of its metrics.jsonl with eval/ metrics) becomes
one row, kept in OUT/runs.json: rows already there whose run is not under --root stay, so a
study run in pieces on machines that do not keep their runs grows one table. The seeds of a
run (NAME, NAME_seed1, ...: scripts.sweep --seeds) make one row of means ± standard
deviations. `tradeoff` plots each metric against codebook size per quantizer (usage with the
100% and 50% lines); `levels` plots FSQ runs coloured by their smallest level; `smoke` is the
main job's write-up (fsq/studies/smoke.py: table, curves, labelled reconstructions); `uvim`
writes UViM's oracles per task (uvim/results.py), `uvim_table2` their language models over
seeds (uvim/table2.py: tables, figure and pictures; earlier oracles' rows stay in
OUT/results.json the same way); `usage_drop` FSQ's usage and level statistics against steps
per bound (fsq/studies/usage_drop.py).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re

import numpy as np

from fsq.quantizers import make_quantizer
from fsq.studies import smoke, usage_drop
from fsq.train.writers import evaluated_runs, with_earlier
from scripts.sweep import parse_seeds, run_sweep
from uvim import results as uvim_results
from uvim import table2 as uvim_table2

SEED_SUFFIX = re.compile(r"_seed\d+$")
LABELS = {"fsq": "FSQ", "ifsq": "FSQ, iFSQ's bound", "vq": "VQ"}
# Plotted when present, in this order: (metric, label, lower is better).
METRICS = [("eval/recon/fid", "reconstruction FID", True),
           ("eval/recon/psnr", "reconstruction PSNR (dB)", False),
           ("eval/recon/usage", "codebook usage", False),
           ("eval/bits/bits_per_token", "compression cost (bits/token)", True),
           ("eval/sample/fid", "sampling FID", True)]
# Tabled, not plotted, when present: Stage II's sample quality beyond FID (claim 4).
TABLE_ONLY = ["eval/recon/class_consistency", "eval/sample/precision", "eval/sample/recall",
              "eval/sample/class_consistency"]


def _quantizer_row(config: dict) -> dict:
  """The quantizer columns of a run's config.json; FSQ with iFSQ's bound is "ifsq"."""
  quantizer = config["quantizer"]
  levels = quantizer.get("levels")  # FSQ's only.
  return {"quantizer": "ifsq" if quantizer.get("bound") == "ifsq" else quantizer["name"],
          "codebook_size": make_quantizer(**quantizer).codebook_size,
          "levels": "-".join(map(str, levels)) if levels else "",
          "d": len(levels) if levels else "", "min_level": min(levels) if levels else ""}


def collect(root: str) -> list[dict]:
  """One row per tokenizer run below `root`, with its final evaluation.

  A Stage II run's (one with a `tokenizer`) evaluations join its tokenizer's row; one whose
  tokenizer is not below `root` is a row of its own. Stage II seeds of one tokenizer (Stage II
  runs NAME_seed{k} whose tokenizer TOK has no seed suffix) are rows TOK_seed{k}, copies of the
  tokenizer's row, so that aggregate() averages over them.
  """
  rows, stage2 = {}, []
  for name, workdir, config, final in evaluated_runs(root):
    if config.get("tokenizer"):
      stage2.append((name, config["tokenizer"], final))
    else:
      rows[os.path.realpath(workdir)] = {"run": name, **_quantizer_row(config), **final}
  tokenizers = {key: dict(row) for key, row in rows.items()}
  for name, tokenizer, final in stage2:
    sampled = {k: v for k, v in final.items() if k.startswith("eval/")}
    key, seed = os.path.realpath(tokenizer), SEED_SUFFIX.search(name)
    row = rows.get(key)
    if row is not None and seed and not SEED_SUFFIX.search(row["run"]):
      base = tokenizers[key]
      rows[name] = {**base, "run": base["run"] + seed[0], **sampled, "stage2_run": name}
    elif row is not None:
      row.update(sampled, stage2_run=name)
    else:
      with open(os.path.join(tokenizer, "config.json")) as f:
        tokenizer_config = json.load(f)
      rows[name] = {"run": name, **_quantizer_row(tokenizer_config), "step": final["step"],
                    **sampled}
  return list(rows.values())


def aggregate(rows: list[dict]) -> list[dict]:
  """One row per run name without its `_seed{k}` suffix (scripts.sweep --seeds): each metric's
  mean over the seeds, "seeds" their number and, with more than one, METRIC/sd (the sample
  standard deviation) and METRIC/seeds (every seed's value, in run-name order)."""
  groups = {}
  for row in sorted(rows, key=lambda r: r["run"]):
    groups.setdefault(SEED_SUFFIX.sub("", row["run"]), []).append(row)
  out = []
  for name, members in groups.items():
    row = {**members[0], "run": name, "seeds": len(members)}
    for key in sorted({k for m in members for k in m if k.startswith("eval/")}):
      values = [m[key] for m in members if key in m]
      row[key] = float(np.mean(values))
      if len(values) > 1:
        row[f"{key}/sd"], row[f"{key}/seeds"] = float(np.std(values, ddof=1)), values
    out.append(row)
  return out


def _cell(row: dict, column: str) -> str:
  value, sd = row.get(column, ""), row.get(f"{column}/sd")
  if not isinstance(value, float):
    return str(value)
  fmt = ".1%" if column == "eval/recon/usage" else ".3f"
  return f"{value:{fmt}}" + (f" ± {sd:{fmt}}" if sd is not None else "")


def write_tables(rows: list[dict], out: str) -> str:
  metrics = [m for m in [m for m, _, _ in METRICS] + TABLE_ONLY + ["eval/recon/perplexity"]
             if any(m in r for r in rows)]
  seeds = any(r.get("seeds", 1) > 1 for r in rows)
  columns = ["run", "quantizer", "codebook_size", "levels", "step"] + ["seeds"] * seeds + metrics
  with open(os.path.join(out, "results.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, columns + [f"{m}/sd" for m in metrics] * seeds,
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
  lines = ["| " + " | ".join(c.removeprefix("eval/") for c in columns) + " |",
           "|" + "---|" * len(columns)]
  for row in sorted(rows, key=lambda r: (r["quantizer"], r["codebook_size"])):
    lines.append("| " + " | ".join(_cell(row, c) for c in columns) + " |")
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
      # One colour per smallest level (arXiv 2309.15505, Fig. 10), each point labelled by its
      # levels: a colour bar would squeeze 3..8 into one shade beside a 64.
      fsq = [r for r in rows if r["quantizer"] == "fsq" and metric in r]
      smallest = sorted({r["min_level"] for r in fsq})
      colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, len(smallest)))
      for level, colour in zip(smallest, colours):
        group = [r for r in fsq if r["min_level"] == level]
        ax.errorbar([r["codebook_size"] for r in group], [r[metric] for r in group],
                    yerr=[r.get(f"{metric}/sd", 0.0) for r in group], fmt="o",
                    color=colour, capsize=3, label=f"min L_i = {level}")
      for r in fsq:
        ax.annotate(r["levels"], (r["codebook_size"], r[metric]), fontsize=6,
                    xytext=(4, 2), textcoords="offset points")
      ax.legend(fontsize=7)
    else:
      for quantizer in sorted({r["quantizer"] for r in rows}):
        runs = sorted((r for r in rows if r["quantizer"] == quantizer and metric in r),
                      key=lambda r: r["codebook_size"])
        ax.errorbar([r["codebook_size"] for r in runs], [r[metric] for r in runs],
                    yerr=[r.get(f"{metric}/sd", 0.0) for r in runs], fmt="o-", capsize=3,
                    label=LABELS.get(quantizer, quantizer))
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
  plt.close(fig)
  return path


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--root", required=True)
  parser.add_argument("--out", required=True)
  parser.add_argument("--figure", default="tradeoff",
                      choices=("tradeoff", "levels", "smoke", "uvim", "uvim_table2",
                               "usage_drop"))
  parser.add_argument("--sweep", help="run this sweep (scripts.sweep) into --root first")
  parser.add_argument("--parallel", type=int, default=0,
                      help="with --sweep: runs at once (0: by cores, as scripts.sweep)")
  parser.add_argument("--seeds", type=parse_seeds, default=(0,),
                      help="with --sweep: seeds, as scripts.sweep; the tables show mean ± sd")
  args = parser.parse_args()
  if args.sweep:
    run_sweep(args.sweep, args.root, args.parallel, args.seeds)
  if args.figure == "smoke":
    rows = collect(args.root)
    if not rows:
      raise SystemExit(f"no finished evaluations under {args.root}")
    print(smoke.write(rows, args.root, args.out))
    print(f"wrote {args.out}/results.md, smoke.png and reconstructions.png")
    return
  if args.figure == "usage_drop":
    rows = usage_drop.collect(args.root)
    if not rows:
      raise SystemExit(f"no FSQ evaluations with level statistics under {args.root}")
    print(usage_drop.write(rows, args.out))
    return
  if args.figure in ("uvim", "uvim_table2"):
    module = uvim_results if args.figure == "uvim" else uvim_table2
    rows = module.collect(args.root)
    if args.figure == "uvim_table2":
      rows = uvim_table2.earlier(rows, args.out)
    if not rows:
      raise SystemExit(f"no finished UViM {'oracle' if args.figure == 'uvim' else 'language model'}"
                       f" evaluations under {args.root}")
    print(module.write(rows, args.out))
    return
  runs_json = os.path.join(args.out, "runs.json")
  runs = sorted(with_earlier(collect(args.root), runs_json, "run"), key=lambda r: r["run"])
  if not runs:
    raise SystemExit(f"no finished evaluations under {args.root}")
  os.makedirs(args.out, exist_ok=True)
  with open(runs_json, "w") as f:
    json.dump(runs, f, indent=1)
  rows = aggregate(runs)
  print(write_tables(rows, args.out))
  print(f"wrote {os.path.join(args.out, 'results.csv')}, results.md and "
        f"{plot(rows, args.out, args.figure)}")


if __name__ == "__main__":
  main()
