"""The usage-drop study (configs/sweeps/usage_drop.py; scripts.reproduce --figure=usage_drop).

Every FSQ run below a root with the per-channel level statistics of its evaluations
(fsq.quantizers.usage.level_usage): codebook usage, PSNR and the level statistics at every
evaluated step, per bound ("tanh", the paper's, or iFSQ's) and codebook size. The plot shows
usage and the outer-level ratio against steps, and each channel's level fractions at the end
of the longest run of each bound.

"usage if independent" is the usage the measured per-channel level fractions alone predict:
codes drawn with probability prod_i p_i(level) over the evaluation's tokens use
sum_code 1 - (1 - p_code)^tokens of the codebook. When it matches the measured usage, the
unused codes are explained by how each channel spreads over its levels.
"""
from __future__ import annotations

import csv
import math
import os

import numpy as np

from fsq.train.writers import evaluation_events, evaluated_runs

COLUMNS = [("eval/recon/usage", "usage", ".1%"), ("eval/recon/perplexity", "perplexity", ".0f"),
           ("eval/recon/psnr", "PSNR (dB)", ".2f"),
           ("eval/recon/level_outer_ratio", "outer-level ratio", ".3f"),
           ("eval/recon/level_entropy", "level entropy", ".3f"),
           ("eval/recon/level_usage", "levels used", ".1%"),
           ("usage_if_independent", "usage if independent", ".1%")]


def tokens_per_evaluation(config: dict) -> int:
  """Tokens the evaluation counts: held-out images x the VQ-VAE's token grid (its encoder
  halves the resolution once per channel multiplier after the first)."""
  data = config["data"]["eval"]
  side = data["image_size"] // 2 ** (len(config["model"]["channel_multipliers"]) - 1)
  return data["num_examples"] * side * side


def usage_if_independent(levels: list[int], event: dict, tokens: int) -> float:
  """Expected fraction of codes used by `tokens` draws from the product of the channels' level
  fractions."""
  p_code = np.ones(1)
  for i, n in enumerate(levels):
    p_i = np.array([event[f"eval/recon/level_mass/c{i}_l{j}"] for j in range(n)])
    p_code = np.outer(p_code, p_i).ravel()
  return float(np.mean(1.0 - np.exp(tokens * np.log1p(-np.minimum(p_code, 1.0 - 1e-12)))))


def collect(root: str) -> list[dict]:
  """One row per (FSQ run, evaluated step) with level statistics, by run then step."""
  rows = []
  for name, workdir, config, _ in evaluated_runs(root):
    quantizer = config.get("quantizer", {})
    if quantizer.get("name") != "fsq":
      continue
    for event in evaluation_events(workdir):
      if "eval/recon/level_outer_ratio" in event:
        levels = list(quantizer["levels"])
        rows.append({"run": name, "bound": quantizer.get("bound", "tanh"), "levels": levels,
                     "total_steps": config["total_steps"], **event,
                     "usage_if_independent": usage_if_independent(
                         levels, event, tokens_per_evaluation(config))})
  return rows


def write(rows: list[dict], out: str) -> str:
  """results.md / results.csv (every evaluated step) and usage_drop.png; returns the table."""
  os.makedirs(out, exist_ok=True)
  header = ["run", "bound", "levels", "schedule (steps)", "step"] + [c[1] for c in COLUMNS]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  records = []
  for r in sorted(rows, key=lambda r: (r["run"], r["step"])):
    record = [r["run"], r["bound"], "-".join(map(str, r["levels"])), r["total_steps"], r["step"]]
    record += [format(r[key], fmt) if key in r else "" for key, _, fmt in COLUMNS]
    records.append(record)
    lines.append("| " + " | ".join(map(str, record)) + " |")
  table = "\n".join(lines) + "\n"
  with open(os.path.join(out, "results.md"), "w") as f:
    f.write(table)
  with open(os.path.join(out, "results.csv"), "w", newline="") as f:
    csv.writer(f).writerows([header] + records)
  _plot(rows, os.path.join(out, "usage_drop.png"))
  return table


def _plot(rows: list[dict], path: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
  colours = {"tanh": "tab:blue", "ifsq": "tab:orange"}
  for run in sorted({r["run"] for r in rows}):
    events = sorted((r for r in rows if r["run"] == run), key=lambda r: r["step"])
    first = events[0]
    size = math.prod(first["levels"])
    style = dict(color=colours.get(first["bound"], "grey"),
                 ls="-" if size > 4096 else "--", marker="o" if len(events) > 1 else "s",
                 label=f"{first['bound']}, {size} codes, {first['total_steps']} steps")
    steps = [e["step"] for e in events]
    axes[0].plot(steps, [e["eval/recon/usage"] for e in events], **style)
    axes[1].plot(steps, [e["eval/recon/level_outer_ratio"] for e in events], **style)
  axes[0].set(xlabel="step", ylabel="codebook usage", ylim=(0, 1.05))
  axes[1].set(xlabel="step", ylabel="outer-level mass / uniform's")
  axes[1].axhline(1.0, color="grey", ls=":", lw=1)
  axes[0].legend(fontsize=7)
  # Level fractions per channel at the end of the longest run of each bound, largest codebook.
  ends = {}
  for r in sorted(rows, key=lambda r: (r["total_steps"], math.prod(r["levels"]), r["step"])):
    ends[r["bound"]] = r
  width = 0.8 / max(len(ends), 1)
  for k, (bound, r) in enumerate(sorted(ends.items())):
    x, heights, offset = [], [], 0
    for i, n in enumerate(r["levels"]):
      for j in range(n):
        x.append(offset + j + k * width)
        heights.append(r[f"eval/recon/level_mass/c{i}_l{j}"] * n)
      offset += n + 1
    axes[2].bar(x, heights, width=width, color=colours.get(bound, "grey"),
                label=f"{bound} ({r['run']}, step {r['step']})")
  axes[2].axhline(1.0, color="grey", ls=":", lw=1)
  axes[2].set(xlabel="channel: its levels, lowest first", ylabel="level mass x L_i (1 = uniform)")
  axes[2].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
