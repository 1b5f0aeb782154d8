"""``izoo verify``: re-check a published study on this machine by re-training a few of its cells.

    izoo verify figures/identity_toy_converged --cells 3 --out runs/verify

Which cells (``sample_cells``): the study's cells are grouped by dataset and method label (a
sweep's variants are groups of their own); a ``random.Random(seed)`` shuffles the groups and
each group's seeds, and the sample takes one cell per group in that order, then a second seed
of each group, and so on: N cells spread over N groups where the study has that many, the same
N cells for the same ``--seed`` on any machine.

Which config: a published folder keeps one cell's resolved config (``study.json``'s
``example_config``) and a digest of every cell's config.json (``cells_from``). A cell's config is
that example with the cell's seed, method, variant (its swept settings), strategy options (the
example's for its own method, the study's for the others, the variant's swept ones) and data; its engine is the one whose config has the recorded digest (``train.engine`` is part of a
run's identity, so a cell published from a stack is re-trained by the stacked engine, alone or
with the other sampled seeds of its method: a member's numbers do not depend on its stack-mates).
A config that matches no recorded digest is still trained, and named in the report as unconfirmed.

Training and evaluation are the study's own (``cells.run_cells``: each cell's results.csv), into
``--out`` or a temporary folder, never into the published folder.

Verdict of each published metric (wall-clock timings left out): ``identical`` (the same float),
``within spread`` (|new - published| <= max(SPREAD_SIGMAS x the standard deviation of that metric
over the study's other published seeds of the same dataset, method and variant, SPREAD_FLOOR);
the verified seed is left out, so a wrong published value cannot widen its own tolerance, and
with fewer than two other seeds the floor alone applies; a new value inside the range of those
other seeds' published values is within spread too, since a metric whose seeds split between two
outcomes, such as an encoder that learns x or -x, has a standard deviation that fits neither),
``outside spread``, or ``missing``
(the re-trained cell did not report the metric). Verified: every metric identical or within spread.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..core.config import (ENGINES, VARIANT_MARK, RunConfig, TrainConfig, coerce_value, split_label,
                           upgrade_config_dict)
from ..core.errors import UserError
from ..core.fileio import read_json_object, write_csv, write_json
from ..core.results import cell_dir, collect_rows
from ..studies.base import TIMING_METRICS, Cell, Piece, Study, cell_name, config_digest, read_published_folder

VERIFY_FIELDS = ["cell", "metric", "published", "new", "difference", "spread", "verdict"]
SPREAD_SIGMAS = 2.0
SPREAD_FLOOR = 1e-6
PASSING = ("identical", "within spread")


@dataclass
class Verification:
    """What ``verify`` found: one row per (cell, published metric), where it ran, and what it trained."""

    folder: Path
    study: str
    seed: int
    cells: list[str]
    rows: list[dict[str, Any]]
    machine: dict[str, Any]
    published_commits: dict[str, str | None]
    unconfirmed: list[str] = field(default_factory=list)  # cells whose config matched no recorded digest
    out: Path | None = None  # where the rows were written (None: a temporary folder, removed)
    wall_seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        return {v: sum(r["verdict"] == v for r in self.rows) for v in (*PASSING, "outside spread", "missing")}

    @property
    def passed(self) -> bool:
        return all(r["verdict"] in PASSING for r in self.rows)


# --- reading the published study -------------------------------------------------------------
def read_published_study(folder: Path) -> tuple[Study, Piece, RunConfig]:
    """The study, its cells' rows and provenance, and its recorded example config; UserError for a
    folder that is missing, not a published study, or damaged."""
    from ..studies import STUDIES

    if not folder.exists():
        raise UserError(f"{folder} does not exist (expected a published study folder, "
                        "e.g. figures/identity_toy_converged)")
    if not folder.is_dir() or not (folder / "study.json").is_file():
        raise UserError(f"{folder} is not a published study folder (no study.json); "
                        "verify takes a folder that izoo study --publish wrote, e.g. figures/identity_toy_converged")
    record = read_json_object(folder / "study.json", "restore it from git or re-publish the study")
    if not isinstance(record.get("study"), str):
        raise UserError(f"cannot read {folder / 'study.json'} (no study name); restore it from git")
    study = STUDIES.get(record["study"])
    if not isinstance(record.get("example_config"), dict):
        raise UserError(f"{folder} records no cell config (published before study.json kept one); "
                        "re-publish it from its run folder to verify it")
    try:
        example = RunConfig.from_dict(record["example_config"])
    except (TypeError, ValueError, UserError) as exc:
        raise UserError(f"cannot read the example_config of {folder / 'study.json'} ({exc}); "
                        "restore it from git") from None
    if not isinstance(record.get("cells_from", {}), dict):
        raise UserError(f"cannot read {folder / 'study.json'} (damaged cells_from); restore it from git")
    piece = read_published_folder(folder)
    if not piece.rows:
        raise UserError(f"{folder / 'results.csv'} holds no cell; restore it from git")
    return study, piece, example


def sample_cells(cells: list[Cell], n: int, seed: int) -> list[Cell]:
    """``n`` of ``cells``, spread over their (dataset, method label) groups (module docstring), in
    the order given."""
    groups: dict[tuple[str, str], list[Cell]] = {}
    for cell in cells:
        groups.setdefault(cell[:2], []).append(cell)
    rng = random.Random(seed)
    order = list(groups)
    rng.shuffle(order)
    for key in order:
        rng.shuffle(groups[key])
    rounds = itertools.zip_longest(*(groups[key] for key in order))
    chosen = set(itertools.islice((c for c in itertools.chain.from_iterable(rounds) if c is not None), n))
    return [cell for cell in cells if cell in chosen]


# --- each cell's config ------------------------------------------------------------------------
def cell_config(study: Study, example: RunConfig, cell: Cell, digest: str | None = None) -> tuple[RunConfig, bool]:
    """The config a cell of the study was trained with, rebuilt from the study's example config,
    and whether it has the cell's recorded ``digest``."""
    from ..data import parse_data_spec
    from ..engine.train import resolve_options
    from ..strategies import STRATEGIES

    dataset, label, seed = cell
    method, settings = split_label(label)
    where = f"cell {cell_name(cell)}"
    cls = STRATEGIES.get(method)
    train_keys = {f.name for f in dataclasses.fields(TrainConfig)}
    train = dataclasses.replace(example.train, **{k: coerce_value(v, getattr(example.train, k), f"{where}: {k}")
                                                  for k, v in settings.items() if k in train_keys})
    defaults = {f.name: getattr(cls.Options(), f.name) for f in dataclasses.fields(cls.Options)}
    unknown = sorted(set(settings) - train_keys - set(defaults))
    if unknown:
        raise UserError(f"{where}: {method} has no option {', '.join(unknown)} "
                        "(changed since the study was published?)")
    given = {**(example.options if method == example.method else study.options.get(method, {})),
             **{k: coerce_value(v, defaults[k], f"{where}: {k}") for k, v in settings.items() if k in defaults}}
    data = example.data
    if dataset != example.data.label():
        try:
            data = parse_data_spec(dataset, example.data.n_train, example.data.n_test)
        except UserError as exc:
            raise UserError(f"{where}: cannot rebuild its data from the label ({exc})") from None
    config = dataclasses.replace(example, method=method, seed=seed, data=data, train=train,
                                 options=dataclasses.asdict(resolve_options(cls, given)),
                                 variant=label.partition(VARIANT_MARK)[2])
    engines = [example.train.engine] + [e for e in ENGINES if e != example.train.engine]
    candidates = [dataclasses.replace(config, train=dataclasses.replace(train, engine=e)) for e in engines]
    for candidate in candidates if digest else []:
        if has_digest(candidate, digest):
            return candidate, True
    return _default_engine(config), False


