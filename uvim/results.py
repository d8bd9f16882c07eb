"""UViM runs as a results table, a figure and their pictures (scripts.reproduce --figure=uvim).

One row per oracle (Stage I) run below a root: its task, quantizer, seed, parameter count, and the final
evaluation of each evaluator (the oracle, its context-only floor, the trivial baseline) with
the oracle's codebook usage; the columns of arXiv 2309.15505, Table 2, at any scale.
"""
from __future__ import annotations

import json
import os

import jax
import numpy as np

from PIL import Image

from fsq.images import labelled
from fsq.stages.restore import load_frozen
from fsq.train.writers import evaluated_runs

# Per task: (metric, label, lower is better); the first is the figure's.
TASK_METRICS = {"depth": [("rmse", "RMSE (m)", True), ("abs_rel", "abs-rel", True)],
                "colorization": [("psnr", "PSNR (dB)", False), ("fid", "FID", True),
                                 ("colour_fid", "colour-FID", True)],
                "panoptic": [("pq", "PQ", False), ("pq_things", "PQ things", False)]}
EVALUATIONS = (("oracle", "oracle"), ("context_only", "context only"), ("baseline", "baseline"))


def quantizer_name(config: dict) -> str:
  """The oracle's quantizer as a table cell: "FSQ 5-5-5", "VQ 128, no splitting"."""
  quantizer = config["quantizer"]
  if quantizer["name"] == "fsq":
    return "FSQ " + "-".join(map(str, quantizer["levels"]))
  split = "" if quantizer.get("split", True) else ", no splitting"
  return f"VQ {quantizer['codebook_size']}{split}"


def collect(root: str) -> list[dict]:
  """One row per UViM oracle run below `root` that has evaluated."""
  rows = []
  for name, workdir, config, final in evaluated_runs(root):
    if config.get("stage") != "uvim.stage1:OracleStage":
      continue
    variables = load_frozen(workdir).variables
    counts = {k: sum(int(np.size(x)) for x in jax.tree.leaves(v)) for k, v in variables.items()}
    rows.append({"run": name, "workdir": workdir, "task": config["task"]["name"],
                 "quantizer": quantizer_name(config), "context": config["context"],
                 "seed": config["seed"], "params": counts.pop("params"),
                 "show_also": config["evals"]["oracle"].get("show_also", []),
                 "state": sum(counts.values()), **final})
  return rows


def _cell(value, metric: str) -> str:
  if value is None or (isinstance(value, float) and np.isnan(value)):
    return "-"
  if metric == "usage":
    return f"{value:.2%}"
  if metric in ("num_used", "params", "state"):
    return f"{int(value):,}"
  return f"{value:.3f}" if metric in ("rmse", "abs_rel", "pq", "pq_things") else f"{value:.2f}"


def table(rows: list[dict]) -> str:
  """A markdown table per task."""
  out = []
  for task, metrics in TASK_METRICS.items():
    runs = [r for r in rows if r["task"] == task]
    if not runs:
      continue
    header = ["run", "quantizer", "context", "seed"] + [
        f"{label}: {evaluation}" for _, label, _ in metrics for _, evaluation in EVALUATIONS] + [
        "usage", "codes used", "perplexity", "parameters"]
    out += [f"**{task}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in runs:
      cells = [r["run"], r["quantizer"], "yes" if r["context"] else "no", str(r["seed"])]
      cells += [_cell(r.get(f"eval/{key}/{metric}"), metric)
                for metric, _, _ in metrics for key, _ in EVALUATIONS]
      cells += [_cell(r.get(f"eval/oracle/{m}"), m) for m in ("usage", "num_used", "perplexity")]
      cells.append(_cell(r["params"], "params")
                   + (f" + {_cell(r['state'], 'state')} codebook state" if r["state"] else ""))
      out.append("| " + " | ".join(cells) + " |")
    out.append("")
  return "\n".join(out)


def task_figure(rows: list[dict]):
  """(figure, axes, tasks): one panel per task present in `rows`, in TASK_METRICS' order, and
  one more at the end."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  tasks = [t for t in TASK_METRICS if any(r["task"] == t for r in rows)]
  fig, axes = plt.subplots(1, len(tasks) + 1, figsize=(4.6 * (len(tasks) + 1), 4.2),
                           squeeze=False)
  return fig, list(axes[0]), tasks


def plot(rows: list[dict], path: str) -> None:
  """Per task, the first metric of each run's oracle, context-only floor and baseline; then
  each run's codebook usage (log scale)."""
  fig, axes, tasks = task_figure(rows)
  for ax, task in zip(axes, tasks):
    runs = [r for r in rows if r["task"] == task]
    metric, label, lower = TASK_METRICS[task][0]
    x = np.arange(len(runs))
    for i, (key, evaluation) in enumerate(EVALUATIONS):
      ax.bar(x + (i - 1) * 0.27, [r.get(f"eval/{key}/{metric}", np.nan) for r in runs], 0.27,
             label=evaluation)
    ax.set_xticks(x, [r["run"].removeprefix(f"oracle_{task}_") for r in runs], rotation=30,
                  ha="right", fontsize=8)
    ax.set_title(f"{task}: {label} ({'lower' if lower else 'higher'} is better)")
    ax.legend(fontsize=8)
  ax = axes[-1]
  ax.bar(np.arange(len(rows)), [r.get("eval/oracle/usage", np.nan) for r in rows])
  ax.set_yscale("log")
  ax.set_xticks(np.arange(len(rows)), [r["run"].removeprefix("oracle_") for r in rows],
                rotation=40, ha="right", fontsize=8)
  ax.set_title("codebook usage (held-out codes)")
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def write(rows: list[dict], out: str) -> str:
  """results.md, results.json, uvim.png and each run's final oracle picture in `out`."""
  os.makedirs(out, exist_ok=True)
  text = table(rows)
  with open(os.path.join(out, "results.md"), "w") as f:
    f.write(text)
  with open(os.path.join(out, "results.json"), "w") as f:
    json.dump([{k: v for k, v in r.items() if k not in ("workdir", "show_also")} for r in rows],
              f, indent=1)
  plot(rows, os.path.join(out, "uvim.png"))
  for r in rows:
    picture = os.path.join(r["workdir"], "images", f"eval_oracle_predictions_{r['step']}.png")
    if os.path.exists(picture):
      grid = np.asarray(Image.open(picture).convert("RGB"))
      labels = ["image", "target", "oracle"] + [
          {"predict_context_only": "context only"}.get(n, n) for n in r["show_also"]]
      Image.fromarray(labelled(grid, labels)).save(os.path.join(out, f"{r['run']}.png"))
  return text
