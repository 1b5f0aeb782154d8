"""Learning-rate sweeps: each headline metric against the learning rate, one line per method.

Drawn from tidy rows alone: a swept run's method label ("ali@lr=0.0003", ``config.method_label``)
carries its setting, so the figure is redrawn from results.csv without training. Seeds are dots,
lines join the means (standard-error bars); a "diverged" panel shows the share of seeds lost,
which is what usually bounds a sweep from above.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib.ticker import NullFormatter

from ..config import split_label
from ..evaluate import HEADLINE_METRICS
from ..results import aggregate
from ..study import safe_name
from .style import plt, save_figure


def lr_sweep_points(rows: list[dict[str, Any]], dataset: str) -> dict[str, dict[str, dict[float, str]]]:
    """metric -> method -> learning rate -> the label of the dataset's swept runs with it."""
    points: dict[str, dict[str, dict[float, str]]] = {}
    for row in rows:
        method, settings = split_label(row["method"])
        if row["dataset"] == dataset and "lr" in settings:
            points.setdefault(row["metric"], {}).setdefault(method, {})[float(settings["lr"])] = row["method"]
    return points


def plot_lr_sweeps(rows: list[dict[str, Any]], out: Path, prefix: str = "sweep") -> list[Path]:
    """``<prefix>-<dataset>.png`` for each dataset with learning-rate variants; the paths written."""
    summary = {(s["dataset"], s["method"], s["metric"]): s for s in aggregate(rows)}
    values: dict[tuple[str, str, str], list[float]] = {}
    for row in rows:
        values.setdefault((row["dataset"], row["method"], row["metric"]), []).append(float(row["value"]))
    written = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        points = lr_sweep_points(rows, dataset)
        metrics = [m for m in [*HEADLINE_METRICS, "diverged"] if m in points]
        if not metrics:
            continue
        methods = list(dict.fromkeys(method for m in metrics for method in points[m]))
        ncols = min(4, len(metrics))
        nrows = math.ceil(len(metrics) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.0 * nrows), squeeze=False)
        for ax, metric in zip(axes.flat, metrics):
            for i, method in enumerate(methods):
                by_lr = points[metric].get(method)
                if not by_lr:
                    continue
                colour = plt.get_cmap("tab10")(i % 10)
                lrs = sorted(by_lr)
                for lr in lrs:
                    seeds = values[(dataset, by_lr[lr], metric)]
                    ax.scatter([lr] * len(seeds), seeds, s=10, color=colour, alpha=0.45, linewidths=0)
                stats = [summary[(dataset, by_lr[lr], metric)] for lr in lrs]
                ax.errorbar(lrs, [s["mean"] for s in stats], yerr=[0.0 if math.isnan(s["se"]) else s["se"] for s in stats],
                            color=colour, marker="o", ms=4, capsize=2, label=method)
            ax.set_xscale("log")
            swept = sorted({lr for by_lr in points[metric].values() for lr in by_lr})
            ax.set_xticks(swept, [f"{lr:g}" for lr in swept])  # the swept rates, not decades
            ax.xaxis.set_minor_formatter(NullFormatter())
            if metric == "diverged":  # a share of seeds
                ax.set_ylim(-0.05, 1.05)
            ax.set_title(metric, fontsize=9)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(metrics):]:
            ax.set_visible(False)
        axes[0, 0].legend(fontsize=7)
        n_seeds = len({r["seed"] for r in rows if r["dataset"] == dataset})
        fig.suptitle(f"{dataset}: learning-rate sweep, {n_seeds} seed(s)", fontsize=10)
        fig.supxlabel("Adam learning rate", fontsize=8)
        fig.tight_layout()
        path = out / f"{prefix}-{safe_name(dataset)}.png"
        save_figure(fig, path)
        written.append(path)
    return written
