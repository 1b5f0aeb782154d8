"""The toolkit from Python: what ``izoo compare`` and ``izoo study`` run, tidy results as pandas
DataFrames, and trained runs loaded for downstream use.

    import inference_zoo as izoo
    res = izoo.compare(methods=["ali", "vae"], data="grid", seeds=3, steps=2000, out="runs/nb")
    res.summary                                   # mean, s.e. and n per (dataset, method, metric)
    ali = izoo.load_run("runs/nb/runs/grid/ali/seed0")
    codes = ali.encode(x)                         # needs only the run folder

pandas is needed for the DataFrames only (``pip install pandas``, or the ``notebook`` extra): the
training and the command line do not use it.
"""
from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..core.errors import UserError, did_you_mean
from ..core.results import HEADLINE_METRICS, RESULT_FIELDS, aggregate, collect_rows, read_rows, summary_index
from ..core.threads import processes_for
from .export import load_run

#: how many headline metrics and (dataset, method) rows ``Results``' repr shows (``summary`` has all)
SHOWN_METRICS, SHOWN_ROWS = 5, 12


def _pandas():
    try:
        import pandas
    except ImportError:
        raise UserError("the Python API returns pandas DataFrames: pip install pandas "
                        "(or pip install inference-zoo[notebook])") from None
    return pandas


@dataclass
class Results:
    """The tidy rows of a compare or study, and where its files are."""

    folder: Path
    rows: list[dict[str, Any]]
    figures: list[Path] = field(default_factory=list)

    @property
    def results(self):
        """One row per (study, dataset, method, seed, metric): a pandas DataFrame."""
        return _pandas().DataFrame(self.rows, columns=RESULT_FIELDS)

    @property
    def summary(self):
        """Mean, standard error and n per (dataset, method, metric): a pandas DataFrame."""
        return _pandas().DataFrame(aggregate(self.rows), columns=["dataset", "method", "metric", "mean", "se", "n"])

    def __repr__(self) -> str:
        """Where, how many rows, which methods and datasets, and the first headline metrics' means."""
        index = summary_index(self.rows)
        names = {kind: list(dict.fromkeys(r[kind] for r in self.rows)) for kind in ("method", "dataset", "seed")}
        lines = [f"Results({self.folder}: {len(self.rows)} rows; methods {', '.join(names['method']) or '-'}; "
                 f"datasets {', '.join(names['dataset']) or '-'}; {len(names['seed'])} seed(s))"]
        metrics = [m for m in HEADLINE_METRICS if any(key[2] == m for key in index)][:SHOWN_METRICS]
        pairs = list(dict.fromkeys(key[:2] for key in index))
        if not metrics:
            return lines[0]
        table = [["dataset", "method", *metrics]] + [
            [d, m, *(f"{index[(d, m, k)]['mean']:.3g}" if (d, m, k) in index else "-" for k in metrics)]
            for d, m in pairs[:SHOWN_ROWS]]
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines.append("mean over seeds (.summary: every metric with s.e. and n; .results: every row)")
        lines += ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
                  for row in table]
        if len(pairs) > SHOWN_ROWS:
            lines.append(f"... and {len(pairs) - SHOWN_ROWS} more (dataset, method) pairs")
        return "\n".join(lines)


def python_words(function: Callable) -> Callable:
    """``function`` with the command line's flags in its UserErrors turned into its keywords
    ("pass --resume" reads "pass resume=True", "--n-train" reads "n_train"): the errors are
    written once, in the command line's words."""
    parameters = inspect.signature(function).parameters

    def keyword(match: re.Match) -> str:
        from ..core.settings import all_settings

        name = match.group(1).replace("-", "_")
        if name in parameters and parameters[name].default is False:
            return f"{name}=True"
        return name if name in parameters or name in all_settings() else match.group(0)

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except UserError as exc:
            exc.args = (re.sub(r"--([a-z][a-z0-9-]*)", keyword, str(exc)),)
            raise

    return call


