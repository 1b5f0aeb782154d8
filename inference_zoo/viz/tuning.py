"""Tuning figures, drawn from files alone so ``izoo figures`` redraws them.

* A history (``izoo tune``'s ``trials.csv`` and ``best.json``): the objective of each trial in the
  order they were asked, the best so far as a step line, pruned and failed trials along the bottom.
* A published tuning folder (``publish_tuning``): per dataset, each method's preset recipe against
  its tuned recipe on fresh seeds (``tuned-<dataset>.png``, one dot per seed) and
  ``results_table.md`` (mean ± s.e.).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from ..core.fileio import read_json_object, write_text
from ..core.results import read_curve, read_rows, safe_name, summary_index, mean_se_text
from .curves import plot_curves
from .mixture_figure import published_layout
from .style import plt, save_figure

#: what the fresh-seed comparison shows, with how a table prints it (scale, digits)
#: (the identity toy's: reconstruction through the encoder's mean map, and G(z)'s KS against N(0, 1))
TUNED_METRICS = {"modes_3sigma": (1.0, 1), "hq_fraction": (100.0, 1), "reverse_kl": (1.0, 2), "recon_mse": (1.0, 3),
                 "recon_mse_mean_code": (1.0, 3), "sample_ks": (1.0, 3)}
RECIPES = ("preset", "tuned")


def plot_history(folder: Path) -> Path:
    """``folder/history.png`` from ``folder/trials.csv`` and ``folder/best.json``."""
    with open(folder / "trials.csv", newline="") as f:
        trials = list(csv.DictReader(f))
    best = read_json_object(folder / "best.json", "run izoo tune again")
    lower = best.get("direction") == "minimize"
    done = [(int(t["trial"]), float(t["value"])) for t in trials if t["state"] == "COMPLETE" and t["value"]]
    failed = [int(t["trial"]) for t in trials if t["state"] not in ("COMPLETE", "PRUNED")]
    pruned = [int(t["trial"]) for t in trials if t["state"] == "PRUNED"]
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    if done:
        xs, ys = zip(*done)
        ax.plot(xs, ys, "o", color="#1f77b4", ms=4, label="trial")
        running, best_so_far = [], math.inf if lower else -math.inf
        for y in ys:
            best_so_far = min(best_so_far, y) if lower else max(best_so_far, y)
            running.append(best_so_far)
        ax.step(xs, running, where="post", color="#d62728", lw=1.2, label="best so far")
    bottom = min(ys) if done else 0.0
    if pruned:
        ax.plot(pruned, [bottom] * len(pruned), "v", color="#ff7f0e", ms=4, label="pruned at a curve point")
    if failed:
        ax.plot(failed, [bottom] * len(failed), "x", color="#7f7f7f", ms=5, label="failed or re-queued")
    confirmed = best.get("confirmation")
    if confirmed:  # each candidate's mean over its search and confirmation seeds; the chosen one
        n = len(best.get("tuning_seeds", [])) + len(confirmed["seeds"])
        means = [(c["trial"], c["value"]) for c in confirmed["candidates"] if math.isfinite(c["value"])]
        if means:
            ax.plot(*zip(*means), "s", mfc="none", color="#2ca02c", ms=7, label=f"mean over {n} tuning seeds")
        ax.plot([best["trial"]], [best["value"]], "*", color="#2ca02c", ms=11, label="chosen")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{best['objective']} ({'lower' if lower else 'higher'} is better)")
    ax.set_title(f"{best['method']} on {best['data']}: {len(trials)} trials, "
                 f"{best['budget_run_steps']:,} run-steps", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return save_figure(fig, folder / "history.png")


def tuning_folders(root: Path) -> list[Path]:
    """The method folders of an ``izoo tune`` output folder (each holds trials.csv and best.json)."""
    return sorted(p.parent for p in root.glob("*/trials.csv") if (p.parent / "best.json").is_file())


def split_recipe(label: str) -> tuple[str, str]:
    """"ali@tuned" -> ("ali", "tuned")."""
    method, _, recipe = label.rpartition("@")
    return (method, recipe) if method else (label, "")


def plot_tuned(rows: list[dict[str, Any]], dataset: str, path: Path) -> Path:
    """Each method's preset and tuned recipes on the fresh seeds: one panel per metric."""
    rows = [r for r in rows if r["dataset"] == dataset and split_recipe(r["method"])[1] in RECIPES]
    methods = list(dict.fromkeys(split_recipe(r["method"])[0] for r in rows))
    metrics = [m for m in TUNED_METRICS if any(r["metric"] == m for r in rows)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.9 * len(metrics), 0.45 * len(methods) + 1.3), squeeze=False)
    colours = {"preset": "#7f7f7f", "tuned": "#d62728"}
    for ax, metric in zip(axes[0], metrics):
        scale = TUNED_METRICS[metric][0]
        for i, method in enumerate(methods):
            for k, recipe in enumerate(RECIPES):
                values = [r["value"] * scale for r in rows if r["method"] == f"{method}@{recipe}" and r["metric"] == metric
                          and math.isfinite(r["value"])]
                y = i + (k - 0.5) * 0.3
                ax.plot(values, [y] * len(values), "o", ms=3.5, alpha=0.7, color=colours[recipe],
                        label=recipe if i == 0 else None)
                if values:
                    ax.plot([sum(values) / len(values)] * 2, [y - 0.13, y + 0.13], "-", lw=2, color=colours[recipe])
        ax.set_yticks(range(len(methods)), methods if ax is axes[0][0] else [""] * len(methods))
        ax.set_ylim(len(methods) - 0.5, -0.5)
        ax.set_title(metric + (" (%)" if scale == 100.0 else ""), fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].legend(fontsize=7, frameon=False, loc="lower left")
    fig.suptitle(f"{dataset}: the preset's recipe and the tuned one on fresh seeds (dots: seeds, bars: means)",
                 fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def tuned_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per dataset and method, mean ± s.e. of each metric at the preset's and the tuned recipe."""
    summary = summary_index(rows)
    metrics = [m for m in TUNED_METRICS if any(r["metric"] == m for r in rows)]
    lines = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        seeds = sorted({r["seed"] for r in rows if r["dataset"] == dataset})
        lines += [f"## {dataset} (fresh seeds {', '.join(map(str, seeds))}; mean ± s.e.)", "",
                  "| method | recipe | " + " | ".join(m + (" (%)" if TUNED_METRICS[m][0] == 100.0 else "") for m in metrics)
                  + " |", "| --- | --- |" + " --- |" * len(metrics)]
        methods = dict.fromkeys(split_recipe(r["method"])[0] for r in rows if r["dataset"] == dataset)
        for method in methods:
            for recipe in RECIPES:
                cells = [mean_se_text(summary, (dataset, f"{method}@{recipe}", m), *TUNED_METRICS[m]) for m in metrics]
                lines.append(f"| {method} | {recipe} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def importance_table(folders: list[Path]) -> str:
    """Markdown: each search's best recipe and its parameters' fANOVA importances (best.json)."""
    lines = ["## The searches (best recipe; parameters by fANOVA importance over the completed trials)", "",
             "| search | trials | trials/hour | best | recipe | importances |", "| --- | --- | --- | --- | --- | --- |"]
    for f in folders:
        best = read_json_object(f / "best.json", "run izoo tune again")
        recipe = ", ".join(f"{k}={_short(v)}" for k, v in sorted(best["params"].items()))
        ranked = sorted((best.get("importances") or {}).items(), key=lambda kv: -kv[1])
        shares = ", ".join(f"{k} {v:.2f}" for k, v in ranked) or "-"
        confirmed = best.get("confirmation")
        again = f", mean with {len(confirmed['seeds'])} more seeds" if confirmed else ""
        rate = f"{best['trials_per_hour']:.1f}" if "trials_per_hour" in best else "-"
        lines.append(f"| {f.name} | {best['trials']} | {rate} | {best['value']:.4g} (trial {best['trial']}{again}) | {recipe} "
                     f"| {shares} |")
    return "\n".join(lines) + "\n"


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def draw_tuning_folder(folder: Path) -> list[Path]:
    """Every figure of a published tuning folder: the histories under ``tuning/``, the fresh-seed
    comparison per dataset, the paper's layout of each recipe's first fresh seed
    (``comparison-<dataset>-<recipe>.png``, where its samples were published), the curves and
    ``results_table.md``."""
    written = [plot_history(f) for f in tuning_folders(folder / "tuning")]
    rows = read_rows(folder / "results.csv") if (folder / "results.csv").is_file() else []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        written.append(plot_tuned(rows, dataset, folder / f"tuned-{safe_name(dataset)}.png"))
        labels = list(dict.fromkeys(r["method"] for r in rows if r["dataset"] == dataset))
        seed = min(r["seed"] for r in rows if r["dataset"] == dataset)
        for recipe in RECIPES:
            columns = [(split_recipe(label)[0], label) for label in labels if split_recipe(label)[1] == recipe]
            path = published_layout(folder, dataset, columns, seed,
                                    folder / f"comparison-{safe_name(dataset)}-{recipe}.png",
                                    f"{dataset}, seed {seed}: each strategy at the {recipe} recipe")
            written += [path] if path else []
    if (folder / "curves.csv").is_file():
        written += plot_curves(read_curve(folder / "curves.csv"), folder)
    if rows:
        table = folder / "results_table.md"
        write_text(table, "# Tuned against the preset's recipe\n\n" + tuned_table(rows)
                   + importance_table(tuning_folders(folder / "tuning")))
        written.append(table)
    return written


__all__ = ["draw_tuning_folder", "plot_history", "plot_tuned", "tuned_table", "tuning_folders"]
