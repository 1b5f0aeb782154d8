"""Runs end to end: train (or resume), evaluate, and write each run folder.

Run folder: config.json, env.json, checkpoint.pt, metrics.jsonl (training curves), samples.npz
(arrays for figures), results.csv (tidy rows; written last, so its presence means "finished").
Runs of the stacked engine that differ only in their seed train together (``run_group``); each
still gets its own folder, rows and divergence record (and, with --mlflow, its own MLflow run).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any


from ..core.config import RunConfig, refuse_changed_config
from ..data import build_dataset
from ..evaluation.evaluate import curve_rows, evaluate, tidy_rows
from ..core.fileio import read_json_object, save_arrays, write_text
from ..core.results import read_rows, write_rows
from ..core.errors import Diverged, Stopped
from ..engine.train import Progress, Trainer, TrainResult, Watcher, evaluated_strategy, held_out_split
from ..engine import distributed
from ..engine.stack.engine import StackedTrainer
from ..engine.mlflow_sink import finish_run



def is_finished(run_dir: Path) -> bool:
    return (run_dir / "results.csv").is_file()


def check_same_config(run_dir: Path, config: RunConfig) -> None:
    """Refuse to reuse a folder that holds a run of a different config, naming the keys."""
    path = run_dir / "config.json"
    if not path.is_file():
        return
    saved = read_json_object(path, "delete the run folder to train that cell again")
    refuse_changed_config(saved, config, run_dir)


def run_one(config: RunConfig, run_dir: str | Path, shared_dir: str | Path | None = None,
            progress: Progress | None = None) -> list[dict[str, Any]]:
    """Train and evaluate one run, resuming or skipping what the folder already holds."""
    return run_group([config], [run_dir], shared_dir, progress)[0]


def run_group(configs: list[RunConfig], run_dirs: list[str | Path], shared_dir: str | Path | None = None,
              progress: Progress | None = None, watcher: Watcher | None = None) -> list[list[dict[str, Any]]]:
    """Rows of each run; unfinished stacked-engine runs train as one stack, others one by one.
    A run its ``watcher`` stops at a curve point gets the rows ``stopped`` = 1 and
    ``trained_run_steps``."""
    run_dirs = [Path(d) for d in run_dirs]
    for config, run_dir in zip(configs, run_dirs):
        check_same_config(run_dir, config)
    rows: dict[int, list[dict[str, Any]]] = {i: read_rows(d / "results.csv") for i, d in enumerate(run_dirs)
                                             if is_finished(d)}
    todo = [i for i in range(len(configs)) if i not in rows]
    stacked = [i for i in todo if configs[i].train.engine == "stacked"]
    if stacked:
        outcomes = StackedTrainer([configs[i] for i in stacked], [run_dirs[i] for i in stacked],
                                  shared_dir, progress, evaluator=curve_rows, watcher=watcher).run()
        for i, outcome in zip(stacked, outcomes):
            rows[i] = _finish(configs[i], run_dirs[i], outcome)
    for i in todo:
        if i not in rows:
            rows[i] = _finish(configs[i], run_dirs[i], _train_single(configs[i], run_dirs[i], shared_dir, progress,
                                                                     watcher))
    if distributed.is_writer():
        for i, config in enumerate(configs):
            if config.train.mlflow:  # its MLflow run ends with the rows (or, finished before, is made now)
                finish_run(config, run_dirs[i], rows[i])
    return [rows[i] for i in range(len(configs))]


def _train_single(config: RunConfig, run_dir: Path, shared_dir: str | Path | None,
                  progress: Progress | None, watcher: Watcher | None) -> TrainResult | Diverged | Stopped:
    try:
        return Trainer(config, run_dir, shared_dir, progress, evaluator=curve_rows, watcher=watcher).run()
    except (Diverged, Stopped) as exc:
        return exc


def _finish(config: RunConfig, run_dir: Path, outcome: TrainResult | Diverged | Stopped) -> list[dict[str, Any]]:
    """Evaluate a trained run and write its samples and rows (or record its divergence or stop);
    in a data-parallel run, process 0 alone."""
    if not distributed.is_writer():
        return []
    if isinstance(outcome, Stopped):
        rows = tidy_rows(config, {"diverged": 0.0, "stopped": 1.0, "trained_run_steps": float(outcome.run_steps)})
        write_text(run_dir / "stopped.txt", str(outcome) + "\n")
        write_rows(run_dir / "results.csv", rows)
        return rows
    try:
        if isinstance(outcome, Diverged):
            raise outcome
        t0 = time.perf_counter()
        x_test, labels = held_out_split(config)
        values, samples = evaluate(evaluated_strategy(outcome), build_dataset(config.data), x_test, labels, config)
    except Diverged as exc:
        rows = tidy_rows(config, {"diverged": 1.0})
        write_text(run_dir / "diverged.txt", str(exc) + "\n")
        write_rows(run_dir / "results.csv", rows)
        return rows
    values["diverged"] = 0.0
    values["train_seconds"] = outcome.seconds
    values["eval_seconds"] = time.perf_counter() - t0
    save_arrays(run_dir / "samples.npz", samples)
    rows = tidy_rows(config, values)
    write_rows(run_dir / "results.csv", rows)
    return rows