def checked_preset(preset: str | None, data: str | None = None) -> str | None:
    """``preset``, checked (a near miss is named); when None, the preset ``data`` is meant to be
    run with (quick for the toys, digits for digits, ...), or None without ``data`` (a study's own)."""
    from ..core.presets import get_preset
    from ..data import DATASETS

    if preset is None:
        return None if data is None else DATASETS.get(data.strip().partition(":")[0]).default_preset
    get_preset(preset)
    return preset


def _check_options(options: dict[str, Any] | None, methods: Sequence[str]) -> None:
    """Options for a method that is not run would be ignored: refuse them."""
    for method in options or {}:
        if method not in methods:
            raise UserError(f"options for {method!r}, which is not run{did_you_mean(method, methods)}; "
                            f"methods: {', '.join(methods)}")


def _seeds(seeds: int | Sequence[int]) -> list[int]:
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)


@python_words
def compare(methods: Sequence[str] = ("ali", "latent", "posthoc", "vae"), data: str = "grid",
            seeds: int | Sequence[int] = 1, *, preset: str | None = None, recipe: str = "preset",
            out: str | Path = "runs/compare",
            options: dict[str, dict[str, Any]] | None = None, arch: dict[str, Any] | None = None,
            engine: str = "auto", resume: bool = False, overwrite: bool = False, progress: bool = False,
            processes: int | str = "auto", **settings: Any) -> Results:
    """Train and evaluate each method on the same data and seeds into ``out``, as ``izoo compare``.

    ``seeds``: a count (3: seeds 0, 1, 2) or a list. ``options``: per method, option -> value (a
    list sweeps it). ``arch``: network sizes (``ArchConfig`` fields). ``settings``: any setting by
    name, as the command's flags and ``--set`` (``steps``, ``batch_size``, ``lr``, ``device``,
    ``eval_every``, ``ema_decay``, ``n_train``, ...; ``inference_zoo.settings()`` lists them); a list
    sweeps a setting that can be swept. ``resume`` keeps the finished runs of an earlier call;
    ``overwrite`` replaces them. ``recipe``: "preset", or "tuned" for each method's published tuned
    recipe at the preset and dataset (what ``settings`` and ``options`` give still wins).
    ``processes``: how many processes train the runs ("auto": one per free core for a large enough
    job; the stacked engine's numbers do not depend on it, the single engine's are those of the
    thread count each process gets: one where there is a process per core).
    """
    from .compare import plan_compare, run_compare, tuned_recipes

    if resume and overwrite:
        raise UserError("resume and overwrite exclude each other")
    methods = [methods] if isinstance(methods, str) else list(methods)
    preset = checked_preset(preset, data)
    _check_options(options, methods)
    configs = plan_compare(methods, data, preset, _seeds(seeds), options, arch=arch, engine=engine,
                           recipes=tuned_recipes(recipe, preset, data, methods), **settings)
    out = Path(out)
    mode = "resume" if resume else "overwrite" if overwrite else "new"
    with processes_for(processes):
        rows, figures = run_compare(configs, out, mode, _display(progress))
    return Results(out, rows, figures)


