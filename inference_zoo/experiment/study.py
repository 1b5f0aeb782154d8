"""``izoo study`` and ``inference_zoo.study``: one path, holding every rule.

``plan_study`` turns a registered study (``studies/``) into its cells; ``run_study`` trains the
unfinished ones (in process, in a shard, or as scheduler jobs) and publishes: where (the study's
own ``figures/NAME`` only from its own run folder), adding to what is published there unless
``overwrite``, and never while cells are still held by other processes. The command line and the
Python API both call these, so they behave the same by construction.
"""
from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..core.config import ENGINES, RunConfig
from ..core.environment import git_commit
from ..core.errors import UserError, did_you_mean
from ..core.results import cell_dir, collect_rows, write_tables
from ..studies import STUDIES, Study, publish_pieces
from ..studies.base import WAYS_OUT, cell_name, checked_merge, provenance_differs, read_published_folder
from .cells import parse_shard, prepare_output, run_cells, shard_configs, stack_groups
from .compare import plan_compare
from .runs import is_finished


def plan_study(study: Study, seeds: list[int] | None = None, *, preset: str | None = None,
               datasets: list[str] | None = None, methods: list[str] | None = None,
               options: dict[str, dict[str, Any]] | None = None, engine: str = "auto",
               **settings: Any) -> list[RunConfig]:
    """The study's cells; ``datasets`` and ``methods`` restrict them (e.g. to split a study across
    processes, or to sweep one method's option); ``options`` (per method, as ``plan_compare``
    takes them, sweeps included) override the study's own; ``settings`` any setting a study takes
    (``core/settings.py``), by name, over the study's own (``Study.settings``); ``engine`` "auto"
    keeps the one the study fixes, if any. Without ``seeds``, each dataset gets the study's seeds
    (``Study.seeds_by_dataset``, else ``Study.seeds``)."""
    for kind, given, valid in (("dataset", datasets, study.datasets), ("method", methods, study.methods)):
        unknown = sorted(set(given or []) - set(valid))
        if unknown:
            raise UserError(f"study {study.name} has no {kind} {', '.join(unknown)}{did_you_mean(unknown[0], valid)}; "
                            f"valid: {', '.join(valid)}")
    from ..core.settings import lookup

    chosen = {lookup(name, study=True).name: value for name, value in settings.items()}  # data sizes are the study's
    own = {lookup(name).name: value for name, value in study.settings.items()}
    own_engine = own.pop("engine", "auto")
    engine = own_engine if engine == "auto" else engine  # "auto": the study's, if it fixes one
    settings = {**own, **{name: value for name, value in chosen.items() if value is not None}}
    methods = [m for m in study.methods if m in methods] if methods else list(study.methods)
    merged = {m: {**study.options.get(m, {}), **(options or {}).get(m, {})} for m in methods}
    configs: list[RunConfig] = []
    for data in datasets or study.datasets:
        data_seeds = seeds if seeds is not None else list(range(study.seeds_by_dataset.get(data, study.seeds)))
        configs += plan_compare(methods, data, preset or study.preset, data_seeds, merged, study=study.row_name,
                                engine=engine, evaluation=study.evaluation, **settings)
    return configs


@dataclass
class StudyRun:
    """What ``run_study`` did: the run folder, the study's rows there, where it published (None:
    not published, ``note`` says why) and what it wrote."""

    out: Path
    rows: list[dict[str, Any]]
    published: Path | None
    written: list[Path]
    note: str = ""


def default_run_folder(name: str) -> Path:
    return Path("runs/studies") / name


