"""The ``izoo`` command line: parses and validates arguments, then calls the library.

Every mistake a user can make is a ``UserError`` (or a usage error of the parser) and is printed
as one line with exit code 2; ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from .core.config import coerce_value
from .core.errors import UserError, did_you_mean, unknown

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Compare inference mechanisms (ALI, BiGAN, latent regressor, post-hoc, VAE).")
_state = {"debug": False}
# Typer >= 0.23 ships its own copy of click; find the parser's error base class either way.
_ParserError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"izoo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
          version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Show the version and exit.")) -> None:
    _state["debug"] = debug


# --- argument parsing ----------------------------------------------------------------------
def parse_methods(text: str) -> list[str]:
    from .strategies import STRATEGIES

    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise UserError("--methods is empty")
    if len(set(names)) != len(names):
        raise UserError(f"--methods lists a method twice: {text}")
    for name in names:
        STRATEGIES.get(name)  # raises with the valid names
    return names


def parse_seeds(text: str) -> list[int]:
    """``3`` means seeds 0, 1, 2; ``0,5,7`` lists them; ``2-4`` is a range."""
    text = text.strip()
    limit = f"--seeds must be below 2^31 and at most 100,000 of them, got {text!r}"
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        elif "-" in text.lstrip("-") and not text.startswith("-"):
            lo, hi = (int(s) for s in text.split("-"))
            if hi >= 2**31 or hi - lo >= 100_000:
                raise UserError(limit)
            seeds = list(range(lo, hi + 1))
        else:
            count = int(text)
            if count < 1:
                raise UserError(f"--seeds must be a positive count, a list or a range, got {text!r} "
                                "(--seeds N runs seeds 0..N-1; one seed S is written S, or S-S)")
            if count > 100_000:
                raise UserError(limit)
            seeds = list(range(count))
    except ValueError:
        raise UserError(f"--seeds must be a count (3), a list (0,5,7) or a range (2-4), got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds must name distinct non-negative seeds, got {text!r}")
    if max(seeds) >= 2**31 or len(seeds) > 100_000:
        raise UserError(limit)
    return seeds


def parse_options(items: list[str], methods: list[str]) -> dict[str, dict[str, Any]]:
    """``method.key=value`` sets one method's option; ``key=value`` every listed method that has it.

    ``key=a,b,c`` sweeps the option: its value is then a list, and each value is a variant of the
    methods that have the option (``compare.plan_compare``), named in labels as "key=a".
    """
    from .strategies import STRATEGIES

    out: dict[str, dict[str, Any]] = {m: {} for m in methods}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise UserError(f"--option expects method.key=value or key=value, got {item!r}")
        method, _, name = key.rpartition(".")
        targets = [method] if method else methods
        if method and method not in methods:
            raise UserError(f"--option {item!r}: method {method!r} is not in --methods{did_you_mean(method, methods)}")
        valid: dict[str, None] = {}  # every listed method's options, in order
        for m in targets:
            defaults = dataclasses.asdict(STRATEGIES.get(m).Options())
            valid.update(dict.fromkeys(defaults))
            if name in defaults:
                out[m][name] = _option_values(value, defaults[name], f"--option {item}")
        if name not in valid:
            raise UserError(f"--option {item!r}: no listed method has an option {name!r}{did_you_mean(name, valid)}; "
                            f"options of {', '.join(targets)}: {', '.join(valid) or 'none'}")
    return out


def _option_values(text: str, default: Any, where: str) -> Any:
    """One value, or the list of a sweep ("a,b,c"): distinct, and each fit to name a run."""
    from .core.config import setting_text
    from .core.registry import is_safe_name

    if "," not in text:
        return coerce_value(text, default, where)
    values = [coerce_value(v.strip(), default, where) for v in text.split(",") if v.strip()]
    if len(values) < 2 or len(set(values)) < len(values):
        raise UserError(f"{where}: a sweep needs two or more distinct values")
    for value in values:
        if not is_safe_name(setting_text(value)):
            raise UserError(f"{where}: a swept value may hold only letters, digits, _ . -; got {value!r}")
    return values


def parse_arch(items: list[str]) -> dict[str, Any]:
    """``--arch key=value``: e.g. ``decoder_hidden=400x400x400``, ``maxout_pieces=3``, ``z_dim=4``,
    ``name=mlp_leaky`` (another architecture: a built-in or a plugin)."""
    from .nets import ARCHITECTURES, ArchConfig

    defaults = dataclasses.asdict(ArchConfig())
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise UserError(f"--arch expects key=value, e.g. decoder_hidden=400x400; got {item!r}")
        if key not in defaults:
            raise unknown("--arch key", key, defaults)
        default = defaults[key]
        try:
            if key == "name":
                ARCHITECTURES.get(value)  # an unknown or broken one is one line now
                out[key] = value
            elif isinstance(default, tuple):
                widths = tuple(int(w) for w in value.lower().split("x"))
                if not widths or min(widths) < 1:
                    raise ValueError
                out[key] = widths
            else:
                out[key] = coerce_value(value, default, f"--arch {item}")
        except ValueError:
            raise UserError(f"--arch {item!r}: widths are positive integers joined by x, e.g. 400x400") from None
    if out.get("maxout_pieces", 1) < 1 or out.get("z_dim", 0) < 0 or out.get("init_std", 1.0) <= 0:
        raise UserError("--arch: maxout_pieces >= 1, z_dim >= 0 and init_std > 0 are required")
    return out


def set_data_location(root: Path | None, download: bool) -> None:
    """Where image data lives is per process, not part of a run's config (see data/images.py)."""
    from .data.images import set_data_location as set_location

    set_location(root, download)


