"""A tuning history (``izoo tune``'s ``trials.csv``): the objective of each trial in the order
they were asked, the best so far as a step line, failed trials as crosses along the bottom.

Drawn from ``trials.csv`` and ``best.json`` alone, so ``izoo figures`` redraws it.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

from ..core.fileio import read_json_object
from .style import plt, save_figure


def plot_history(folder: Path) -> Path:
    """``folder/history.png`` from ``folder/trials.csv`` and ``folder/best.json``."""
    with open(folder / "trials.csv", newline="") as f:
        trials = list(csv.DictReader(f))
    best = read_json_object(folder / "best.json", "run izoo tune again")
    lower = best.get("direction") == "minimize"
    done = [(int(t["trial"]), float(t["value"])) for t in trials if t["state"] == "COMPLETE" and t["value"]]
    failed = [int(t["trial"]) for t in trials if t["state"] != "COMPLETE"]
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    if done:
        xs, ys = zip(*done)
        ax.plot(xs, ys, "o", color="#1f77b4", ms=4, label="trial")
        running, best_so_far = [], math.inf if lower else -math.inf
        for y in ys:
            best_so_far = min(best_so_far, y) if lower else max(best_so_far, y)
            running.append(best_so_far)
        ax.step(xs, running, where="post", color="#d62728", lw=1.2, label="best so far")
    if failed:
        bottom = min(ys) if done else 0.0
        ax.plot(failed, [bottom] * len(failed), "x", color="#7f7f7f", ms=5, label="failed or re-queued")
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


__all__ = ["plot_history", "tuning_folders"]