def run_study(study: Study, configs: list[RunConfig], *, out: Path | None = None, publish: Path | None = None,
              overwrite: bool = False, publish_only: bool = False, shard: str | None = None,
              executor: str | None = None, jobs: int | None = None, job_settings: Any = None, command: str = "",
              train: Callable[[list[RunConfig], Path, str], Any] | None = None,
              log: Callable[[str], Any] = lambda text: None) -> StudyRun:
    """Train the unfinished cells of ``configs`` into ``out`` (default runs/studies/NAME), then
    publish every finished cell of the study there.

    Publishing goes where ``publish`` points; without it, to ``figures/NAME`` only from the study's
    own run folder (no ``out``, no ``shard``). It adds to what is published there (``overwrite``
    replaces it), and waits while any cell is unfinished (held by another process). What publishing
    would refuse (a published cell with another config, commit or result) is refused before
    training (``check_publishable``).
    ``publish_only`` trains nothing. ``train`` trains the cells in process (default: without a
    display; the command line passes its own); ``executor`` ("local", "slurm") runs them as
    scheduler jobs instead.
    """
    if publish is not None and publish.exists() and not publish.is_dir():
        raise UserError(f"publish target {publish} exists and is not a folder")
    run_dir = out or default_run_folder(study.name)
    if shard is not None:
        if executor is not None:
            raise UserError("--executor shards the study itself; drop --shard")
        configs = shard_configs(configs, *parse_shard(shard))
        if not configs:
            raise UserError(f"shard {shard} of study {study.name} holds no cell (fewer stack groups than shards)")
    mode = "overwrite" if overwrite else "resume"
    target = publish or (Path("figures") / study.name if out is None and shard is None else None)
    if target is not None and not overwrite and not publish_only:
        check_publishable(study, configs, run_dir, target)
    t0 = time.perf_counter()
    if publish_only:
        pass
    elif executor is not None:
        from .executors import JobSettings, run_on_executor

        prepare_output(run_dir, configs, mode)
        run_on_executor(configs, run_dir, executor, jobs or len(stack_groups(configs)),
                        job_settings or JobSettings(), log=log)
    else:
        (train or _train_quietly)(configs, run_dir, mode)
    unfinished = [] if publish_only else [c for c in configs if not is_finished(cell_dir(run_dir, c))]
    if unfinished:
        c = unfinished[0]
        return StudyRun(run_dir, [], None, [], f"not published: {len(unfinished)} cell(s) unfinished (e.g. "
                        f"{c.data.label()}/{c.label}/seed{c.seed}, held by another process); when they finish: "
                        f"izoo study {study.name} --publish-only {'--out ' + str(run_dir) if out else ''}".rstrip())
    rows = [r for r in collect_rows(run_dir) if r["study"] == study.row_name]  # every finished cell, whoever trained it
    if not rows:
        raise UserError(f"{run_dir} holds no finished cell of study {study.name}")
    write_tables(run_dir, rows)
    if target is None:
        return StudyRun(run_dir, rows, None, [], f"cells in {run_dir}; publish them with: izoo study {study.name} "
                        f"--publish-only --merge {run_dir} [more folders] [--publish DIR]")
    wall = None if publish_only else time.perf_counter() - t0
    # publishing adds to what is published there; overwrite replaces it
    sources = [run_dir] if overwrite or not (target / "study.json").is_file() else [target, run_dir]
    return StudyRun(run_dir, rows, target, publish_pieces(study, sources, target, command, wall, overwrite,
                                                                     merging=False))


def check_publishable(study: Study, configs: list[RunConfig], run_dir: Path, target: Path) -> None:
    """Refuse before training what publishing ``configs``' cells from ``run_dir`` to ``target``
    would refuse after: a cell ``target`` holds with another config or commit than this run's, or
    (for the cells ``run_dir`` holds finished) with other results."""
    if not (target / "study.json").is_file():
        return
    published = None
    if (run_dir / "runs").is_dir():  # the check publishing makes, on the cells finished so far
        with tempfile.TemporaryDirectory() as scratch:
            published = checked_merge(study, [target, run_dir], target, Path(scratch), merging=False)[1]
    from .verify import cell_config, has_digest

    published = published or read_published_folder(target)
    example = published.example_config and RunConfig.from_dict(published.example_config)
    commit = git_commit()
    for config in configs:
        cell = (config.data.label(), config.label, config.seed)
        if cell not in published.rows or is_finished(cell_dir(run_dir, config)):
            continue
        recorded = published.provenance.get(cell, {})
        digest = recorded.get("config")
        engines = [config] + [dataclasses.replace(config, train=dataclasses.replace(config.train, engine=e))
                              for e in ENGINES if e != config.train.engine]
        if not (digest and any(has_digest(c, digest, published.example_config) for c in engines)):
            try:  # the published config, rebuilt from its example, names what changed
                changed = _changed_settings(config, cell_config(study, example, cell, digest)[0]) if example else []
            except UserError:
                changed = []
            if digest or changed:  # without a digest, only a rebuilt config that differs tells
                raise UserError(f"{target} already holds cell {cell_name(cell)} of {study.name} trained with other "
                                f"settings{' (' + '; '.join(changed) + ')' if changed else ''}; {WAYS_OUT}")
        found = provenance_differs(recorded, {"commit": commit})
        if found is not None:
            raise UserError(f"{target} already holds cell {cell_name(cell)} of {study.name} trained at another commit "
                            f"({found[1]}, now {found[2]}); {WAYS_OUT}")


def _changed_settings(planned: RunConfig, published: RunConfig) -> list[str]:
    """The settings (but the engine) ``planned`` sets otherwise than ``published``: "steps 100 vs 8000"."""
    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        return {k2: v2 for k, v in d.items() for k2, v2 in
                (flat(v, f"{prefix}{k}.").items() if isinstance(v, dict) else [(f"{prefix}{k}", v)])}

    a, b = flat(planned.saved_dict()), flat(published.saved_dict())
    return [f"{key.rpartition('.')[2]} {a.get(key)} vs {b.get(key)}" for key in sorted(a.keys() | b.keys())
            if key != "train.engine" and a.get(key) != b.get(key)]


def merge_study(study: Study, folders: list[Path], *, publish: Path | None = None, overwrite: bool = False,
                command: str = "") -> list[Path]:
    """Publish the finished cells of several run folders and published folders, merged, to
    ``publish`` (default figures/NAME); list the target among ``folders`` to keep what it holds."""
    if publish is not None and publish.exists() and not publish.is_dir():
        raise UserError(f"publish target {publish} exists and is not a folder")
    return publish_pieces(study, list(folders), publish or Path("figures") / study.name, command, None, overwrite)


def _train_quietly(configs: list[RunConfig], out: Path, mode: str) -> None:
    prepare_output(out, configs, mode)
    run_cells(configs, out)


__all__ = ["STUDIES", "StudyRun", "check_publishable", "default_run_folder", "merge_study", "plan_study", "run_study"]