# --- commands --------------------------------------------------------------------------------
# options that compare and study share, declared once; every setting's flag comes from its config
# field (core/settings.py), added to both commands by ``with_settings``
PROGRESS_OPTION = typer.Option(True, help="A progress bar on a terminal; off (or output to a file or pipe): a plain line per group every 30 s.")
OPTION_OPTION = typer.Option([], "--option", "-o",
                             help="Strategy option: method.key=value or key=value; key=a,b,c sweeps it (a variant per value).")
DATA_ROOT_OPTION = typer.Option(None, help="Folder of torchvision / ImageFolder data (default $IZOO_DATA_ROOT or ./data).")
DOWNLOAD_OPTION = typer.Option(False, help="Download a missing torchvision dataset into --data-root (never implicit).")
THREADS_OPTION = typer.Option("auto", help="CPU threads: auto (the cores other running processes leave free; "
                                           "$OMP_NUM_THREADS where set), all, or a number.")
PROCESSES_OPTION = typer.Option("auto", help="Processes training the runs: auto (one per core "
                                               "--threads gives, for 10,000 run-steps or more) or a number.")
SET_OPTION = typer.Option([], "--set", "-s", help="Any setting by name: -s lr=3e-4 -s eval.n_three_sigma=5000 "
                          "(inference_zoo.settings() lists them); a comma list sweeps a setting that can be swept.",
                          rich_help_panel="Settings")
SETTINGS_PANEL = "Settings (default: the preset's)"


def with_settings(study: bool):
    """Add a flag for every setting (``core/settings.py``) to a command: ``--lr``, ``--ema-decay``,
    ``--amp/--no-amp``, ... with the field's help. The command receives them in ``**settings``
    (None: not given)."""
    import inspect

    from .core.settings import all_settings

    def add(command):
        signature = inspect.signature(command)
        params = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        for s in all_settings().values():
            if not s.flag or (study and not s.study):
                continue
            dashed = s.name.replace("_", "-")
            if s.type is bool:
                option = typer.Option(None, f"--{dashed}/--no-{dashed}", help=s.help, rich_help_panel=SETTINGS_PANEL)
                annotation: Any = Optional[bool]
            else:
                metavar = {int: "INT", float: "FLOAT", tuple: "INTS"}.get(s.type, "TEXT") + ("[,...]" if s.sweep else "")
                option = typer.Option(None, f"--{dashed}", help=s.help, metavar=metavar, rich_help_panel=SETTINGS_PANEL)
                annotation = Optional[str]
            params.append(inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                            annotation=annotation))
        command.__signature__ = signature.replace(parameters=params)
        return command

    return add


def gather_settings(flags: dict[str, Any], assignments: list[str], study: bool = False) -> dict[str, Any]:
    """The settings given as flags and as ``--set name=value``, resolved by name (one of each)."""
    from .core.settings import parse_assignments, resolve

    given = resolve({k: v for k, v in flags.items() if v is not None}, study=study)
    for name, value in parse_assignments(assignments, study=study).items():
        if name in given:
            raise UserError(f"setting {name} is given twice (--{name.replace('_', '-')} and --set)")
        given[name] = value
    return given