@python_words
def study(name: str, *, seeds: int | Sequence[int] | None = None, datasets: Sequence[str] | None = None,
          methods: Sequence[str] | None = None, preset: str | None = None, out: str | Path | None = None,
          publish: str | Path | None = None, options: dict[str, dict[str, Any]] | None = None,
          engine: str = "auto", overwrite: bool = False, progress: bool = False, processes: int | str = "auto",
          **settings: Any) -> Results:
    """Run a study's cells into ``out`` (default runs/studies/NAME; finished cells are kept) and
    publish, exactly as ``izoo study``: to ``publish`` when given, else to figures/NAME when ``out``
    is the study's own run folder; publishing adds to what is published there (``overwrite``
    replaces it). ``settings``: any setting a study takes, by name. A registered tuning's name
    (``studies.tunings``) runs its ``izoo tune`` searches and publishes them the same way; it takes
    ``methods``, ``datasets``, ``out``, ``publish`` and ``overwrite`` only."""
    import sys

    from .study import STUDIES, plan_study, run_study
    from ..studies import TUNINGS

    if name in TUNINGS:
        from .tune import run_tuning

        unused = [f"{k}=" for k, v in (("seeds", seeds), ("preset", preset), ("options", options)) if v is not None]
        target, written = run_tuning(TUNINGS.get(name), unused=unused + [f"{k}=" for k in settings],
                                     methods=list(methods) if methods else None,
                                     datasets=list(datasets) if datasets else None,
                                     out=Path(out) if out is not None else None,
                                     publish=Path(publish) if publish is not None else None, overwrite=overwrite,
                                     engine=engine, log=lambda text: print(text, file=sys.stderr, flush=True))
        rows = read_rows(target / "results.csv") if target is not None and (target / "results.csv").is_file() else []
        return Results(Path(out) if out is not None else Path("runs/tunings") / name, rows, written)
    spec = STUDIES.get(name)
    _check_options(options, methods or spec.methods)
    configs = plan_study(spec, _seeds(seeds) if seeds is not None else None, preset=checked_preset(preset),
                         datasets=list(datasets) if datasets else None, methods=list(methods) if methods else None,
                         options=options, engine=engine, **settings)
    display = _display(progress)
    with processes_for(processes):
        result = run_study(spec, configs, out=Path(out) if out is not None else None,
                           publish=Path(publish) if publish is not None else None, overwrite=overwrite,
                           command=f"inference_zoo.study({name!r}, ...)",
                           train=None if display is None else lambda c, o, m: run_compare_with(c, o, m, display))
    if result.note:
        print(result.note, file=sys.stderr)
    rows = result.rows or [r for r in collect_rows(result.out) if r["study"] == spec.row_name]
    return Results(result.out, rows, result.written)


@python_words
def tune(methods: Sequence[str] = ("ali",), data: str = "grid", *, budget: int, objective: str = "modes_3sigma",
         preset: str | None = None, seeds: int = 1, batch: int = 4, storage: str | None = None,
         out: str | Path = "runs/tune", space: dict[str, dict[str, tuple]] | None = None,
         options: dict[str, dict[str, Any]] | None = None, engine: str = "auto", fresh_seeds: int = 0,
         pruner: str = "median", curve_points: int = 4, confirm_seeds: int = 0, confirm_top: int = 3,
         **settings: Any):
    """Search each method's recipe with ``budget`` run-steps, as ``izoo tune``; ``space``: per
    method, name -> ("log"|"float"|"int", low, high) or ("choice", [values]) in place of its
    default space (``experiment.tune.default_space``). Returns each method's ``TuneResult``."""
    from .tune import tune as run_tune

    methods = [methods] if isinstance(methods, str) else list(methods)
    _check_options(options, methods)
    return run_tune(methods, data, checked_preset(preset, data), budget=budget, seeds=seeds, batch=batch,
                    objective=objective, storage=storage, out=Path(out), space=space, options=options, engine=engine,
                    fresh_seeds=fresh_seeds, pruner=pruner, curve_points=curve_points, confirm_seeds=confirm_seeds,
                    confirm_top=confirm_top, **settings)


def run_compare_with(configs: list, out: Path, mode: str, display: Any) -> None:
    from .compare import run_compare

    run_compare(configs, out, mode, display)


def _display(progress: bool) -> Any:
    if not progress:
        return None
    from .display import TerminalDisplay

    return TerminalDisplay(True)


def settings() -> dict[str, str]:
    """Every setting by name, with its help: what ``compare``, ``study`` and ``--set`` take."""
    from ..core.settings import all_settings

    return {name: s.help for name, s in all_settings().items()}


def read_results(path: str | Path):
    """The tidy rows of a run folder, an ``izoo compare`` or study folder, a published folder or a
    results CSV, as a pandas DataFrame."""
    path = Path(path)
    table = path / "results.csv" if path.is_dir() else path
    if not table.is_file():
        raise UserError(f"no results table at {table}")
    return _pandas().DataFrame(read_rows(table), columns=RESULT_FIELDS)


__all__ = ["Results", "compare", "load_run", "read_results", "settings", "study", "tune"]
