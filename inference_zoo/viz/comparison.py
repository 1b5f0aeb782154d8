"""Rebuild an output folder's comparison figures from its stored results: the paper's layout for
vector data, sample / reconstruction / interpolation grids for images (viz/image_figures.py), and
metric-against-learning-rate plots for a sweep (viz/sweep_figure.py).

Reads only files (results.csv, each run's config.json and samples.npz), so figures can be
regenerated in seconds without training, and look the same for unchanged inputs.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..config import RunConfig
from ..data import build_dataset
from ..results import read_rows
from ..study import cell_path, safe_name
from .image_figures import image_figures, is_image_samples
from .mixture_figure import load_samples, plot_mixture_comparison
from .sweep_figure import plot_sweeps


def build_comparison_figures(out: Path, seed: int | None = None) -> list[Path]:
    """One figure per dataset in ``out/results.csv``: methods as columns, the lowest seed (or ``seed``)."""
    rows = read_rows(out / "results.csv")
    datasets: dict[str, dict[str, set[int]]] = {}
    for row in rows:
        datasets.setdefault(row["dataset"], {}).setdefault(row["method"], set()).add(row["seed"])
    written = plot_sweeps(rows, out)
    for dataset, methods in datasets.items():
        columns, config, shown = [], None, set()
        for method, seeds in methods.items():
            chosen = seed if seed is not None else min(seeds)
            shown.add(chosen)
            run = cell_path(out, dataset, method, chosen)
            if not (run / "samples.npz").is_file():
                continue  # diverged or missing: nothing to draw
            config = RunConfig.from_dict(json.loads((run / "config.json").read_text()))
            columns.append((method, load_samples(run / "samples.npz")))
        if not columns:
            continue
        title = f"{dataset}: seed {', '.join(map(str, sorted(shown)))}, {config.train.steps} steps"
        if is_image_samples(columns[0][1]):  # drawn from the arrays alone: no dataset files needed
            written += image_figures(columns, out, safe_name(dataset), title)
            continue
        ds = build_dataset(config.data)
        path = out / f"comparison-{safe_name(dataset)}.png"
        plot_mixture_comparison(columns, path, n_modes=ds.n_modes or None, x_lim=ds.plot_limit(), z_lim=4.0, title=title)
        written.append(path)
    return written