def _completer(names: Callable[[], list[str]], listed: bool = False) -> Callable[[str], list[str]]:
    """Shell completion of a value from a registry's names (``listed``: the last of a comma list)."""
    def complete(incomplete: str) -> list[str]:
        head, _, last = incomplete.rpartition(",") if listed else ("", "", incomplete)
        return [f"{head}," * bool(head) + name for name in names() if name.startswith(last)]

    return complete


def _strategy_names() -> list[str]:
    from .strategies import STRATEGIES

    return STRATEGIES.names()


def _dataset_names() -> list[str]:
    from .data import DATASETS

    return DATASETS.names()


def _preset_names() -> list[str]:
    from .core.presets import PRESETS

    return list(PRESETS)


def _study_names() -> list[str]:
    from .studies import STUDIES, TUNINGS

    return STUDIES.names() + TUNINGS.names()


def set_threads(text: str, processes: str = "1") -> None:
    from .core.threads import parse_processes, parse_threads, use_processes, use_threads

    try:
        use_threads(parse_threads(text))
        use_processes(parse_processes(processes))
    except ValueError as exc:
        raise UserError(str(exc)) from None


@app.command("list")
def list_command() -> None:
    """Show registered strategies, datasets, architectures, presets and studies."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from .data import DATASETS
    from .nets import ARCHITECTURES
    from .core.presets import PRESETS
    from .strategies import STRATEGIES

    console = Console()
    for title, registry in (("strategies", STRATEGIES), ("datasets", DATASETS), ("architectures", ARCHITECTURES)):
        table = Table(title=title, title_justify="left", show_header=False, box=None)
        for name, item in registry.items():
            extra = ""
            if dataclasses.is_dataclass(getattr(item, "Options", None)):
                opts = dataclasses.asdict(item.Options())
                extra = "  [" + ", ".join(f"{k}={v}" for k, v in opts.items()) + "]" if opts else ""
            table.add_row(name, escape((item.description or (item.__doc__ or "").strip().splitlines()[0]) + extra))
        console.print(table)
        for name, why in getattr(registry, "broken_plugins", {}).items():
            console.print(f"  [red]{escape(name)}: plugin failed to load[/red] ({escape(why)})", highlight=False)
    table = Table(title="presets", title_justify="left", show_header=False, box=None)
    for name, preset in PRESETS.items():
        tuned = f" (--recipe tuned: {', '.join(sorted(preset.recipes))})" if preset.recipes else ""
        table.add_row(name, escape(preset.description + tuned))
    console.print(table)
    from .studies import STUDIES

    table = Table(title="studies (izoo study NAME publishes to figures/NAME)", title_justify="left",
                  show_header=False, box=None)
    for name, study in STUDIES.items():
        table.add_row(name, escape(study.description + (f" (from {study.base})" if study.base else "")))
    console.print(table)
    from .studies import TUNINGS

    table = Table(title="tunings (izoo study NAME runs izoo tune as published to figures/NAME)", title_justify="left",
                  show_header=False, box=None)
    for name, tuning in TUNINGS.items():
        table.add_row(name, escape(f"{tuning.description}; {', '.join(tuning.methods)} on {', '.join(tuning.datasets)}"))
    console.print(table)


@app.command()
@with_settings(study=False)
def compare(
    methods: str = typer.Option("ali,latent,posthoc,vae", help="Comma-separated strategy names (see izoo list).",
                                autocompletion=_completer(_strategy_names, listed=True)),
    data: str = typer.Option("grid", help="Dataset spec: grid, ring, identity, digits, cifar10, ... or e.g. 'ring:modes=12,std=0.02'.",
                             autocompletion=_completer(_dataset_names)),
    preset: Optional[str] = typer.Option(None, help="Schedule and network sizes (izoo list; default: the dataset's, quick for the toys).",
                                         autocompletion=_completer(_preset_names)),
    seeds: str = typer.Option("1", help="Seed count (3 = seeds 0,1,2), list (0,5,7) or range (2-4)."),
    recipe: str = typer.Option("preset", help="preset: the preset's settings for every method; tuned: each method's "
                               "published tuned recipe at this preset and dataset (izoo list)."),
    out: Path = typer.Option(Path("runs/compare"), help="Output folder."),
    option: list[str] = OPTION_OPTION,
    arch: list[str] = typer.Option([], "--arch", "-a", help="Network size, e.g. -a decoder_hidden=400x400 -a z_dim=4."),
    resume: bool = typer.Option(False, help="Continue a stopped comparison in --out (finished runs are kept)."),
    overwrite: bool = typer.Option(False, help="Replace earlier results in --out."),
    progress: bool = PROGRESS_OPTION,
    data_root: Optional[Path] = DATA_ROOT_OPTION,
    download: bool = DOWNLOAD_OPTION,
    threads: str = THREADS_OPTION,
    processes: str = PROCESSES_OPTION,
    set: list[str] = SET_OPTION,
    **settings: Any,
) -> None:
    """Train each method on the same data and seeds, evaluate, tabulate and draw the comparison."""
    from .experiment.api import checked_preset
    from .experiment.compare import plan_compare, run_compare, tuned_recipes
    from .experiment.display import TerminalDisplay

    set_threads(threads, processes)
    if resume and overwrite:
        raise UserError("--resume and --overwrite exclude each other")
    given = gather_settings(settings, set)
    engine = given.pop("engine", "auto")
    from .engine import distributed

    if distributed.launched():  # torchrun: every run trained data-parallel over the processes
        if engine == "stacked":
            raise UserError("--engine stacked trains on one process; under torchrun each run is data-parallel")
        engine = "single"
    method_names = parse_methods(methods)
    set_data_location(data_root, download)
    preset = checked_preset(preset, data)
    configs = plan_compare(method_names, data, preset, parse_seeds(seeds), parse_options(option, method_names),
                           arch=parse_arch(arch), engine=engine,
                           recipes=tuned_recipes(recipe, preset, data, method_names), **given)
    mode = "resume" if resume else "overwrite" if overwrite else "new"
    distributed.start(configs[0].train.device)
    run_compare(configs, out, mode, TerminalDisplay(progress))


PARTITION_OPTION = typer.Option(None, help="With --executor slurm: the partition (checked before submitting).")
TIME_OPTION = typer.Option(240, "--time", help="With --executor: minutes per job (a job past it is requeued and resumes).")
GPUS_OPTION = typer.Option(0, help="With --executor: GPUs per job.")
CPUS_OPTION = typer.Option(None, help="With --executor: CPUs per job.")
PARALLELISM_OPTION = typer.Option(None, help="With --executor slurm: jobs of the array running at once.")


@app.command()
@with_settings(study=True)
def study(
    name: str = typer.Argument(..., help="Study name (see izoo list).", autocompletion=_completer(_study_names)),
    folders: Optional[list[Path]] = typer.Argument(None, help="With --merge: run folders or published folders to merge."),
    seeds: Optional[str] = typer.Option(None, help="Seed count, list or range (default: the study's)."),
    preset: Optional[str] = typer.Option(None, help="Schedule preset (default: the study's).",
                                         autocompletion=_completer(_preset_names)),
    option: list[str] = OPTION_OPTION,
    datasets: Optional[str] = typer.Option(None, help="Comma-separated subset of the study's datasets."),
    methods: Optional[str] = typer.Option(None, help="Comma-separated subset of the study's methods.",
                                          autocompletion=_completer(_strategy_names, listed=True)),
    shard: Optional[str] = typer.Option(None, help="I/N: train only shard I of N (whole stacks; no locks, no shared folder)."),
    out: Optional[Path] = typer.Option(None, help="Run folder (default runs/studies/NAME); finished cells are kept."),
    publish: Optional[Path] = typer.Option(None, help="Where tables and figures go (default figures/NAME, "
                                                      "unless --out or --shard is given)."),
    overwrite: bool = typer.Option(False, help="Discard earlier cells in --out, or published cells missing from what is published."),
    publish_only: bool = typer.Option(False, help="Train nothing: publish every finished cell in --out (or the --merge folders)."),
    merge: bool = typer.Option(False, "--merge", help="With --publish-only: merge the folders given after the name."),
    executor: Optional[str] = typer.Option(None, help="Run the cells as scheduler jobs: local or slurm (needs inference-zoo[cluster])."),
    jobs: Optional[int] = typer.Option(None, help="With --executor: number of shard jobs (default: one per stack group)."),
    partition: Optional[str] = PARTITION_OPTION,
    time_limit: int = TIME_OPTION,
    gpus_per_job: int = GPUS_OPTION,
    cpus_per_job: Optional[int] = CPUS_OPTION,
    array_parallelism: Optional[int] = PARALLELISM_OPTION,
    progress: bool = PROGRESS_OPTION,
    data_root: Optional[Path] = DATA_ROOT_OPTION,
    download: bool = DOWNLOAD_OPTION,
    threads: str = THREADS_OPTION,
    processes: str = PROCESSES_OPTION,
    set: list[str] = SET_OPTION,
    **settings: Any,
) -> None:
    """Run a study's grid of cells (skipping finished ones), aggregate, publish tables and figures."""
    from .core.environment import command_line
    from .engine.distributed import launched
    from .experiment.api import checked_preset
    from .experiment.study import STUDIES, merge_study, plan_study, run_study

    if launched():
        raise UserError("izoo study runs its cells as separate processes (--shard, --executor); "
                        "torchrun's data-parallel runs are for izoo compare")
    from .studies import TUNINGS

    dataset_subset = [d.strip() for d in datasets.split(",") if d.strip()] if datasets else None
    if name in TUNINGS:
        from .experiment.tune import run_tuning

        set_threads(threads, processes)
        given = gather_settings(settings, set, study=True)
        engine = given.pop("engine", "auto")
        unused = [flag for flag, value in (("--seeds", seeds), ("--preset", preset), ("--option", option),
                                           ("--shard", shard), ("--publish-only", publish_only), ("--merge", merge),
                                           ("--executor", executor)) if value] + [f"--{k.replace('_', '-')}" for k in given]
        _, written = run_tuning(TUNINGS.get(name), unused=unused, methods=parse_methods(methods) if methods else None,
                                datasets=dataset_subset, out=out, publish=publish, overwrite=overwrite, engine=engine,
                                log=lambda text: print(text, file=sys.stderr, flush=True))
        for path in written:
            print(path)
        return
    spec = STUDIES.get(name)
    if folders and not merge:
        raise UserError(f"unexpected argument(s) {' '.join(map(str, folders))} (folders to merge follow --merge)")
    if merge and not (publish_only and folders):
        raise UserError("--merge takes --publish-only and the folders to merge: "
                        f"izoo study {name} --publish-only --merge DIR [DIR ...]")
    command = command_line(sys.argv)
    if merge:
        for path in merge_study(spec, list(folders), publish=publish, overwrite=overwrite, command=command):
            print(path)
        return
    set_threads(threads, processes)
    set_data_location(data_root, download)
    given = gather_settings(settings, set, study=True)
    method_subset = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    configs = plan_study(spec, parse_seeds(seeds) if seeds else None, preset=checked_preset(preset),
                         datasets=dataset_subset, methods=method_subset, options=parse_options(option, method_subset or list(spec.methods)),
                         engine=given.pop("engine", "auto"), **given)
    from .experiment.compare import run_compare
    from .experiment.display import TerminalDisplay
    from .experiment.executors import JobSettings

    result = run_study(spec, configs, out=out, publish=publish, overwrite=overwrite, publish_only=publish_only,
                       shard=shard, executor=executor, jobs=jobs, command=command,
                       job_settings=JobSettings(partition, time_limit, gpus_per_job, cpus_per_job, array_parallelism,
                                                threads),
                       train=lambda c, o, m: run_compare(c, o, m, TerminalDisplay(progress)),
                       log=lambda text: print(text, file=sys.stderr))
    if result.note:
        print(result.note, file=sys.stderr if result.published is None and not result.rows else sys.stdout)
    for path in result.written:
        print(path)