def _default_engine(config: RunConfig) -> RunConfig:
    """Without a recorded digest to go by: the example's engine where the cell's method can use it."""
    from ..data import build_dataset
    from ..engine.stack.engine import resolve_engine

    requested = "auto" if config.train.engine == "stacked" else config.train.engine
    return resolve_engine(config, requested, build_dataset(config.data).x_dim)


def has_digest(config: RunConfig, digest: str, like: dict[str, Any] | None = None) -> bool:
    """Whether ``config`` saved as config.json has ``digest``, in the form of any version of izoo:
    a config saved before a key existed lacks it, meaning the value ``upgrade_config_dict`` fills in.
    ``like``: a config.json saved by the version that saved this one (a published folder's
    ``example_config``), whose form is tried first (the search over every form is long)."""
    d = config.saved_dict()
    filled = upgrade_config_dict({"train": {}, "eval": {}})  # every key added since, with what its absence means
    optional = [(section, key) for section, added in filled.items() if isinstance(added, dict)
                for key, value in added.items()
                if key in d[section] and json.dumps(d[section][key]) == json.dumps(value)]  # saved keys only
    optional += [("", key) for key, value in filled.items() if not isinstance(value, dict) and d[key] == value]
    forms = (itertools.combinations(optional, r) for r in range(len(optional) + 1))
    if like is not None:
        absent = tuple((section, key) for section, key in optional
                       if key not in ((like.get(section) or {}) if section else like))
        forms = itertools.chain([[absent]], forms)
    for tries in forms:
        for left_out in tries:
            saved = {k: dict(v) if isinstance(v, dict) else v for k, v in d.items()}
            for section, key in left_out:
                (saved[section] if section else saved).pop(key)
            if config_digest(saved) == digest:
                return True
    return False


