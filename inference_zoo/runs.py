"""One run end to end: train (or resume), evaluate, and write the run folder.

Run folder: config.json, env.json, checkpoint.pt, metrics.jsonl (training curves), samples.npz
(arrays for figures), results.csv (tidy rows; written last, so its presence means "finished").
"""
from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .config import RunConfig, refuse_changed_config
from .errors import UserError
from .evaluate import evaluate, tidy_rows
from .fileio import atomic_write, write_text
from .results import read_rows, write_rows
from .train import Diverged, Trainer, held_out_split

Progress = Callable[[str, int, int, dict[str, float]], None]


def is_finished(run_dir: Path) -> bool:
    return (run_dir / "results.csv").is_file()


def check_same_config(run_dir: Path, config: RunConfig) -> None:
    """Refuse to reuse a folder that holds a run of a different config, naming the keys."""
    path = run_dir / "config.json"
    if not path.is_file():
        return
    try:
        saved = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    refuse_changed_config(saved, config, run_dir)


def run_one(config: RunConfig, run_dir: str | Path, shared_dir: str | Path | None = None,
            progress: Progress | None = None) -> list[dict[str, Any]]:
    """Train and evaluate one run, resuming or skipping what the folder already holds."""
    run_dir = Path(run_dir)
    check_same_config(run_dir, config)
    if is_finished(run_dir):
        return read_rows(run_dir / "results.csv")
    trainer = Trainer(config, run_dir, shared_dir, progress)
    try:
        result = trainer.run()
        t0 = time.perf_counter()
        x_test, labels = held_out_split(config)
        values, samples = evaluate(result.strategy, trainer.dataset, x_test, labels, config)
    except Diverged as exc:
        rows = tidy_rows(config, {"diverged": 1.0})
        write_text(run_dir / "diverged.txt", str(exc) + "\n")
        write_rows(run_dir / "results.csv", rows)
        return rows
    values["diverged"] = 0.0
    values["train_seconds"] = result.seconds
    values["eval_seconds"] = time.perf_counter() - t0
    save_samples(run_dir / "samples.npz", samples)
    rows = tidy_rows(config, values)
    write_rows(run_dir / "results.csv", rows)
    return rows


def save_samples(path: Path, samples: dict[str, np.ndarray]) -> None:
    def write(f: io.BufferedWriter) -> None:
        np.savez_compressed(f, **samples)

    atomic_write(path, write)