@app.command()
@with_settings(study=False)
def tune(
    methods: str = typer.Option("ali", help="Comma-separated strategy names: each is searched with the same budget.",
                                autocompletion=_completer(_strategy_names, listed=True)),
    data: str = typer.Option("grid", help="Dataset spec, as izoo compare takes it.", autocompletion=_completer(_dataset_names)),
    budget: int = typer.Option(..., help="Run-steps per method (steps x phases x seeds summed over its trials)."),
    objective: str = typer.Option("modes_3sigma", help="The metric to optimise (lower is better for errors, "
                                                        "distances and MSEs, higher for the rest), or a sum such as "
                                                        "modes_3sigma+hq_fraction (modes first, the share breaks ties)."),
    preset: Optional[str] = typer.Option(None, help="Schedule and network sizes (default: the dataset's).",
                                         autocompletion=_completer(_preset_names)),
    seeds: int = typer.Option(1, help="Tuning seeds per trial (seeds 1000, 1001, ...: never a comparison's)."),
    batch: int = typer.Option(4, help="Trials asked and trained at once (those differing only in lr share a stack)."),
    fresh_seeds: int = typer.Option(0, help="Then train each best recipe on seeds 0..N-1, never seen by tuning "
                                            "(METHOD@DATA/fresh: the numbers to report)."),
    confirm_seeds: int = typer.Option(0, help="Then re-train the best --confirm-top trials and the preset's recipe "
                                              "on N further tuning seeds; the best mean over all its tuning seeds "
                                              "wins (a pick among noisy trials is partly seed luck)."),
    confirm_top: int = typer.Option(3, help="With --confirm-seeds: how many of the best trials to re-train."),
    pruner: str = typer.Option("median", help="Stop trials that fall behind at a curve point: none, median (behind "
                                              "the median of earlier trials there) or halving (successive halving)."),
    curve_points: int = typer.Option(4, help="Curve points per phase at which trials are judged (sets eval_every "
                                             "unless given)."),
    publish: Optional[Path] = typer.Option(None, help="Then publish the histories and the fresh seeds' rows into "
                                                      "this folder (e.g. figures/tuned_quick), adding to what it holds."),
    overwrite: bool = typer.Option(False, help="With --publish: replace cells or histories it holds with others."),
    executor: Optional[str] = typer.Option(None, help="Run the search as scheduler jobs, each a worker on the shared "
                                                      "--storage: local or slurm (needs inference-zoo[cluster])."),
    jobs: int = typer.Option(2, help="With --executor: the number of workers."),
    partition: Optional[str] = PARTITION_OPTION,
    time_limit: int = TIME_OPTION,
    gpus_per_job: int = GPUS_OPTION,
    cpus_per_job: Optional[int] = CPUS_OPTION,
    array_parallelism: Optional[int] = PARALLELISM_OPTION,
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL shared by workers (default: sqlite in --out)."),
    out: Path = typer.Option(Path("runs/tune"), help="Output folder: trial runs, trials.csv and best.json per method."),
    option: list[str] = OPTION_OPTION,
    threads: str = THREADS_OPTION,
    processes: str = PROCESSES_OPTION,
    set: list[str] = SET_OPTION,
    **settings: Any,
) -> None:
    """Search each method's recipe (training settings and its own options) with an equal budget of run-steps."""
    from .experiment.api import checked_preset
    from .experiment.tune import tune as run_tune

    set_threads(threads, processes)
    given = gather_settings(settings, set)
    engine = given.pop("engine", "auto")
    method_names = parse_methods(methods)
    kwargs = dict(methods=method_names, data=data, preset=checked_preset(preset, data), budget=budget, seeds=seeds,
                  batch=batch, objective=objective, storage=storage, out=out, options=parse_options(option, method_names),
                  engine=engine, pruner=pruner, curve_points=curve_points, **given)
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    if executor is not None:
        from .experiment.executors import JobSettings, check_executor, run_tune_workers

        job_settings = JobSettings(partition, time_limit, gpus_per_job, cpus_per_job, array_parallelism, threads)
        check_executor(executor, jobs, job_settings)
        kwargs["storage"] = storage or f"sqlite:///{(out / 'tuning.db').resolve()}"
        run_tune(**kwargs, check_only=True)  # bad input or storage: one line, before any job is submitted
        run_tune_workers(kwargs, jobs, executor, job_settings, log=log)
    results = run_tune(**kwargs, fresh_seeds=fresh_seeds, confirm_seeds=confirm_seeds, confirm_top=confirm_top,
                       log=log)  # after workers: the budget is spent
    for r in results:
        print(f"{r.method}@{r.data}: best {objective} {r.best_value:.4g} after {r.trials} trials: "
              + ", ".join(f"{k}={v}" for k, v in sorted(r.best_params.items())) + f"  ({r.folder / 'best.json'})")
        if r.fresh is not None:
            print(f"  on fresh seeds: {r.fresh / 'summary.csv'}")
    if publish is not None:
        from .experiment.tune import publish_tuning

        for path in publish_tuning([out], publish, overwrite):
            print(path)


