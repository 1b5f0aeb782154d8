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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..core.errors import UserError
from ..core.results import RESULT_FIELDS, aggregate, collect_rows, read_rows
from .export import load_run

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


def _seeds(seeds: int | Sequence[int]) -> list[int]:
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)


def compare(methods: Sequence[str] = ("ali", "latent", "posthoc", "vae"), data: str = "grid",
            seeds: int | Sequence[int] = 1, *, preset: str | None = None, recipe: str = "preset",
            out: str | Path = "runs/compare",
            options: dict[str, dict[str, Any]] | None = None, arch: dict[str, Any] | None = None,
            engine: str = "auto", resume: bool = False, overwrite: bool = False, progress: bool = False,
            **settings: Any) -> Results:
    """Train and evaluate each method on the same data and seeds into ``out``, as ``izoo compare``.

    ``seeds``: a count (3: seeds 0, 1, 2) or a list. ``options``: per method, option -> value (a
    list sweeps it). ``arch``: network sizes (``ArchConfig`` fields). ``settings``: any setting by
    name, as the command's flags and ``--set`` (``steps``, ``batch_size``, ``lr``, ``device``,
    ``eval_every``, ``ema_decay``, ``n_train``, ...; ``inference_zoo.settings()`` lists them); a list
    sweeps a setting that can be swept. ``resume`` keeps the finished runs of an earlier call;
    ``overwrite`` replaces them. ``recipe``: "preset", or "tuned" for each method's published tuned
    recipe at the preset and dataset (what ``settings`` and ``options`` give still wins).
    """
    from ..data import DATASETS
    from .compare import plan_compare, run_compare, tuned_recipes

    if resume and overwrite:
        raise UserError("resume and overwrite exclude each other")
    methods = [methods] if isinstance(methods, str) else list(methods)
    preset = preset or DATASETS.get(data.partition(":")[0]).default_preset
    configs = plan_compare(methods, data, preset, _seeds(seeds), options, arch=arch, engine=engine,
                           recipes=tuned_recipes(recipe, preset, data, methods), **settings)
    out = Path(out)
    mode = "resume" if resume else "overwrite" if overwrite else "new"
    rows, figures = run_compare(configs, out, mode, _display(progress))
    return Results(out, rows, figures)


def study(name: str, *, seeds: int | Sequence[int] | None = None, datasets: Sequence[str] | None = None,
          methods: Sequence[str] | None = None, preset: str | None = None, out: str | Path | None = None,
          publish: str | Path | None = None, options: dict[str, dict[str, Any]] | None = None,
          engine: str = "auto", overwrite: bool = False, progress: bool = False, **settings: Any) -> Results:
    """Run a study's cells into ``out`` (default runs/studies/NAME; finished cells are kept) and
    publish, exactly as ``izoo study``: to ``publish`` when given, else to figures/NAME when ``out``
    is the study's own run folder; publishing adds to what is published there (``overwrite``
    replaces it). ``settings``: any setting a study takes, by name."""
    import sys

    from .study import STUDIES, plan_study, run_study

    spec = STUDIES.get(name)
    configs = plan_study(spec, _seeds(seeds) if seeds is not None else None, preset=preset,
                         datasets=list(datasets) if datasets else None, methods=list(methods) if methods else None,
                         options=options, engine=engine, **settings)
    display = _display(progress)
    result = run_study(spec, configs, out=Path(out) if out is not None else None,
                       publish=Path(publish) if publish is not None else None, overwrite=overwrite,
                       command=f"inference_zoo.study({name!r}, ...)",
                       train=None if display is None else lambda c, o, m: run_compare_with(c, o, m, display))
    if result.note:
        print(result.note, file=sys.stderr)
    rows = result.rows or [r for r in collect_rows(result.out) if r["study"] == name]
    return Results(result.out, rows, result.written)


def tune(methods: Sequence[str] = ("ali",), data: str = "grid", *, budget: int, objective: str = "modes_3sigma",
         preset: str | None = None, seeds: int = 1, batch: int = 4, storage: str | None = None,
         out: str | Path = "runs/tune", space: dict[str, dict[str, tuple]] | None = None,
         options: dict[str, dict[str, Any]] | None = None, engine: str = "auto", fresh_seeds: int = 0,
         pruner: str = "median", curve_points: int = 4, confirm_seeds: int = 0, confirm_top: int = 3,
         **settings: Any):
    """Search each method's recipe with ``budget`` run-steps, as ``izoo tune``; ``space``: per
    method, name -> ("log"|"float"|"int", low, high) or ("choice", [values]) in place of its
    default space (``experiment.tune.default_space``). Returns each method's ``TuneResult``."""
    from ..data import DATASETS
    from .tune import tune as run_tune

    methods = [methods] if isinstance(methods, str) else list(methods)
    preset = preset or DATASETS.get(data.partition(":")[0]).default_preset
    return run_tune(methods, data, preset, budget=budget, seeds=seeds, batch=batch, objective=objective,
                    storage=storage, out=Path(out), space=space, options=options, engine=engine,
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