# --- comparing ---------------------------------------------------------------------------------
def _other_seeds(rows: dict[Cell, list[dict[str, Any]]], cell: Cell, metric: str) -> list[float]:
    """The metric's published values over the study's other seeds of the same dataset and method
    label (NaN values left out)."""
    return [r["value"] for c, cell_rows in rows.items() if c[:2] == cell[:2] and c != cell
            for r in cell_rows if r["metric"] == metric and not math.isnan(r["value"])]


def seed_spread(rows: dict[Cell, list[dict[str, Any]]], cell: Cell, metric: str) -> float:
    """The tolerance of a cell's metric: SPREAD_SIGMAS x the standard deviation over the study's
    other seeds (``_other_seeds``), at least SPREAD_FLOOR."""
    others = _other_seeds(rows, cell, metric)
    std = statistics.stdev(others) if len(others) > 1 else 0.0
    return max(SPREAD_SIGMAS * std, SPREAD_FLOOR)


def within_spread(rows: dict[Cell, list[dict[str, Any]]], cell: Cell, metric: str, value: float,
                  published: float, spread: float) -> bool:
    """|value - published| within ``spread`` (``seed_spread``), or value inside the other seeds'
    published range."""
    others = _other_seeds(rows, cell, metric)
    in_range = len(others) > 1 and min(others) <= value <= max(others)
    return abs(value - published) <= spread or in_range  # NaN: neither


def compare_cell(rows: dict[Cell, list[dict[str, Any]]], cell: Cell,
                 new_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One verify row per published metric of ``cell`` (timings left out)."""
    new = {r["metric"]: r["value"] for r in new_rows}
    out = []
    for row in rows[cell]:
        metric, published = row["metric"], row["value"]
        if metric in TIMING_METRICS:
            continue
        spread = seed_spread(rows, cell, metric)
        value = new.get(metric)
        if value is None:
            difference, verdict = math.nan, "missing"
        elif value == published or (math.isnan(value) and math.isnan(published)):
            difference, verdict = 0.0, "identical"
        else:
            difference = value - published
            verdict = "within spread" if within_spread(rows, cell, metric, value, published, spread) else "outside spread"
        out.append({"cell": cell_name(cell), "metric": metric, "published": published,
                    "new": math.nan if value is None else value, "difference": difference, "spread": spread,
                    "verdict": verdict})
    return out


# --- the whole check ---------------------------------------------------------------------------
def verify(folder: str | Path, cells: int = 3, *, seed: int = 0, out: str | Path | None = None,
           overwrite: bool = False, log: Callable[[str], Any] | None = None) -> Verification:
    """Re-train ``cells`` cells of the published study ``folder`` from their recorded configs into
    ``out`` (default: a temporary folder, removed) and compare their rows with the published ones
    (module docstring). ``out`` receives each cell's run folder, results.csv, verify.csv (one row
    per cell and metric) and verify.json (this machine, commit, cells, counts). ``log`` is told
    what is being trained."""
    folder = Path(folder)
    if isinstance(cells, bool) or not isinstance(cells, int) or cells < 1:
        raise UserError(f"--cells must be a whole number >= 1, got {cells!r}")
    study, piece, example = read_published_study(folder)
    chosen = sample_cells(list(piece.rows), cells, seed)
    configs, unconfirmed = [], []
    for cell in chosen:
        config, confirmed = cell_config(study, example, cell, _recorded(piece, cell, "config"))
        configs.append(config)
        if not confirmed:
            unconfirmed.append(cell_name(cell))
    if out is None:
        with tempfile.TemporaryDirectory(prefix="izoo-verify-") as scratch:
            return _run(study, piece, folder, chosen, configs, unconfirmed, Path(scratch), seed, False, log, keep=False)
    out = Path(out)
    if _overlaps(out, folder):
        raise UserError(f"--out {out} overlaps the published folder {folder}; verify never writes there: "
                        "choose another folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"output folder {out} is not empty; pass --overwrite to replace it")
    return _run(study, piece, folder, chosen, configs, unconfirmed, out, seed, overwrite, log, keep=True)


def _recorded(piece: Piece, cell: Cell, key: str) -> str | None:
    """What study.json's ``cells_from`` records of a cell (its config digest, its commit), if anything."""
    value = piece.provenance.get(cell)
    value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


