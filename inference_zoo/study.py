"""Running a grid of run configs ("cells") into one output folder, idempotently.

Layout of an output folder::

    runs/<dataset>/<method>/seed<k>/   one run folder per cell (see runs.py)
    shared/                            phases reused across strategies (the GAN of latent/posthoc)
    results.csv                        every cell's tidy rows
    summary.csv                        mean, standard error and n per (dataset, method, metric)
    comparison-<dataset>.png           paper-layout figure (first seed), built from samples.npz

A finished cell (its results.csv exists) is never trained again, so a stopped study continues
where it stopped; a cell whose folder holds a different config is refused, naming the keys.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable

from .config import RunConfig
from .data import build_dataset
from .errors import UserError
from .results import read_rows, write_rows, write_summary
from .runs import check_same_config, is_finished, run_one

OWNED = ("runs", "shared", "results.csv", "summary.csv")


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text)


def cell_dir(out: Path, config: RunConfig) -> Path:
    return out / "runs" / safe_name(config.data.label()) / safe_name(config.method) / f"seed{config.seed}"


def prepare_output(out: Path, configs: list[RunConfig], mode: str) -> None:
    """Check the folder against ``mode`` (new | resume | overwrite) before any training starts."""
    if out.exists() and not out.is_dir():
        raise UserError(f"output {out} exists and is not a folder")
    if mode == "overwrite":
        for name in OWNED:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        for figure in out.glob("comparison-*.png"):
            figure.unlink()
    elif mode == "new":
        if out.exists() and any(out.iterdir()):
            raise UserError(f"output folder {out} is not empty; pass --resume to continue it or --overwrite to replace it")
    elif mode == "resume":
        for config in configs:  # refuse a changed config now, not after hours of other cells
            check_same_config(cell_dir(out, config), config)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {out}: {exc.strerror or exc}") from None


OnCell = Callable[[int, int, RunConfig, bool], Any]


def run_cells(configs: list[RunConfig], out: Path, progress_for: Callable[[RunConfig], Any] | None = None,
              on_cell: OnCell | None = None) -> list[dict[str, Any]]:
    """Run every cell not yet finished; return all cells' rows and write the folder's tables."""
    rows: list[dict[str, Any]] = []
    for i, config in enumerate(configs):
        directory = cell_dir(out, config)
        skipped = is_finished(directory)
        if on_cell is not None:
            on_cell(i, len(configs), config, skipped)
        progress = progress_for(config) if (progress_for is not None and not skipped) else None
        rows += run_one(config, directory, out / "shared", progress)
    write_tables(out, rows)
    return rows


def write_tables(out: Path, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = list(rows)
    write_rows(out / "results.csv", rows)
    return write_summary(out / "summary.csv", rows)


def collect_rows(out: Path) -> list[dict[str, Any]]:
    """Every finished cell's rows under ``out/runs`` (what results.csv is rebuilt from)."""
    return [row for path in sorted((out / "runs").glob("*/*/seed*/results.csv")) for row in read_rows(path)]


def axis_limits(config: RunConfig) -> tuple[float, float]:
    """x and z axis half-widths: the paper's [-6, 6] and [-4, 4] for the 25-grid, scaled for others."""
    dataset = build_dataset(config.data)
    x_lim = 1.5 * float(abs(dataset.means).max()) if dataset.means is not None else 4.0
    return x_lim, 4.0
