"""The main job's write-up (scripts.reproduce --figure=smoke): FSQ vs VQ on a short slice of the
trade-off study (configs/sweeps/tradeoff.py:scale=smoke).

What a few hundred steps on 32 px scenes can rank: held-out PSNR, codebook usage and
perplexity, and parameters, against codebook size; the table; and a labelled grid of the
same held-out scenes reconstructed by every run (nearest-upscaled so the pixels show).
Reconstruction scenes-FID is left out: on 32 px scenes it mostly measures high-frequency
artefacts and barely sees colour (fsq/studies/scenes_fid.py, docs/results/smoke.md).
"""
from __future__ import annotations

import math
import os

import jax
import numpy as np

from fsq import data as data_lib
from fsq.images import image_grid, labelled, to_uint8
from fsq.stages.restore import load_run

# (metric, label, format): the smoke table's and plot's columns.
METRICS = [("eval/recon/psnr", "held-out PSNR (dB)", ".2f"),
           ("eval/recon/usage", "codebook usage", ".1%"),
           ("eval/recon/perplexity", "perplexity", ".1f"),
           ("parameters", "parameters", ",d")]
LABEL_MARGIN = 220  # Pixels left of the grid for each row's label.


def label(row: dict) -> str:
  name = row["quantizer"].upper()
  levels = f" ({row['levels']})" if row.get("levels") else ""
  return f"{name} {row['codebook_size']}{levels}"


def write(rows: list[dict], root: str, out: str, examples: int = 8) -> str:
  """results.md (returned), smoke.png and reconstructions.png from the rows of
  scripts.reproduce.collect (one seed each)."""
  os.makedirs(out, exist_ok=True)
  rows = sorted(rows, key=lambda r: (r["quantizer"], r["codebook_size"]))
  _reconstructions(rows, root, os.path.join(out, "reconstructions.png"), examples)
  header = ["run", "quantizer", "codebook size", "levels", "steps"] + [m[1] for m in METRICS]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for r in rows:
    cells = [r["run"], r["quantizer"].upper(), r["codebook_size"], r["levels"], r["step"]]
    cells += ["" if r.get(m) is None else format(r[m], fmt) for m, _, fmt in METRICS]
    lines.append("| " + " | ".join(map(str, cells)) + " |")
  table = "\n".join(lines) + "\n"
  with open(os.path.join(out, "results.md"), "w") as f:
    f.write(table)
  _plot(rows, os.path.join(out, "smoke.png"))
  return table


def _plot(rows: list[dict], path: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, len(METRICS), figsize=(3.6 * len(METRICS), 3.2))
  for ax, (metric, name, _) in zip(axes, METRICS):
    for quantizer in sorted({r["quantizer"] for r in rows}):
      runs = [r for r in rows if r["quantizer"] == quantizer and r.get(metric) is not None]
      ax.plot([r["codebook_size"] for r in runs], [r[metric] for r in runs], "o-",
              label=quantizer.upper())
    ax.set(xscale="log", xlabel="codebook size", ylabel=name)
    ax.set_xscale("log", base=2)
    if metric == "eval/recon/usage":
      ax.set_ylim(0.0, 1.05)
    ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _reconstructions(rows: list[dict], root: str, path: str, examples: int) -> None:
  """The first `examples` held-out scenes, then each run's reconstructions of them; sets each
  row's "parameters" (trainable, from its checkpoint)."""
  from PIL import Image
  grid_rows, labels, originals = [], [], None
  for r in rows:
    stage, state, config = load_run(os.path.join(root, r["run"]))
    r["parameters"] = sum(x.size for x in jax.tree.leaves(stage.parameters(state)))
    source = data_lib.make_source(config.data.eval)
    batch = next(iter(data_lib.eval_batches(source, global_batch_size=examples)))
    if originals is None:
      originals = np.asarray(batch["image"])
      grid_rows.append(originals)
      labels.append("held-out scene")
    x_hat, _ = stage.reconstruct(state, batch)
    grid_rows.append(to_uint8(np.asarray(x_hat)))
    labels.append(f"{label(r)}: {r['eval/recon/psnr']:.1f} dB")
  scale = max(1, math.ceil(128 / originals.shape[1]))
  grid = labelled(image_grid(grid_rows), labels, scale=scale, margin=LABEL_MARGIN)
  Image.fromarray(grid).save(path)
