"""``izoo compare``: the same data, seeds, architectures and trainer for every listed method."""
from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

from ..core.config import DataConfig, EvalConfig, RunConfig, validate_train, variant_of
from ..data import build_dataset, parse_data_spec
from ..core.presets import get_preset
from .cells import prepare_output, run_cells
from ..core.environment import resolve_device
from ..core.errors import UserError, unknown
from ..strategies import STRATEGIES
from ..engine.train import build_strategy, resolve_options
from ..engine import distributed
from ..engine.stack.engine import resolve_engine


def plan_compare(methods: list[str], data: str, preset: str, seeds: list[int],
                 options: dict[str, dict[str, Any]] | None = None, *, study: str = "compare",
                 arch: dict[str, Any] | None = None, engine: str = "auto",
                 evaluation: dict[str, Any] | None = None, recipes: dict[str, dict[str, Any]] | None = None,
                 **settings: Any) -> list[RunConfig]:
    """Resolve and validate every run config (method x swept setting x seed) before anything is trained.

    ``options``: per method, option name -> value, or a list of values to sweep.
    ``settings``: any setting by name (``core/settings.py``: ``steps``, ``lr``, ``ema_decay``,
    ``n_train``, ``fid_weights``, ...; None: the preset's); a list sweeps a setting that can be
    swept. Each combination of swept values is a variant of the method, labelled in rows, folders
    and figures as "method@key=value,..." (options, then settings, each in name order).
    ``evaluation``: ``EvalConfig`` fields a study fixes for every cell (``Study.evaluation``).
    ``engine``: "auto" stacks what can be stacked (engine/stack/engine.py): seeds, swept
    ``MEMBER_SETTINGS`` and the strategy's ``member_options`` share a stack; other option values
    train as different stacks.
    ``recipes``: per method, settings and strategy options by name (a tuned recipe, ``tuned_recipes``)
    laid over the preset's; what ``settings`` and ``options`` give explicitly wins.
    """
    from ..core.settings import resolve, sections_of

    if recipes:
        return [c for m in methods for c in plan_compare(
            [m], data, preset, seeds, {m: {**_recipe_part(m, recipes.get(m, {}), True), **(options or {}).get(m, {})}},
            study=study, arch=arch, engine=engine, evaluation=evaluation,
            **{**_recipe_part(m, recipes.get(m, {}), False), **{k: v for k, v in settings.items() if v is not None}})]

    base = get_preset(preset)
    chosen = sections_of(resolve(settings))
    engine = chosen["train"].pop("engine", engine)  # "auto" is resolved per method below
    # training settings given as a list: each combination is a variant (named by the swept ones)
    lists = {k: (v if isinstance(v, list) else [v]) for k, v in sorted(chosen["train"].items())}
    train = dataclasses.replace(base.train, **{k: v[0] for k, v in lists.items() if len(v) == 1})
    swept = {k: v for k, v in lists.items() if len(v) > 1}
    trains, rate_settings = [], []
    for values in itertools.product(*swept.values()):
        trains.append(dataclasses.replace(train, **dict(zip(swept, values))))
        rate_settings.append(dict(zip(swept, values)))
    for t in trains:
        validate_train(t)
    resolve_device(train.device)  # "cuda" without CUDA fails now, before any folder is touched
    if train.tensorboard:
        from ..engine.run_folder import tensorboard_writer_class

        tensorboard_writer_class()  # likewise a missing tensorboard package
    if train.mlflow:
        from ..engine.mlflow_sink import check_uri

        check_uri(train.mlflow)  # and a missing mlflow package, or a URI MLflow does not take
    eval_config = dataclasses.replace(EvalConfig(), **{**(evaluation or {}), **chosen["eval"]})
    if eval_config.fid_weights:
        from ..evaluation.fid import check_fid_weights

        eval_config = dataclasses.replace(eval_config, fid_weights=check_fid_weights(eval_config.fid_weights))
    n_train = chosen["data"].get("n_train", DataConfig.n_train)
    if n_train < 1:
        raise UserError(f"--n-train must be >= 1, got {n_train}")
    data_config = parse_data_spec(data, n_train=n_train)
    x_dim = build_dataset(data_config).x_dim
    if n_train < train.batch_size:
        raise UserError(f"--n-train ({n_train}) must be at least the batch size ({train.batch_size})")
    for key in arch or {}:
        if key not in base.arch.__dataclass_fields__:
            raise unknown("arch key", key, base.arch.__dataclass_fields__)
    arch_config = dataclasses.replace(base.arch, **(arch or {}))
    configs = []
    for method in methods:
        cls = STRATEGIES.get(method)
        given = (options or {}).get(method, {})
        swept_options = {k: v for k, v in sorted(given.items()) if isinstance(v, list)}
        for values in itertools.product(*swept_options.values()):
            setting = dict(zip(swept_options, values))
            resolved = dataclasses.asdict(resolve_options(cls, {**given, **setting}))
            for swept, rate in zip(trains, rate_settings):
                for seed in seeds:
                    configs.append(RunConfig(method=method, seed=seed, study=study, data=data_config,
                                             arch=arch_config, train=swept, eval=eval_config, options=resolved,
                                             variant=variant_of({**setting, **rate})))
    # Build each method (and option setting) once on the CPU: a broken plugin fails here, not
    # after hours of training.
    def built_as(c: RunConfig) -> tuple[str, str]:
        return c.method, repr(sorted(c.options.items()))

    engines = {}
    for config in {built_as(c): c for c in configs}.values():
        try:
            build_strategy(config, x_dim)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - third-party code
            raise UserError(f"strategy {config.method} failed to build: {type(exc).__name__}: {exc}") from None
        engines[built_as(config)] = resolve_engine(config, engine, x_dim).train.engine
    return [dataclasses.replace(c, train=dataclasses.replace(c.train, engine=engines[built_as(c)])) for c in configs]