@app.command()
def figures(
    path: Path = typer.Argument(Path("figures"), help="figures/ (every published study), an izoo compare folder "
                                                     "or an izoo tune folder."),
    seed: Optional[int] = typer.Option(None, help="For a compare folder: the seed to draw (default: the lowest)."),
    format: str = typer.Option("png", "--format", help="png, pdf or svg (written beside the others; byte-stable)."),
) -> None:
    """Redraw figures from stored tidy results and sample arrays, without training."""
    from .studies import rebuild_figures
    from .viz.comparison import build_comparison_figures
    from .viz.style import FORMATS, figure_format
    from .viz.tuning import plot_history, tuning_folders

    if format not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    with figure_format(format):
        if (path / "results.csv").is_file() and (path / "runs").is_dir():
            written = build_comparison_figures(path, seed)
        elif path.is_dir() and tuning_folders(path):
            written = [plot_history(folder) for folder in tuning_folders(path)]
        elif path.is_dir():
            written = rebuild_figures(path)
        else:
            raise UserError(f"{path} is neither a figures folder nor an izoo compare folder")
    for p in written:
        print(p)


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="A finished run's folder (e.g. runs/compare/runs/grid/ali/seed0)."),
    format: str = typer.Option("safetensors", "--format", help="safetensors (needs inference-zoo[export]) or pt."),
    out: Optional[Path] = typer.Option(None, help="Export folder (default RUN_DIR/export)."),
    averaged: bool = typer.Option(True, help="Where the run kept a weight average (--ema-decay), export it "
                                             "in place of the live encoder and decoder, as its evaluation used."),
    overwrite: bool = typer.Option(False, help="Replace an earlier export in the folder."),
) -> None:
    """Write a trained run's weights and the config that rebuilds its networks, for downstream use."""
    from .experiment.export import export_run

    print(export_run(run_dir, out, format, averaged, overwrite))


