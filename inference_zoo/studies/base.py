"""What a study is, how its cells are built, and how its results are published under figures/.

Publishing copies only small, tidy files (results.csv, summary.csv, the sample arrays the figures
need) plus provenance (exact command, commit, wall time, machine) into ``figures/<study>/``;
``izoo figures`` then redraws every figure from those files alone, without training.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import platform
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..core.config import RunConfig
from ..core.environment import command_line, git_commit
from ..core.errors import UserError
from ..core.fileio import atomic_write, load_arrays, read_json_object, save_arrays, write_json
from ..core.registry import Registry
from ..core.results import read_curve, read_rows, write_curve, write_rows, write_summary
from ..core.results import cell_dir, cell_path, collect_rows, sample_name
from ..core.settings import resolve
from ..data import DATASETS
from ..viz.curves import plot_curves
from ..viz.sweep_figure import plot_sweeps


@dataclass(frozen=True)
class Study:
    """A grid of cells and the figures drawn from its tidy results.

    ``sample_points(config)`` says how many held-out points of a cell's samples.npz to publish
    (None: none), so figures that need arrays can be redrawn from ``figures/`` alone. A study
    derived from another (``derive``) is that study's cells at other settings.
    """

    name: str
    description: str
    datasets: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: int
    preset: str
    figures: Callable[[Path], list[Path]]
    #: per dataset, its number of seeds where not ``seeds`` (e.g. a ring published at one seed)
    seeds_by_dataset: dict[str, int] = field(default_factory=dict)
    sample_points: Callable[[RunConfig], int | None] = lambda config: None
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: evaluation settings of every cell (``EvalConfig`` fields, e.g. ``label_counts``)
    evaluation: dict[str, Any] = field(default_factory=dict)
    #: settings by name (``core/settings.py``) every cell takes over the preset's; a list sweeps one
    settings: dict[str, Any] = field(default_factory=dict)
    #: the study this one is derived from ("": none)
    base: str = ""
    #: the ``study`` its cells' configs and rows carry, where not its name (``row_name``)
    rows_as: str = ""

    @property
    def row_name(self) -> str:
        """The ``study`` its cells' configs and tidy rows carry: a derived study's are its base's
        (a config's study is part of its digest, so they stay the cells its folder published)."""
        return self.rows_as or self.name


STUDIES: Registry[Study] = Registry("study")

#: the strategies the first studies were published with, before ALICE and hierarchical ALI joined
FIRST_FIVE = ("ali", "bigan", "latent", "posthoc", "vae")


def derive(base: Study, name: str, description: str, *, datasets: tuple[str, ...] | None = None,
           methods: tuple[str, ...] | None = None, seeds: int | None = None, preset: str | None = None,
           options: dict[str, dict[str, Any]] | None = None, settings: dict[str, Any] | None = None,
           seeds_by_dataset: dict[str, int] | None = None, rows_as: str = "",
           evaluation: dict[str, Any] | None = None) -> Study:
    """``base``'s cells at other settings, as the study ``name``: its figures, sample rules and
    evaluation (``evaluation`` laid over it); a subset of its datasets and methods (kept in its
    order, so rows are published in its order), then any other registered dataset named in
    ``datasets``; ``options`` laid over its own per method; ``settings`` (a list sweeps one);
    ``seeds_by_dataset`` (default: the base's, where ``seeds`` is not given). Its
    cells carry ``rows_as`` (default: the base's name) as their study."""
    other = [d for d in datasets or () if d not in base.datasets and d in DATASETS]  # a registered set
    for kind, given, valid in (("dataset", datasets, (*base.datasets, *other)), ("method", methods, base.methods),
                               ("dataset", seeds_by_dataset, datasets or base.datasets)):
        unknown = sorted(set(given or ()) - set(valid))
        if unknown:
            raise ValueError(f"study {name}: {base.name} has no {kind} {', '.join(unknown)}")
    resolve(settings or {}, study=True)  # a typo fails at import, not when the study is run
    options = options or {}
    return dataclasses.replace(
        base, name=name, description=description,
        datasets=(*(d for d in base.datasets if d in datasets), *other) if datasets else base.datasets,
        evaluation={**base.evaluation, **(evaluation or {})},
        methods=tuple(m for m in base.methods if m in methods) if methods else base.methods,
        seeds=base.seeds if seeds is None else seeds, preset=preset or base.preset,
        seeds_by_dataset=dict(seeds_by_dataset if seeds_by_dataset is not None else
                              base.seeds_by_dataset if seeds is None else {}),
        options={m: {**base.options.get(m, {}), **options.get(m, {})} for m in {**base.options, **options}},
        settings={**base.settings, **(settings or {})}, base=base.name, rows_as=rows_as or base.row_name)


def as_published(design: Study, description: str, **changes: Any) -> Study:
    """The study ``design.name`` as its folder under ``figures/`` was published: the design (the
    template its other published studies derive from) at ``changes`` (``derive``'s), under its own name."""
    return dataclasses.replace(derive(design, design.name, description, **changes), base="")


Cell = tuple[str, str, int]  # (dataset label, method label, seed), as in a tidy row
TIMING_METRICS = ("train_seconds", "eval_seconds")  # wall clock: differs between any two runs of a cell


@dataclass
class Piece:
    """The publishable content of one source folder: tidy rows, where each cell came from, and
    the sample arrays the figures need."""

    source: Path
    rows: dict[Cell, list[dict[str, Any]]]
    provenance: dict[Cell, dict[str, Any]]
    samples: dict[Cell, Path]
    curves: dict[Cell, list[dict[str, Any]]] = field(default_factory=dict)  # train.eval_every points
    commands: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    example_config: dict[str, Any] | None = None  # one cell's resolved config, for the figures' captions


def cell_name(cell: Cell) -> str:
    """A cell as study.json's ``cells_from`` names it: "identity/ali/seed0"."""
    return f"{cell[0]}/{cell[1]}/seed{cell[2]}"


def config_digest(config: dict[str, Any]) -> str:
    """What ``cells_from`` records of a cell's config.json (the dict as saved, keys sorted)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def _read_json(path: Path) -> dict[str, Any]:
    return read_json_object(path, "restore it or run the cell again")


def _by_cell(rows: list[dict[str, Any]]) -> dict[Cell, list[dict[str, Any]]]:
    cells: dict[Cell, list[dict[str, Any]]] = {}
    for row in rows:
        cells.setdefault((row["dataset"], row["method"], row["seed"]), []).append(row)
    return cells


def read_run_folder(study: Study, out: Path, samples_dir: Path) -> Piece:
    """A study's run folder (``--out``): every finished cell's rows, config and commit; sample
    arrays cut to what the study publishes, written into ``samples_dir``."""
    rows = _by_cell([r for r in collect_rows(out) if r["study"] == study.row_name])  # every finished cell
    provenance, samples, curves, commands, example = {}, {}, {}, [], None
    for cell in rows:
        run = cell_path(out, *cell)
        if (run / "curve.csv").is_file():
            curves[cell] = read_curve(run / "curve.csv")
        config_dict = _read_json(run / "config.json")
        env = _read_json(run / "env.json") if (run / "env.json").is_file() else {}
        stacks = env.get("stacks") or [{"seeds": [cell[2]]}]
        argv = env.get("argv")
        if isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv):
            command = command_line(argv)
            if command not in commands:
                commands.append(command)  # what trained the cell (its env.json)
        provenance[cell] = {"config": config_digest(config_dict), "commit": env.get("git_commit"),
                            "machine": env.get("platform"), "stacked_with": len(stacks[-1]["seeds"])}
        config = RunConfig.from_dict(config_dict)
        example = example or config_dict
        n = study.sample_points(config)
        source = run / "samples.npz"
        if n is None or not source.is_file():
            continue
        arrays = {k: v[:n] for k, v in load_arrays(source).items()}
        target = samples_dir / sample_name(*cell)
        save_arrays(target, arrays)
        samples[cell] = target
    return Piece(out, rows, provenance, samples, curves, commands, example_config=example)


def read_published_folder(folder: Path) -> Piece:
    """A published study folder (``figures/<study>``, or a shard published on its own)."""
    record = _read_json(folder / "study.json")
    rows = _by_cell(read_rows(folder / "results.csv"))
    provenance = {cell: record.get("cells_from", {}).get(cell_name(cell), {}) for cell in rows}
    samples = {cell: folder / "samples" / sample_name(*cell) for cell in rows
               if (folder / "samples" / sample_name(*cell)).is_file()}
    curves = _by_cell(read_curve(folder / "curves.csv")) if (folder / "curves.csv").is_file() else {}
    return Piece(folder, rows, provenance, samples, curves, list(record.get("command_history", [])),
                 float(record.get("wall_seconds") or 0.0), record.get("example_config"))


def read_piece(study: Study, folder: Path, samples_dir: Path) -> Piece:
    if (folder / "study.json").is_file():
        return read_published_folder(folder)
    if (folder / "runs").is_dir():
        return read_run_folder(study, folder, samples_dir)
    raise UserError(f"{folder} is neither a study run folder (runs/) nor a published study folder (study.json)")


def merge_pieces(pieces: list[Piece], merging: bool = True) -> Piece:
    """One piece holding every cell of ``pieces``; the same cell twice must be the same result
    (same config and commit where both are known, same rows but for timings), else refused
    (``merging``: the user asked for the merge, and the refusal says so)."""
    merged = Piece(pieces[0].source, {}, {}, {})
    origin: dict[Cell, Path] = {}
    for piece in pieces:
        for cell, rows in piece.rows.items():
            if cell in merged.rows:
                _check_same_cell(cell, origin[cell], merged, piece, merging)
                continue
            origin[cell] = piece.source
            merged.rows[cell] = rows
            merged.provenance[cell] = piece.provenance.get(cell, {})
            if cell in piece.samples:
                merged.samples[cell] = piece.samples[cell]
            if cell in piece.curves:
                merged.curves[cell] = piece.curves[cell]
        merged.commands += [c for c in piece.commands if c not in merged.commands]
        merged.wall_seconds += piece.wall_seconds
        merged.example_config = merged.example_config or piece.example_config
    return merged


def provenance_differs(a: dict[str, Any], b: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """The first of config, commit that two records of one cell both give, differently: (key, a's, b's)."""
    for key in ("config", "commit"):
        if a.get(key) and b.get(key) and a[key] != b[key]:
            return key, a[key], b[key]
    return None


#: what a user can do when publishing a study would replace a published cell with another
WAYS_OUT = "publish elsewhere with --publish DIR, or replace it with --overwrite"


def _check_same_cell(cell: Cell, first: Path, merged: Piece, piece: Piece, merging: bool = True) -> None:
    def refuse(what: str, a: str = "", b: str = "") -> UserError:
        if merging:  # the user listed the folders to merge
            return UserError(f"cell {cell_name(cell)} has different {what}s in {first}{a} and {piece.source}{b}; "
                             "merge only one of them, or publish with --overwrite to replace what is published")
        return UserError(f"{first} already holds cell {cell_name(cell)} with another {what}{a} than "
                         f"{piece.source}{b}; {WAYS_OUT}")

    found = provenance_differs(merged.provenance.get(cell, {}), piece.provenance.get(cell, {}))
    if found is not None:
        raise refuse(found[0], f" ({found[1]})", f" ({found[2]})")

    def values(rows: list[dict[str, Any]]) -> dict[str, float]:
        return {r["metric"]: r["value"] for r in rows if r["metric"] not in TIMING_METRICS}

    va, vb = values(merged.rows[cell]), values(piece.rows[cell])
    if va.keys() != vb.keys() or any(not (va[k] == vb[k] or (math.isnan(va[k]) and math.isnan(vb[k]))) for k in va):
        raise refuse("result")


def ordered_rows(study: Study, cells: dict[Cell, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rows in one order whatever the pieces: the study's datasets and methods, then seed."""
    def position(names: tuple[str, ...], label: str) -> int:
        base = label.split("@")[0]
        return names.index(base) if base in names else len(names)

    def key(cell: Cell) -> tuple:
        dataset, method, seed = cell
        return (position(study.datasets, dataset.split(":")[0]), dataset, position(study.methods, method), method, seed)

    return [row for cell in sorted(cells, key=key) for row in cells[cell]]


def publish_pieces(study: Study, sources: list[Path], target: Path, command: str, wall_seconds: float | None,
                   overwrite: bool = False, merging: bool = True) -> list[Path]:
    """Merge run folders and published folders into one published study at ``target``; draw its figures.

    Publishing never drops a cell already published at ``target``, nor replaces it with another
    config's, commit's or result, unless ``overwrite``: to add cells, list ``target`` among the sources.
    ``wall_seconds`` (None when publishing without training) adds to the sources' published wall times.
    ``merging``: the user listed the sources (``--merge``), and a refusal says so.
    """
    with tempfile.TemporaryDirectory() as scratch:
        merged, earlier = checked_merge(study, sources, target, Path(scratch), overwrite, merging)
        return _write_published(study, merged, target, command, wall_seconds, earlier)


def checked_merge(study: Study, sources: list[Path], target: Path, scratch: Path, overwrite: bool = False,
                  merging: bool = True) -> tuple[Piece, Piece | None]:
    """What ``publish_pieces`` would publish at ``target`` (sample arrays read into ``scratch``),
    and what is published there now; refused as publishing refuses, without writing anything."""
    if target.exists() and not target.is_dir():
        raise UserError(f"publish target {target} exists and is not a folder")
    pieces = [read_piece(study, source, scratch / str(i)) for i, source in enumerate(sources)]
    merged = merge_pieces(pieces, merging)
    if not merged.rows:
        raise UserError(f"nothing to publish: {', '.join(map(str, sources))} hold no finished cell of study {study.name}")
    earlier = read_published_folder(target) if (target / "study.json").is_file() else None
    if earlier is not None and not overwrite:
        dropped = sorted(set(earlier.rows) - set(merged.rows))
        if dropped:
            raise UserError(f"publishing to {target} would drop {len(dropped)} published cell(s) "
                            f"(e.g. {cell_name(dropped[0])}); list {target} among the folders to merge to keep "
                            "them, or pass --overwrite to replace them")
        for cell in sorted(set(earlier.rows) & set(merged.rows)):  # a new result for a published cell
            _check_same_cell(cell, target, earlier, merged, merging)
    return merged, earlier


def _write_published(study: Study, merged: Piece, target: Path, command: str, wall_seconds: float | None,
                     earlier: Piece | None) -> list[Path]:
    rows = ordered_rows(study, merged.rows)
    samples_dir = target / "samples"
    for cell, source in sorted(merged.samples.items()):
        destination = samples_dir / sample_name(*cell)
        if source.resolve() != destination.resolve():
            data = source.read_bytes()
            atomic_write(destination, lambda f: f.write(data))
    if earlier is not None:  # only --overwrite gets here with cells to drop: remove their arrays
        for cell in set(earlier.rows) - set(merged.rows):
            (samples_dir / sample_name(*cell)).unlink(missing_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    write_rows(target / "results.csv", rows)
    write_summary(target / "summary.csv", rows)
    if merged.curves:
        write_curve(target / "curves.csv", ordered_rows(study, merged.curves))
    history = [c for c in merged.commands if c != command] + [command]
    wall_seconds = merged.wall_seconds + (wall_seconds or 0.0)  # every contributing command's
    stack_size = {cell: p.get("stacked_with", 1) or 1 for cell, p in merged.provenance.items()}
    example = merged.example_config or (earlier.example_config if earlier is not None else None)
    write_json(target / "study.json", {
        "study": study.name,
        "description": study.description,
        "command": command,
        "command_history": history,
        "git_commit": git_commit(),  # at publishing; each cell's own commit is in cells_from
        "run_commits": sorted({str(p.get("commit")) for p in merged.provenance.values() if p.get("commit")}),
        "cells_from": {cell_name(cell): merged.provenance[cell] for cell in sorted(merged.provenance)},
        "wall_seconds": round(wall_seconds, 1),
        # a stacked run's train_seconds is its whole stack's: count each stack once
        "train_seconds_total": round(sum(r["value"] / stack_size.get((r["dataset"], r["method"], r["seed"]), 1)
                                         for r in rows if r["metric"] == "train_seconds"), 1),
        "cells": len(merged.rows),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "python": sys.version.split()[0]},
        "example_config": example,
    })
    return study_figures(study, target)


def study_figures(study: Study, folder: Path) -> list[Path]:
    """The study's own figures, plus metric-against-setting plots where it swept a setting and
    metric-against-training plots where its runs evaluated during training."""
    written = study.figures(folder) + plot_sweeps(read_rows(folder / "results.csv"), folder)
    if (folder / "curves.csv").is_file():
        written += plot_curves(read_curve(folder / "curves.csv"), folder)
    return written


def tuning_figures(folder: Path) -> list[Path]:
    """Every figure of a published tuning folder (``viz.tuning``), and those of the study its
    ``tuning.json`` names (``figures_of``), drawn from its fresh-seed rows."""
    from ..viz.tuning import draw_tuning_folder

    record = read_json_object(folder / "tuning.json", "restore it from git or publish again with --overwrite")
    written = draw_tuning_folder(folder)
    return written + STUDIES.get(record["figures_of"]).figures(folder) if record.get("figures_of") else written


def rebuild_figures(root: Path) -> list[Path]:
    """Redraw the figures of every published study folder under ``root``, or of ``root`` itself
    where it is one (no training)."""
    written: list[Path] = []
    own = "" if (root / "study.json").is_file() or (root / "tuning.json").is_file() else "*/"
    folders = sorted(p.parent for p in root.glob(f"{own}study.json"))
    tunings = sorted(p.parent for p in root.glob(f"{own}tuning.json"))
    if not folders and not tunings:
        raise UserError(f"no published study under {root} (expected {root}/<study>/study.json)")
    for folder in tunings:  # published by izoo tune --publish
        written += tuning_figures(folder)
    for folder in folders:
        record = read_json_object(folder / "study.json", "restore it from git or re-publish the study")
        if not isinstance(record.get("study"), str):
            raise UserError(f"cannot read {folder / 'study.json'} (no study name); restore it from git")
        written += study_figures(STUDIES.get(record["study"]), folder)
    return written


def load_published_samples(folder: Path, dataset: str, method: str, seed: int) -> dict[str, np.ndarray] | None:
    path = folder / "samples" / sample_name(dataset, method, seed)
    if not path.is_file():
        return None
    return load_arrays(path)


__all__ = ["STUDIES", "Study", "cell_dir", "load_published_samples", "publish_pieces", "rebuild_figures",
           "tuning_figures"]
