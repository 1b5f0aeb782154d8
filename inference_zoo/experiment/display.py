"""Terminal display for long runs: a rich progress bar with live losses, and the results table."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

from rich.console import Console, ConsoleOptions, RenderResult
from rich.progress import BarColumn, Progress, Task
from rich.table import Table
from rich.text import Text

from ..core.config import VARIANT_MARK, RunConfig, split_label
from ..core.results import HEADLINE_METRICS, SHARED_NOTE, aggregate, better, summary_index

SHOWN_METRICS = [*HEADLINE_METRICS, "train_seconds"]
HEARTBEAT_SECONDS = 30.0  # without a bar: a line per group of runs at least this often while it trains
MIN_BAR, MAX_BAR = 10, 30  # the bar's width in columns
SPEED_WINDOW = 300.0  # seconds of progress the rate and ETA are estimated over (rich's 30 s misses slow logs)


class TerminalDisplay:
    """What ``run_compare`` shows in a terminal: which engine trains each method, a progress bar
    per stack with live losses, one line per cell kept or skipped, and the results table. Only a
    listener: ``run_compare`` does the work with or without it.

    Where the bar cannot be drawn (output to a file or pipe, a dumb terminal) or is turned off, each
    stack prints a plain line at least every ``interval`` seconds and one when a phase ends.
    ``console`` (stderr) and ``clock`` (seconds) are there for tests."""

    def __init__(self, show_progress: bool = True, console: Console | None = None,
                 clock: Callable[[], float] = time.monotonic, interval: float = HEARTBEAT_SECONDS) -> None:
        self.console = console or Console(stderr=True)
        drawn = (self.console.is_terminal or self.console.is_jupyter) and not self.console.is_dumb_terminal
        self.plain = not (show_progress and drawn)
        self.clock, self.interval = clock, interval
        self.bar = _FittedProgress(console=self.console, get_time=clock, disable=self.plain,
                                   speed_estimate_period=SPEED_WINDOW)

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

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)

    def progress_for(self, configs: list[RunConfig]):
        bar = self.bar
        label, short = _labels(configs)
        group: dict[str, Any] = {"task": None, "phase": None, "said": self.clock()}

        def update(phase: str, step: int, total: int, logs: dict[str, float]) -> None:
            if group["phase"] != phase:
                if group["task"] is not None:
                    bar.remove_task(group["task"].id)
                # a phase named after its method goes unsaid, unless an earlier phase was shown
                said = phase != configs[0].method or group["phase"] is not None
                named = [f"{text} {phase}" if said else text for text in (label, short)]
                task_id = bar.add_task(named[0], total=total, short=named[1], losses="")
                group["task"], group["phase"] = next(t for t in bar.tasks if t.id == task_id), phase
            bar.update(group["task"].id, completed=step, losses=" ".join(f"{k}={v:.3g}" for k, v in logs.items()))
            if self.plain and (step >= total or self.clock() - group["said"] >= self.interval):
                self.console.print(_plain_line(group["task"]), soft_wrap=True, highlight=False, markup=False)
                group["said"] = self.clock()

        return update

    def stop(self) -> None:
        self.bar.stop()

    def finish(self, out: Path, rows: list[dict[str, Any]], figures: list[Path]) -> None:
        print_summary(rows, Console())
        self.console.print(f"results: {out / 'results.csv'}  summary: {out / 'summary.csv'}")
        for path in figures:
            self.console.print(f"figure: {path}")


def _labels(configs: list[RunConfig]) -> tuple[str, str]:
    """The runs trained together, in full and short: ("ali seeds 0-4", "ali 5 seeds");
    ("ali lr=0.001|lr=0.01 seed 0", "ali 2 runs")."""
    method = configs[0].method
    seeds = list(dict.fromkeys(c.seed for c in configs))
    variants = "|".join(dict.fromkeys(c.variant for c in configs if c.variant))
    label = f"{method}{' ' + variants if variants else ''} seed{'s' if len(seeds) > 1 else ''} {_seed_text(seeds)}"
    if variants:
        return label, f"{method} {len(configs)} runs"
    return label, f"{method} {len(seeds)} seeds" if len(seeds) > 1 else label


def _seed_text(seeds: list[int]) -> str:
    """[0, 1, 2, 3, 7] -> "0-3,7": runs of three or more as ranges."""
    parts: list[str] = []
    start = 0
    for i, seed in enumerate(seeds):
        if i + 1 == len(seeds) or seeds[i + 1] != seed + 1:
            run = seeds[start:i + 1]
            parts += [f"{run[0]}-{run[-1]}"] if len(run) > 2 else map(str, run)
            start = i + 1
    return ",".join(parts)


def _rate(task: Task) -> str:
    speed = task.speed
    if speed is None:
        return "? steps/s"
    return f"{speed:.0f} steps/s" if speed >= 100 else f"{speed:.3g} steps/s"


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"


def _plain_line(task: Task) -> str:
    """"ali seeds 0-4: step 600/1500 (40%), 35.2 steps/s, ETA 0:00:26, loss_d=1.23 loss_g=0.98";
    at the phase's end "..., phase done, ..." instead of the ETA."""
    done = task.finished
    eta = "phase done" if done else f"ETA {_clock(task.time_remaining)}"
    losses = task.fields["losses"]
    return (f"{task.description}: step {task.completed:.0f}/{task.total:.0f} ({task.percentage:.0f}%), "
            f"{_rate(task)}, {eta}{', ' + losses if losses else ''}")