#: --recipe: the preset's own for every method, or each method's published tuned one
RECIPES = ("preset", "tuned")


def tuned_recipes(recipe: str, preset: str, data: str, methods: list[str]) -> dict[str, dict[str, Any]] | None:
    """``recipe`` "tuned": each method's published tuned recipe at ``preset`` on ``data``
    (``Preset.recipes``); "preset": None (the preset's settings for every method)."""
    if recipe not in RECIPES:
        raise UserError(f"--recipe {recipe!r}: valid: {', '.join(RECIPES)}")
    if recipe == "preset":
        return None
    base = get_preset(preset)
    missing = [m for m in methods if f"{m}@{data}" not in base.recipes]
    if missing:
        held = ", ".join(sorted(base.recipes)) or "none"
        raise UserError(f"no tuned recipe for {', '.join(missing)} on {data!r} at preset {preset} "
                        f"(tuned there: {held}); use --recipe preset or izoo tune")
    return {m: dict(base.recipes[f"{m}@{data}"]) for m in methods}


def option_names(method: str) -> set[str]:
    """The names of a strategy's own options (its ``Options`` fields); every other name is a setting."""
    return {f.name for f in dataclasses.fields(STRATEGIES.get(method).Options)}


def _recipe_part(method: str, params: dict[str, Any], options: bool) -> dict[str, Any]:
    """A recipe's strategy options (``options``) or its other settings."""
    names = option_names(method)
    return {k: v for k, v in params.items() if (k in names) == options}


def run_compare(configs: list[RunConfig], out: Path, mode: str, display: Any = None,
                figures: bool = True) -> tuple[list[dict[str, Any]], list[Path]]:
    """Train and evaluate every cell (skipping finished ones) into ``out``, write the tables and
    draw the comparison figures: what ``izoo compare``, ``inference_zoo.compare`` and every
    process of a torchrun job run. ``mode``: new | resume | overwrite (``cells.prepare_output``).

    ``display`` (e.g. ``display.TerminalDisplay``) only listens: ``start(configs)``,
    ``progress_for(stack)``, ``on_cell(i, n, config, status)``, ``stop()``, ``finish(out, rows,
    figures)``. ``figures``: False leaves the figures to the caller (a study publishes its own).
    """
    from ..viz.comparison import build_comparison_figures

    writer = distributed.is_writer()
    if writer:
        prepare_output(out, configs, mode)
    distributed.barrier()
    if display is None or not writer:  # the other processes of a data-parallel job print nothing
        rows = run_cells(configs, out)
        return rows, build_comparison_figures(out) if writer and figures else []
    display.start(configs)
    try:
        rows = run_cells(configs, out, display.progress_for, display.on_cell, say=getattr(display, "say", None))
    finally:
        display.stop()
    drawn = build_comparison_figures(out) if figures else []
    display.finish(out, rows, drawn)
    return rows, drawn