def _overlaps(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def _run(study: Study, piece: Piece, folder: Path, chosen: list[Cell], configs: list[RunConfig],
         unconfirmed: list[str], out: Path, seed: int, overwrite: bool, log: Callable[[str], Any] | None,
         keep: bool) -> Verification:
    import torch

    from ..core.environment import cpu_model, environment, git_commit, resolve_device
    from .cells import prepare_output, run_cells

    prepare_output(out, configs, "overwrite" if overwrite else "new")
    machine = {**environment(resolve_device(configs[0].train.device)), "cpu": cpu_model(),
               "threads": torch.get_num_threads()}
    machine.pop("torch_threads", None)

    def on_cell(i: int, n: int, config: RunConfig, status: str) -> None:
        if log is not None and status == "run":
            log(f"[{i + 1}/{n}] training {cell_name((config.data.label(), config.label, config.seed))} "
                f"({config.train.engine} engine, {config.train.steps} steps per phase)")

    t0 = time.perf_counter()
    run_cells(configs, out, on_cell=on_cell)
    wall = time.perf_counter() - t0
    new: dict[Cell, list[dict[str, Any]]] = {}
    for row in collect_rows(out):  # each cell's rows as written, read back as the published ones were
        new.setdefault((row["dataset"], row["method"], row["seed"]), []).append(row)
    rows = [row for cell in chosen for row in compare_cell(piece.rows, cell, new.get(cell, []))]
    names = [cell_name(c) for c in chosen]
    result = Verification(folder, study.name, seed, names, rows, machine,
                          {cell_name(c): _recorded(piece, c, "commit") for c in chosen},
                          unconfirmed, out if keep else None, round(wall, 1))
    write_csv(out / "verify.csv", rows, VERIFY_FIELDS)
    write_json(out / "verify.json", {
        "folder": str(folder), "study": study.name, "sample_seed": seed, "cells": names,
        "cells_dirs": [str(cell_dir(out, c)) for c in configs], "unconfirmed_configs": unconfirmed,
        "commit": git_commit(), "published_commits": result.published_commits, "machine": machine,
        "counts": result.counts, "verified": result.passed, "wall_seconds": result.wall_seconds,
    })
    return result


# --- the report --------------------------------------------------------------------------------
def verdict_line(result: Verification) -> str:
    c = result.counts
    parts = [f"{c[v]} {v}" for v in (*PASSING, "outside spread")]
    parts += [f"{c['missing']} missing"] if c["missing"] else []
    head = "verified" if result.passed else "NOT verified"
    return f"{head} ({result.study}, {len(result.cells)} cells, {len(result.rows)} metrics): {', '.join(parts)}"


def print_verification(result: Verification, console: Any) -> None:
    """A table per re-trained cell, its metrics as rows, each within 80 columns (verify.csv has
    the full numbers); the machine; the verdict line. ``console``: a rich Console."""
    from rich import box
    from rich.table import Table

    def number(v: float) -> str:
        return "-" if math.isnan(v) else f"{v:.4g}"

    style = {"identical": "green", "within spread": "yellow", "outside spread": "bold red", "missing": "bold red"}
    console.print(f"{result.folder}: {len(result.cells)} cell(s) re-trained (sample seed {result.seed})",
                  highlight=False, soft_wrap=True)
    for cell in result.cells:
        table = Table(title=cell, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
        for name in VERIFY_FIELDS[1:]:
            table.add_column(name, justify="left" if name in ("metric", "verdict") else "right")
        for row in (r for r in result.rows if r["cell"] == cell):
            difference = ("0" if row["verdict"] == "identical" else "-" if math.isnan(row["difference"])
                          else f"{row['difference']:+.2g}")
            table.add_row(row["metric"], number(row["published"]), number(row["new"]), difference,
                          f"{row['spread']:.2g}", f"[{style[row['verdict']]}]{row['verdict']}[/]")
        console.print(table)
    m = result.machine
    commits = ", ".join(sorted({str(c) for c in result.published_commits.values()}))
    lines = [f"this machine: {m['cpu']}, torch {m['torch']}, {m['threads']} thread(s), {m['device']}, "
             f"commit {m['git_commit']}; published from commit {commits}; re-training took {result.wall_seconds:.0f} s"]
    if result.unconfirmed:
        lines.append(f"[yellow]note[/]: the rebuilt config of {', '.join(result.unconfirmed)} matches no recorded "
                     "digest: it may differ from what was published")
    if result.out is not None:
        lines.append(f"rows: {result.out / 'verify.csv'}  machine: {result.out / 'verify.json'}")
    lines.append(("[bold green]" if result.passed else "[bold red]") + verdict_line(result) + "[/]")
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)


__all__ = ["Verification", "cell_config", "print_verification", "sample_cells", "verify"]
