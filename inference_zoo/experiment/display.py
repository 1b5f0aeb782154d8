"""Terminal display for long runs: a rich progress bar with live losses, and the results table."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..core.config import VARIANT_MARK, RunConfig, split_label
from ..core.results import HEADLINE_METRICS, aggregate, summary_index

SHOWN_METRICS = [*HEADLINE_METRICS, "train_seconds"]


class TerminalDisplay:
    """What ``run_compare`` shows in a terminal: which engine trains each method, a progress bar
    per stack with live losses, one line per cell kept or skipped, and the results table. Only a
    listener: ``run_compare`` does the work with or without it."""

    def __init__(self, show_progress: bool = True) -> None:
        self.console = Console(stderr=True)
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TimeRemainingColumn(), TextColumn("{task.fields[losses]}"), console=self.console,
                            disable=not show_progress)

    def start(self, configs: list[RunConfig]) -> None:
        for line in engine_lines(configs):  # on stdout, with the tables: stderr keeps errors to one line
            Console().print(line, highlight=False)
        self.bar.start()

    def on_cell(self, i: int, n: int, config: RunConfig, status: str) -> None:
        if status == "finished":
            self.console.print(f"[{i + 1}/{n}] {config.label} seed {config.seed}: finished earlier, kept")
        elif status == "busy":
            self.console.print(f"[{i + 1}/{n}] {config.label} seed {config.seed}: being trained by another "
                               "process, skipped (re-run later to collect it)")

    def progress_for(self, configs: list[RunConfig]):
        bar = self.bar
        task = {"id": None, "phase": None}
        seeds = list(dict.fromkeys(c.seed for c in configs))
        variants = "|".join(dict.fromkeys(c.variant for c in configs if c.variant))
        label = (f"{configs[0].method}{' ' + variants if variants else ''} "
                 f"seed{'s' if len(seeds) > 1 else ''} {','.join(map(str, seeds))}")

        def update(phase: str, step: int, total: int, logs: dict[str, float]) -> None:
            if task["phase"] != phase:
                if task["id"] is not None:
                    bar.remove_task(task["id"])
                task["id"] = bar.add_task(f"{label} {phase}", total=total, losses="")
                task["phase"] = phase
            losses = " ".join(f"{k}={v:.3g}" for k, v in logs.items())
            bar.update(task["id"], completed=step, losses=losses)

        return update

    def stop(self) -> None:
        self.bar.stop()

    def finish(self, out: Path, rows: list[dict[str, Any]], figures: list[Path]) -> None:
        print_summary(rows, Console())
        self.console.print(f"results: {out / 'results.csv'}  summary: {out / 'summary.csv'}")
        for path in figures:
            self.console.print(f"figure: {path}")


def engine_lines(configs: list[RunConfig]) -> list[str]:
    """Which engine trains each method, and for one run at a time, why (plugins want to know);
    where methods train at different recipes (``--recipe tuned``), each one's."""
    from ..data import build_dataset
    from ..engine.stack.engine import can_stack

    lines = []
    firsts = {c.method: c for c in reversed(configs)}
    differ = len({_recipe_text(c) for c in firsts.values()}) > 1
    for method in dict.fromkeys(c.method for c in configs):
        config = firsts[method]
        if config.train.engine == "stacked":
            line = f"{method}: stacked engine (its seeds train as one model)"
        else:
            reason = can_stack(config, build_dataset(config.data).x_dim)
            line = f"{method}: one run at a time" + (f" ({reason})" if reason else " (--engine single)")
        lines += [line] + ([f"  recipe: {_recipe_text(config)}"] if differ else [])
    return lines


def _recipe_text(config: RunConfig) -> str:
    t = config.train
    decay = f" decay from {t.lr_decay_start:g}" if t.lr_schedule != "constant" else " rate"
    average = f"weights averaged ({t.ema_decay:g})" if t.ema_decay else "no weight average"
    return f"Adam {t.lr:.3g}, beta1 {t.beta1:g}, {t.lr_schedule}{decay}, {average}"


def print_summary(rows: list[dict[str, Any]], console: Console) -> None:
    """One table per dataset: metrics as rows, methods as columns (fits a narrow terminal); in a
    sweep, one table per dataset and method, its settings as columns."""
    summary = aggregate(rows)
    index = summary_index(rows)
    for dataset in dict.fromkeys(s["dataset"] for s in summary):
        labels = list(dict.fromkeys(s["method"] for s in summary if s["dataset"] == dataset))
        n = max(s["n"] for s in summary if s["dataset"] == dataset)
        swept = any(split_label(label)[1] for label in labels)
        tables: dict[str, list[str]] = {}
        for label in labels:
            tables.setdefault(split_label(label)[0] if swept else "", []).append(label)
        for method, columns in tables.items():
            headers, keys = _column_headers(columns)
            title = (f"{dataset}{', ' + method if method else ''}: mean ± s.e. over {n} seed(s)"
                     f"{'; columns: ' + ', '.join(keys) if keys else ''}")
            table = Table(title=title, title_justify="left")
            table.add_column("metric", no_wrap=True)
            for header in headers:
                table.add_column(header, justify="right", overflow="fold")  # nothing cut off
            for metric in SHOWN_METRICS + ["diverged"]:
                cells = [index.get((dataset, label, metric)) for label in columns]
                if any(cells):
                    table.add_row(metric, *(_fmt(c) if c else "-" for c in cells))
            console.print(table)


def _column_headers(labels: list[str]) -> tuple[list[str], list[str]]:
    """(column headers, swept settings named once in the title): a method's variants share their
    settings, so the columns show values alone ("0.05, 0.001" under "likelihood_std, lr"), which
    keeps four swept columns inside an 80-column terminal; otherwise the labels' variants."""
    settings = [split_label(label)[1] for label in labels]
    keys = list(settings[0])
    if keys and all(list(s) == keys for s in settings):
        return [", ".join(s.values()) for s in settings], keys
    return [label.partition(VARIANT_MARK)[2] or label for label in labels], []


def _fmt(s: dict[str, Any]) -> str:
    if math.isnan(s["mean"]):
        return "nan"
    text = f"{s['mean']:.3g}"
    return text + f" ± {s['se']:.2g}" if s["n"] > 1 else text
