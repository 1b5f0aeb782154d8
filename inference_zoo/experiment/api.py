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

from ..core.config import RunConfig
from ..core.errors import UserError
from ..core.fileio import read_json_object
from ..core.results import RESULT_FIELDS, aggregate, collect_rows, read_rows

#: settings a compare takes besides its grid, as in the command line (``--steps`` ...)
SETTINGS = ("steps", "batch_size", "lr", "device", "n_train", "amp", "compile", "arch", "engine", "eval_every",
            "lr_schedule", "lr_floor", "lr_decay_start", "ema_decay", "beta1", "tensorboard", "fid_weights")
#: those a study takes (its data sizes and networks are the study's)
STUDY_SETTINGS = ("steps", "lr", "device", "amp", "compile", "engine", "eval_every", "lr_schedule", "lr_floor",
                  "lr_decay_start", "ema_decay", "beta1", "tensorboard", "fid_weights")


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


def _check_settings(settings: dict[str, Any], valid: tuple[str, ...] = SETTINGS) -> None:
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise UserError(f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(valid)}")


def compare(methods: Sequence[str] = ("ali", "latent", "posthoc", "vae"), data: str = "grid",
            seeds: int | Sequence[int] = 1, *, preset: str | None = None, out: str | Path = "runs/compare",
            options: dict[str, dict[str, Any]] | None = None, resume: bool = False, overwrite: bool = False,
            progress: bool = False, **settings: Any) -> Results:
    """Train and evaluate each method on the same data and seeds into ``out``, as ``izoo compare``.

    ``seeds``: a count (3: seeds 0, 1, 2) or a list. ``options``: per method, option -> value (a
    list sweeps it). ``settings``: ``steps``, ``batch_size``, ``lr`` (a list sweeps it), ``device``,
    ``engine``, ``eval_every``, ``ema_decay``, ... as the command's flags. ``resume`` keeps the
    finished runs of an earlier call; ``overwrite`` replaces them.
    """
    from ..data import DATASETS
    from .cells import run_cells
    from .compare import plan_compare, prepare_output

    _check_settings(settings)
    if resume and overwrite:
        raise UserError("resume and overwrite exclude each other")
    methods = [methods] if isinstance(methods, str) else list(methods)
    preset = preset or DATASETS.get(data.partition(":")[0]).default_preset
    configs = plan_compare(methods, data, preset, _seeds(seeds), options, **settings)
    out = Path(out)
    mode = "resume" if resume else "overwrite" if overwrite else "new"
    if progress:
        from .display import run_study_with_display

        run_study_with_display(configs, out, mode, True)
        return Results(out, read_rows(out / "results.csv"))
    from ..viz.comparison import build_comparison_figures

    prepare_output(out, configs, mode)
    rows = run_cells(configs, out)
    return Results(out, rows, build_comparison_figures(out))


def study(name: str, *, seeds: int | Sequence[int] | None = None, datasets: Sequence[str] | None = None,
          methods: Sequence[str] | None = None, preset: str | None = None, out: str | Path | None = None,
          publish: str | Path | None = None, options: dict[str, dict[str, Any]] | None = None,
          overwrite: bool = False, progress: bool = False, **settings: Any) -> Results:
    """Run a study's cells into ``out`` (default runs/studies/NAME; finished cells are kept), as
    ``izoo study``; publish its tables and figures to ``publish`` when given."""
    from ..studies import STUDIES, publish_study, study_configs
    from .cells import prepare_output, run_cells

    _check_settings(settings, STUDY_SETTINGS)
    spec = STUDIES.get(name)
    configs = study_configs(spec, _seeds(seeds) if seeds is not None else None, settings.pop("steps", None), preset,
                            settings.pop("device", "auto"), settings.pop("lr", None),
                            list(datasets) if datasets else None, settings.pop("engine", "auto"),
                            options=options, methods=list(methods) if methods else None, **settings)
    out = Path(out) if out is not None else Path("runs/studies") / name
    mode = "overwrite" if overwrite else "resume"
    if progress:
        from .display import run_study_with_display

        run_study_with_display(configs, out, mode, True)
    else:
        prepare_output(out, configs, mode)
        run_cells(configs, out)
    rows = [r for r in collect_rows(out) if r["study"] == name]
    figures: list[Path] = []
    if publish is not None:
        figures = publish_study(spec, out, Path(publish), f"inference_zoo.study({name!r}, ...)", None, overwrite)
    return Results(out, rows, figures)


def read_results(path: str | Path):
    """The tidy rows of a run folder, an ``izoo compare`` or study folder, a published folder or a
    results CSV, as a pandas DataFrame."""
    path = Path(path)
    table = path / "results.csv" if path.is_dir() else path
    if not table.is_file():
        raise UserError(f"no results table at {table}")
    return _pandas().DataFrame(read_rows(table), columns=RESULT_FIELDS)


def load_run(run_dir: str | Path, device: str = "cpu", averaged: bool = True):
    """A trained run's strategy in eval mode on ``device``, from its folder alone (config.json and
    checkpoint.pt; no training data), or from an export folder (``izoo export``):
    ``encode``, ``decode``, ``sample(n)``, ``reconstruct``.

    ``averaged``: where the run kept a weight average (``ema_decay``), load the averaged encoder and
    decoder, as its evaluation did (an export holds the weights it was exported with)."""
    from ..core.environment import resolve_device
    from ..core.fileio import load_torch
    from ..engine.train import build_strategy
    from .export import is_export, read_export_weights

    run_dir = Path(run_dir)
    config = RunConfig.from_dict(read_json_object(run_dir / "config.json", "it is not a run folder of izoo"))
    model = read_json_object(run_dir / "model.json", "train the run again") if (run_dir / "model.json").is_file() else {}
    strategy = build_strategy(config, shapes=model or None)
    if is_export(run_dir):
        _load_weights(strategy, read_export_weights(run_dir), run_dir)
    else:
        checkpoint = load_torch(run_dir / "checkpoint.pt")
        phases = strategy.phases(config.train.steps)
        if checkpoint["phase"] < len(phases):
            raise UserError(f"{run_dir} holds an unfinished run (phase {checkpoint['phase'] + 1} of {len(phases)}); "
                            "finish it with --resume first")
        strategy.load_state_dict(checkpoint["model"])
        if averaged and checkpoint.get("ema"):
            strategy.load_state_dict(checkpoint["ema"], strict=False)
    strategy = strategy.to(resolve_device(device)).eval()
    for p in strategy.parameters():
        p.requires_grad_(False)
    return strategy


def _load_weights(strategy, state: dict, where: Path) -> None:
    try:
        strategy.load_state_dict(state)
    except RuntimeError as exc:  # missing, unexpected or mis-shaped weights
        raise UserError(f"{where}: the weights do not fit the networks its config.json builds "
                        f"({str(exc).splitlines()[0]}); export the run again") from None


__all__ = ["Results", "compare", "load_run", "read_results", "study"]
