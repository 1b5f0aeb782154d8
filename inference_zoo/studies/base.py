"""What a study is, how its cells are built, and how its results are published under figures/.

Publishing copies only small, tidy files (results.csv, summary.csv, the sample arrays the figures
need) plus provenance (exact command, commit, wall time, machine) into ``figures/<study>/``;
``izoo figures`` then redraws every figure from those files alone, without training.
"""
from __future__ import annotations

import json
import platform
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..compare import plan_compare
from ..config import RunConfig
from ..environment import git_commit
from ..errors import UserError
from ..fileio import write_json
from ..registry import Registry
from ..results import read_rows, write_rows, write_summary
from ..runs import save_samples
from ..study import cell_dir, safe_name
from ..viz.sweep_figure import plot_sweeps


@dataclass(frozen=True)
class Study:
    """A grid of cells and the figures drawn from its tidy results.

    ``sample_points(config)`` says how many held-out points of a cell's samples.npz to publish
    (None: none), so figures that need arrays can be redrawn from ``figures/`` alone.
    """

    name: str
    description: str
    datasets: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: int
    preset: str
    figures: Callable[[Path], list[Path]]
    sample_points: Callable[[RunConfig], int | None] = lambda config: None
    options: dict[str, dict[str, Any]] = field(default_factory=dict)


STUDIES: Registry[Study] = Registry("study")


def study_configs(study: Study, seeds: list[int] | None = None, steps: int | None = None,
                  preset: str | None = None, device: str = "auto", lr: float | list[float] | None = None,
                  datasets: list[str] | None = None, engine: str = "auto", *, amp: bool = False,
                  compile: bool = False, options: dict[str, dict[str, Any]] | None = None,
                  methods: list[str] | None = None) -> list[RunConfig]:
    """The study's cells; ``datasets`` and ``methods`` restrict them (e.g. to split a study across
    processes, or to sweep one method's option); ``options`` (per method, as
    ``compare.plan_compare`` takes them, sweeps included) override the study's own."""
    seeds = seeds if seeds is not None else list(range(study.seeds))
    for kind, given, valid in (("dataset", datasets, study.datasets), ("method", methods, study.methods)):
        unknown = sorted(set(given or []) - set(valid))
        if unknown:
            raise UserError(f"study {study.name} has no {kind} {', '.join(unknown)}; valid: {', '.join(valid)}")
    methods = [m for m in study.methods if m in methods] if methods else list(study.methods)
    configs: list[RunConfig] = []
    for data in datasets or study.datasets:
        merged = {m: {**study.options.get(m, {}), **(options or {}).get(m, {})} for m in methods}
        configs += plan_compare(methods, data, preset or study.preset, seeds, merged,
                                steps=steps, lr=lr, device=device, study=study.name, engine=engine,
                                amp=amp, compile=compile)
    return configs


def publish_study(study: Study, out: Path, target: Path, command: str, wall_seconds: float | None) -> list[Path]:
    """Copy a finished study's tidy tables and the figures' arrays to ``target``; draw the figures.

    ``wall_seconds`` None (publishing without training) keeps the wall time published before.
    """
    rows = read_rows(out / "results.csv")
    target.mkdir(parents=True, exist_ok=True)
    write_rows(target / "results.csv", rows)
    write_summary(target / "summary.csv", rows)
    samples_dir = target / "samples"
    if samples_dir.exists():
        shutil.rmtree(samples_dir)
    configs, run_commits, stack_size = {}, set(), {}
    for run in sorted((out / "runs").glob("*/*/seed*/config.json")):
        env = run.parent / "env.json"
        config = RunConfig.from_dict(json.loads(run.read_text()))
        if env.is_file():
            env_record = json.loads(env.read_text())
            run_commits.add(str(env_record.get("git_commit")))
            stacks = env_record.get("stacks") or [{"seeds": [config.seed]}]
            stack_size[(config.data.label(), config.label, config.seed)] = len(stacks[-1]["seeds"])
        n = study.sample_points(config)
        source = run.parent / "samples.npz"
        if n is None or not source.is_file():
            continue
        with np.load(source, allow_pickle=False) as data:
            arrays = {k: data[k][:n] for k in data.files}
        save_samples(samples_dir / f"{safe_name(config.data.label())}__{config.label}__seed{config.seed}.npz", arrays)
        configs[f"{config.data.label()}/{config.label}"] = config.to_dict()
    one = next(iter(configs.values()), None)
    history, earlier = [], {}  # every command that contributed cells, when a study is run in several parts
    if (target / "study.json").is_file():
        earlier = json.loads((target / "study.json").read_text())
        history = earlier.get("command_history", [])
    if wall_seconds is None:
        wall_seconds = earlier.get("wall_seconds") or 0.0
    history = [h for h in history if h != command] + [command]
    write_json(target / "study.json", {
        "study": study.name,
        "description": study.description,
        "command": command,
        "command_history": history,
        "git_commit": git_commit(),  # at publishing; the runs' own commits are in run_commits
        "run_commits": sorted(run_commits),
        "wall_seconds": round(wall_seconds, 1),
        # a stacked run's train_seconds is its whole stack's: count each stack once
        "train_seconds_total": round(sum(r["value"] / stack_size.get((r["dataset"], r["method"], r["seed"]), 1)
                                         for r in rows if r["metric"] == "train_seconds"), 1),
        "cells": len({(r["dataset"], r["method"], r["seed"]) for r in rows}),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "python": sys.version.split()[0]},
        "example_config": one,
    })
    return study_figures(study, target)


def study_figures(study: Study, folder: Path) -> list[Path]:
    """The study's own figures, plus metric-against-setting plots where it swept a setting."""
    return study.figures(folder) + plot_sweeps(read_rows(folder / "results.csv"), folder)


def rebuild_figures(root: Path) -> list[Path]:
    """Redraw the figures of every published study folder under ``root`` (no training)."""
    written: list[Path] = []
    folders = sorted(p.parent for p in root.glob("*/study.json"))
    if not folders:
        raise UserError(f"no published study under {root} (expected {root}/<study>/study.json)")
    for folder in folders:
        name = json.loads((folder / "study.json").read_text())["study"]
        written += study_figures(STUDIES.get(name), folder)
    return written


def load_published_samples(folder: Path, dataset: str, method: str, seed: int) -> dict[str, np.ndarray] | None:
    path = folder / "samples" / f"{safe_name(dataset)}__{method}__seed{seed}.npz"
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


__all__ = ["STUDIES", "Study", "cell_dir", "load_published_samples", "publish_study", "rebuild_figures", "study_configs"]