@app.command("verify")
def verify_command(
    folder: Path = typer.Argument(..., help="A published study folder, e.g. figures/identity_toy_converged."),
    cells: int = typer.Option(3, help="How many cells to re-train, spread over the study's methods and seeds."),
    seed: int = typer.Option(0, help="Seed of the choice of cells (the same seed picks the same cells)."),
    out: Optional[Path] = typer.Option(None, help="Folder for the re-trained cells, verify.csv and verify.json "
                                                  "(default: a temporary folder, removed)."),
    overwrite: bool = typer.Option(False, help="Replace what --out holds."),
    threads: str = THREADS_OPTION,
) -> None:
    """Re-train a few cells of a published study from their recorded configs and compare every metric
    with the published value: identical, within the study's seed spread, or outside it (exit code 1)."""
    from rich.console import Console

    from .experiment.verify import print_verification, verify

    set_threads(threads)
    result = verify(folder, cells, seed=seed, out=out, overwrite=overwrite,
                    log=lambda text: print(text, file=sys.stderr, flush=True))
    print_verification(result, Console())
    if not result.passed:
        raise typer.Exit(1)


INTERRUPTED = ("izoo: interrupted; each unfinished run keeps its last checkpoint (every checkpoint_every steps): "
               "run the same command with --resume to continue (izoo study and izoo tune continue by themselves)")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``izoo`` script: one-line errors and exit code 2 for bad input."""
    from .core.threads import restore

    try:
        code = app(args=argv, prog_name="izoo", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool):  # typer.Exit(code), which click returns
            if code == 130:  # typer turned Ctrl-C into Exit(130)
                print(INTERRUPTED, file=sys.stderr)
            return code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except _ParserError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            print(exc.format_message() if hasattr(exc, "format_message") else exc, file=sys.stderr)
            return 2
        print(f"izoo: error: {exc.format_message()}", file=sys.stderr)
        return 2
    except (UserError, KeyboardInterrupt) as exc:
        if _state["debug"]:
            raise
        if isinstance(exc, KeyboardInterrupt):
            print(INTERRUPTED, file=sys.stderr)
            return 130
        print(f"izoo: error: {exc}", file=sys.stderr)
        return 2
    finally:
        restore()
        if "inference_zoo.engine.distributed" in sys.modules:
            sys.modules["inference_zoo.engine.distributed"].stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
