"""Rebuild an output folder's comparison figures from its stored results: the paper's layout for
vector data, sample / reconstruction / interpolation grids for images (viz/image_figures.py), and
metric-against-learning-rate plots for a sweep (viz/sweep_figure.py).

Reads only files (results.csv, each run's config.json and samples.npz), so figures can be
regenerated in seconds without training, and look the same for unchanged inputs.
"""
from __future__ import annotations

from pathlib import Path

from ..core.config import RunConfig
from ..core.errors import UserError
from ..core.fileio import read_json_object
from ..data import build_dataset
from ..core.results import read_rows
from ..core.results import cell_path, safe_name
from .image_figures import image_figures, is_image_samples
from .mixture_figure import load_samples, plot_levels, plot_mixture_comparison
from .sweep_figure import plot_sweeps


def build_comparison_figures(out: Path, seed: int | None = None) -> list[Path]:
    """One figure per dataset in ``out/results.csv``: methods as columns, the lowest seed (or ``seed``)."""
    rows = read_rows(out / "results.csv")
    if not rows:
        raise UserError(f"{out / 'results.csv'} holds no results: nothing to draw")
    if seed is not None and seed not in {r["seed"] for r in rows}:
        seeds = ", ".join(map(str, sorted({r["seed"] for r in rows})))
        raise UserError(f"{out} holds no run with seed {seed} (its seeds: {seeds})")
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
            if (run / "diverged.txt").is_file() or chosen not in seeds:
                continue  # a diverged run has nothing to draw; its row says so
            if not (run / "samples.npz").is_file():
                raise UserError(f"{run / 'samples.npz'} is missing: the figure would lack {method}; "
                                "run that cell again (delete its results.csv and pass --resume)")
            config = RunConfig.from_dict(read_json_object(run / "config.json"))
            columns.append((method, load_samples(run / "samples.npz")))
        if not columns:
            continue
        title = f"{dataset}: seed {', '.join(map(str, sorted(shown)))}, {config.train.steps} steps"
        if is_image_samples(columns[0][1]):  # drawn from the arrays alone: no dataset files needed
            written += image_figures(columns, out, safe_name(dataset), title)
            continue
        ds = build_dataset(config.data)
        path = out / f"comparison-{safe_name(dataset)}.png"
        path = plot_mixture_comparison(columns, path, n_modes=ds.n_modes or None, x_lim=ds.plot_limit(), z_lim=4.0, title=title)
        written.append(path)
        for method, samples in columns:
            if "x_reconstructed_z1" in samples and ds.n_modes:
                written.append(plot_levels(method, samples, out / f"levels-{safe_name(dataset)}-{safe_name(method)}.png",
                                           n_modes=ds.n_modes, x_lim=ds.plot_limit(), title=title))
    return written
