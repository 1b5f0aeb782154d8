"""Sweeps: each headline metric against a swept setting, one line per method (and other setting).

Drawn from tidy rows alone: a swept run's method label ("ali@lr=0.0003",
"vae@likelihood_std=0.5,lr=0.001", ``config.variant_of``) carries its settings, so the figure is
redrawn from results.csv without training. One figure per swept setting: numbers on a log axis
(at the swept values) where all are positive, else a linear one; other values (a loss's name) as
categories. Seeds are dots, lines join the means (standard-error bars); a "diverged" panel shows
the share of seeds lost, which is what usually bounds a sweep from above.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib.ticker import NullFormatter

from ..core.config import method_label, split_label, variant_of
from ..core.results import HEADLINE_METRICS, summary_index
from ..core.results import safe_name
from .style import plt, save_figure


def swept_settings(rows: list[dict[str, Any]], dataset: str) -> list[str]:
    """The settings swept on the dataset's runs, in label order ("lr" for a learning-rate sweep)."""
    return list(dict.fromkeys(key for row in rows if row["dataset"] == dataset
                              for key in split_label(row["method"])[1]))


def sweep_points(rows: list[dict[str, Any]], dataset: str, setting: str) -> dict[str, dict[str, dict[str, str]]]:
    """metric -> series -> value of ``setting`` (as written) -> the label of the runs with it.

    A series is a method with its other swept settings ("vae" or "vae@lr=0.001"): the runs that
    differ in ``setting`` alone.
    """
    points: dict[str, dict[str, dict[str, str]]] = {}
    for row in rows:
        method, settings = split_label(row["method"])
        if row["dataset"] != dataset or setting not in settings:
            continue
        value = settings.pop(setting)
        series = method_label(method, variant_of(settings))
        points.setdefault(row["metric"], {}).setdefault(series, {})[value] = row["method"]
    return points


def _numbers(values: list[str]) -> list[float] | None:
    try:
        return [float(v) for v in values]
    except ValueError:
        return None


def plot_sweeps(rows: list[dict[str, Any]], out: Path, prefix: str = "sweep") -> list[Path]:
    """``<prefix>-<dataset>.png`` for a learning-rate sweep, ``<prefix>-<dataset>-<setting>.png``
    for any other swept setting; the paths written."""
    written = []
    summary = summary_index(rows)
    values: dict[tuple[str, str, str], list[float]] = {}
    for row in rows:
        values.setdefault((row["dataset"], row["method"], row["metric"]), []).append(float(row["value"]))
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        for setting in swept_settings(rows, dataset):
            name = safe_name(dataset) if setting == "lr" else f"{safe_name(dataset)}-{safe_name(setting)}"
            path = _plot_sweep(rows, summary, values, dataset, setting, out / f"{prefix}-{name}.png")
            if path is not None:
                written.append(path)
    return written


def _plot_sweep(rows: list[dict[str, Any]], summary: dict[tuple[str, str, str], dict[str, Any]],
                values: dict[tuple[str, str, str], list[float]], dataset: str, setting: str, path: Path) -> Path | None:
    """One setting's figure; ``summary`` and ``values`` (per dataset, label, metric) are shared by all."""
    points = sweep_points(rows, dataset, setting)
    metrics = [m for m in [*HEADLINE_METRICS, "diverged"] if m in points]
    if not metrics:
        return None
    texts = list(dict.fromkeys(v for m in metrics for by_value in points[m].values() for v in by_value))
    numbers = _numbers(texts)
    position = dict(zip(texts, numbers if numbers is not None else range(len(texts))))
    log = numbers is not None and min(numbers) > 0
    series = list(dict.fromkeys(s for m in metrics for s in points[m]))
    ncols = min(4, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.0 * nrows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        finite = False
        for i, name in enumerate(series):
            by_value = points[metric].get(name)
            if not by_value:
                continue
            colour = plt.get_cmap("tab10")(i % 10)
            xs = sorted(by_value, key=position.get)
            for x in xs:
                seeds = values[(dataset, by_value[x], metric)]
                ax.scatter([position[x]] * len(seeds), seeds, s=10, color=colour, alpha=0.45, linewidths=0)
            stats = [summary[(dataset, by_value[x], metric)] for x in xs]
            finite = finite or any(math.isfinite(s["mean"]) for s in stats)
            ax.errorbar([position[x] for x in xs], [s["mean"] for s in stats],
                        yerr=[0.0 if math.isnan(s["se"]) else s["se"] for s in stats],
                        color=colour, marker="o", ms=4, capsize=2, label=name,
                        linestyle="-" if numbers is not None else "none")  # categories are not a scale
        if log:
            ax.set_xscale("log")
            if not finite:  # nothing drawn (e.g. no sample near a mode): give the log axis a range
                ax.set_xlim(min(numbers) / 2, max(numbers) * 2)
        shown = sorted({x for by_value in points[metric].values() for x in by_value}, key=position.get)
        ax.set_xticks([position[x] for x in shown], [f"{position[x]:g}" if numbers is not None else x for x in shown])
        if log:
            ax.xaxis.set_minor_formatter(NullFormatter())
        if numbers is None:
            ax.set_xlim(-0.5, len(texts) - 0.5)
        if metric == "diverged":  # a share of seeds
            ax.set_ylim(-0.05, 1.05)
        ax.set_title(metric, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=7)
    n_seeds = len({r["seed"] for r in rows if r["dataset"] == dataset})
    what = "learning-rate" if setting == "lr" else setting
    fig.suptitle(f"{dataset}: {what} sweep, {n_seeds} seed(s)", fontsize=10)
    fig.supxlabel("Adam learning rate" if setting == "lr" else f"strategy option {setting}", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