class _FittedProgress(Progress):
    """A ``Progress`` whose lines fit the terminal: the count, rate and ETA stay whole; the label
    is shortened only if it does not fit beside them and the bar, and the losses follow on the
    line, or on the next one where they do not fit beside a full bar."""

    def make_tasks_table(self, tasks: Any) -> Any:  # laid out when drawn, at the width there is
        return _FittedLines([task for task in tasks if task.visible])


class _FittedLines:
    """The progress lines of ``tasks``, laid out at the width they are drawn at: each a label,
    the bar, and the count, rate and ETA in columns that line up from task to task."""

    def __init__(self, tasks: list[Task]) -> None:
        self.tasks = tasks

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.tasks:
            return
        tasks, width = self.tasks, options.max_width
        stats = [[f"{t.completed:.0f}/{t.total:.0f}", _rate(t), _clock(t.time_remaining)] for t in tasks]
        stat_widths = [max(len(f"{t.total:.0f}") * 2 + 1 for t in tasks),
                       max(len("999 steps/s"), *(len(s[1]) for s in stats)),
                       max(len("0:00:00"), *(len(s[2]) for s in stats))]
        fixed = sum(stat_widths) + len(stat_widths)  # with the space before each
        room = width - fixed - MIN_BAR - 1
        labels = [t.description if len(t.description) <= room else t.fields["short"] for t in tasks]
        label_width = min(max(map(len, labels)), max(room, 1))
        bar_room = width - label_width - 1 - fixed
        losses = [t.fields["losses"] for t in tasks]
        beside = bar_room - max(map(len, losses)) - 1 >= MAX_BAR
        bar_width = max(MIN_BAR, min(MAX_BAR, bar_room))
        for task, label, (count, rate, eta), loss in zip(tasks, labels, stats, losses):
            line = Table.grid(padding=(0, 1))
            line.add_column(width=label_width, no_wrap=True, overflow="ellipsis")
            line.add_column(width=bar_width, no_wrap=True)
            for stat_width in stat_widths:
                line.add_column(width=stat_width, justify="right", no_wrap=True)
            cells = [Text(count, "progress.download"), Text(rate, "progress.data.speed"),
                     Text(eta, "progress.remaining")]
            if beside:
                line.add_column(no_wrap=True, overflow="ellipsis")
                cells.append(Text(loss))
            line.add_row(Text(label), BarColumn(bar_width=bar_width).render(task), *cells)
            yield line
            if loss and not beside:
                yield Text("  " + loss, no_wrap=True, overflow="ellipsis")


def engine_lines(configs: list[RunConfig]) -> list[str]:
    """Which engine trains each method, and for one run at a time, why (plugins want to know);
    then the training recipe: one line when every method shares it, else each method's under it
    (``--recipe tuned``)."""
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
    if not differ and firsts:
        lines.append(f"recipe of every method: {_recipe_text(next(iter(firsts.values())))}")
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
            title = (f"{dataset}{', ' + method if method else ''}: "
                     f"{f'mean ± s.e. over {n} seeds' if n > 1 else 'one seed'}"
                     f"{'; columns: ' + ', '.join(keys) if keys else ''}")
            shown = [(metric, [index.get((dataset, label, metric)) for label in columns])
                     for metric in SHOWN_METRICS + ["diverged"]]
            shown = [(metric, cells) for metric, cells in shown if any(cells)]
            shared = any(c and c["shared"] for _, cells in shown for c in cells)
            caption = "↑/↓: higher/lower is better" + (f"; {SHARED_NOTE}" if shared else "")
            table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
            table.add_column("metric", no_wrap=True)
            for header in headers:
                table.add_column(header, justify="right", overflow="fold")  # nothing cut off
            for metric, cells in shown:
                way = {"higher": " ↑", "lower": " ↓"}.get(better(metric) or "", "")
                table.add_row(metric + way, *(_fmt(c) if c else "-" for c in cells))
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
    """"mean ± se" of a ``summary_index`` entry; "mean (shared)" for a stack's one wall time."""
    if math.isnan(s["mean"]):
        return "nan"
    text = f"{s['mean']:.3g}"
    if s.get("shared"):
        return text + " (shared)"
    return text + f" ± {s['se']:.2g}" if s["n"] > 1 else text
