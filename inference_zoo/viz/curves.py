"""Quality against training: each headline metric against steps and against wall time.

Drawn from a study's curves.csv alone (rows of every run's curve.csv, ``train.eval_every``).
One figure per dataset, ``curves-<dataset>.png``: a row of panels per x axis (steps, then wall
seconds), a panel per metric, a colour per method; each seed is a thin line, the mean over seeds
a thick one with a band of one standard error. Two-phase strategies (latent, posthoc) are drawn
along their last phase, the one that trains their encoder. Correlations are drawn as |corr|: a
map and its mirror image are equally invertible, and a signed mean over seeds would cancel them.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..core.results import HEADLINE_METRICS
from ..core.results import safe_name
from .style import plt, save_figure

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _last_phase(rows: list[dict[str, Any]]) -> dict[str, str]:
    """method -> its last phase (the order rows were written in)."""
    last: dict[str, str] = {}
    for row in rows:
        last[row["method"]] = row["phase"]
    return last


def plot_curves(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    written = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        mine = [r for r in rows if r["dataset"] == dataset]
        last = _last_phase(mine)
        mine = [r for r in mine if r["phase"] == last[r["method"]]]
        metrics = [m for m in HEADLINE_METRICS if any(r["metric"] == m for r in mine)]
        if not metrics:
            continue
        methods = list(dict.fromkeys(r["method"] for r in mine))
        fig, axes = plt.subplots(2, len(metrics), figsize=(3.2 * len(metrics), 5.6), squeeze=False)
        for column, metric in enumerate(metrics):
            for i, method in enumerate(methods):
                colour = PALETTE[i % len(PALETTE)]
                series: dict[int, dict[int, tuple[float, float]]] = {}
                for r in mine:
                    if r["method"] == method and r["metric"] == metric:
                        value = abs(r["value"]) if metric.startswith("corr_") else r["value"]
                        series.setdefault(r["seed"], {})[r["step"]] = (r["seconds"], value)
                for row_index, axis_of in enumerate((0, 1)):  # 0: steps, 1: seconds
                    ax = axes[row_index][column]
                    for points in series.values():
                        steps = sorted(points)
                        xs = [s if axis_of == 0 else points[s][0] for s in steps]
                        ax.plot(xs, [points[s][1] for s in steps], color=colour, lw=0.6, alpha=0.35)
                    common = sorted(set.intersection(*(set(p) for p in series.values()))) if series else []
                    if not common:
                        continue
                    values = np.array([[series[seed][s][1] for s in common] for seed in series], dtype=float)
                    xs = np.array([s if axis_of == 0 else np.mean([series[seed][s][0] for seed in series])
                                   for s in common])
                    with warnings.catch_warnings():  # a step where every seed is nan (no HQ sample) stays nan
                        warnings.simplefilter("ignore", RuntimeWarning)
                        mean = np.nanmean(values, axis=0)
                        n = np.sum(np.isfinite(values), axis=0)
                        se = np.where(n > 1, np.nanstd(values, axis=0, ddof=1) / np.sqrt(np.maximum(n, 1)), 0.0) \
                            if len(series) > 1 else np.zeros_like(mean)
                    ax.plot(xs, mean, color=colour, lw=1.8, label=f"{method} (n={len(series)})")
                    ax.fill_between(xs, mean - se, mean + se, color=colour, alpha=0.18, lw=0)
            axes[0][column].set_title(f"|{metric}|" if metric.startswith("corr_") else metric, fontsize=10)
            axes[0][column].set_xlabel("step")
            axes[1][column].set_xlabel("wall seconds")
            for ax in axes[:, column]:
                ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7, loc="best")
        fig.suptitle(f"{dataset}: metrics during training (thin: seeds; thick: mean ± s.e.)", fontsize=11)
        fig.tight_layout()
        path = folder / f"curves-{safe_name(dataset)}.png"
        written.append(save_figure(fig, path))
    return written
