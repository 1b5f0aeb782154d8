"""``izoo compare``: the same data, seeds, architectures and trainer for every listed method."""
from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any, Callable, Sequence

from ..core.config import EvalConfig, RunConfig, validate_train, variant_of
from ..data import build_dataset, parse_data_spec
from ..core.presets import get_preset
from .cells import prepare_output, run_cells
from ..core.environment import resolve_device
from ..core.errors import UserError
from ..strategies import STRATEGIES
from ..engine.train import build_strategy, resolve_options
from ..engine import distributed
from ..engine.stacked import resolve_engine


def plan_compare(methods: list[str], data: str, preset: str, seeds: list[int],
                 options: dict[str, dict[str, Any]] | None = None, *, steps: int | None = None,
                 batch_size: int | None = None, lr: float | Sequence[float] | None = None, device: str = "auto",
                 n_train: int = 100_000, study: str = "compare", amp: bool = False,
                 compile: bool = False, arch: dict[str, Any] | None = None, engine: str = "auto",
                 eval_every: int | None = None, lr_schedule: str | Sequence[str] | None = None,
                 lr_floor: float | None = None, lr_decay_start: float | None = None,
                 ema_decay: float | Sequence[float] | None = None,
                 beta1: float | Sequence[float] | None = None, tensorboard: bool = False,
                 fid_weights: str | Path | None = None) -> list[RunConfig]:
    """Resolve and validate every run config (method x swept setting x seed) before anything is trained.

    ``options``: per method, option name -> value, or a list of values to sweep.
    ``lr``: one learning rate, or several to sweep; likewise ``beta1``, ``ema_decay``, ``lr_schedule``.
    Each combination of swept values is a variant of the method, labelled in rows, folders and
    figures as "method@key=value,...,lr=value" (options in name order, then the rate).
    ``engine``: "auto" stacks the seeds and swept learning rates of each method and option setting
    that can be stacked (engine/stacked.py); different option values train as different stacks.
    """
    base = get_preset(preset)
    # training settings that take a list: each combination is a variant (named by the swept ones)
    lists = {"beta1": beta1, "ema_decay": ema_decay, "lr": lr, "lr_schedule": lr_schedule}
    lists = {k: ([v] if isinstance(v, (int, float, str)) else list(v)) for k, v in lists.items() if v is not None}
    for key, values in lists.items():
        if len(set(values)) < len(values):
            what = "a learning rate" if key == "lr" else "a value"
            raise UserError(f"--{key.replace('_', '-')} lists {what} twice: {', '.join(map(str, values))}")
    overrides = {k: v for k, v in dict(steps=steps, batch_size=batch_size, eval_every=eval_every,
                                       lr_floor=lr_floor, lr_decay_start=lr_decay_start).items() if v is not None}
    train = dataclasses.replace(base.train, device=device, amp=amp or base.train.amp,
                                compile=compile or base.train.compile, tensorboard=tensorboard, **overrides)
    trains, rate_settings = [], []
    for values in itertools.product(*lists.values()):
        chosen = dict(zip(lists, values))
        trains.append(dataclasses.replace(train, **chosen))
        rate_settings.append({k: (float(v) if k != "lr_schedule" else v) for k, v in chosen.items()
                              if len(lists[k]) > 1})
    for t in trains:
        validate_train(t)
    resolve_device(device)  # "cuda" without CUDA fails now, before any folder is touched
    if tensorboard:
        from ..engine.run_folder import tensorboard_writer_class

        tensorboard_writer_class()  # likewise a missing tensorboard package
    eval_config = EvalConfig()
    if fid_weights:
        from .fid import check_fid_weights

        eval_config = EvalConfig(fid_weights=check_fid_weights(fid_weights))
    if n_train < 1:
        raise UserError(f"--n-train must be >= 1, got {n_train}")
    data_config = parse_data_spec(data, n_train=n_train)
    x_dim = build_dataset(data_config).x_dim
    if n_train < train.batch_size:
        raise UserError(f"--n-train ({n_train}) must be at least the batch size ({train.batch_size})")
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


def run_compare(configs: list[RunConfig], out: Path, mode: str,
                progress_for: Callable[[list[RunConfig]], Any] | None = None,
                on_cell: Callable[..., Any] | None = None) -> tuple[list[dict[str, Any]], list[Path]]:
    """Train/evaluate every cell (skipping finished ones), write tables and figures."""
    from ..viz.comparison import build_comparison_figures

    if distributed.is_writer():
        prepare_output(out, configs, mode)
    distributed.barrier()
    rows = run_cells(configs, out, progress_for, on_cell)
    return rows, build_comparison_figures(out) if distributed.is_writer() else []
