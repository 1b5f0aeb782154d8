"""``izoo tune``: each strategy's recipe searched with the same budget of run-steps, on Optuna.

Optuna (a well-kept hyper-parameter search library: samplers, a shared storage that several
workers use at once, its own study format) holds the search; izoo trains the trials. Per method
and dataset one Optuna study, named "method@data", asks ``batch`` trials at a time; their runs
train together through ``run_cells``, so trials that differ only in what a stack can hold (the
learning rate) share one stacked model. A trial's value is its objective metric's mean over the
tuning seeds (``TUNING_SEED`` on, never the seeds a comparison publishes); a diverged or
non-finite trial fails.

The budget is counted in run-steps (steps x phases x tuning seeds per trial) and is the same for
every method: a two-phase strategy (latent, posthoc) gets half as many trials at the same steps.
Workers on one storage share the budget: each asks only while the study holds fewer trials than
the budget allows, and Optuna numbers the trials, so no trial is asked twice. With ``--mlflow``
each trial is a parent MLflow run (its params, its objective) with its seeds' runs nested.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..core.config import RunConfig
from ..core.errors import UserError, did_you_mean
from ..core.fileio import write_json
from ..core.environment import command_line
from ..core.results import better, safe_name, write_rows, write_tables
from ..studies.tunings import Tuning
from .cells import prepare_output, run_cells
from .compare import option_names, plan_compare
from .search import (PRUNERS, SEARCH_FILE, budget_used, drop_second_preset_recipe, enqueue_preset_recipe,
                     importances, load_optuna, load_search, not_counted, open_study, requeue_orphans,
                     runs_in, save_search, throughput, worker_id, write_history)
from ..engine.mlflow_sink import close_group, open_group

#: tuning trains on seeds from here on; comparisons and fresh re-runs use 0, 1, 2, ...
TUNING_SEED = 1000
#: training settings every strategy's search covers by default (a strategy adds its own options)
TRAIN_SPACE: dict[str, tuple] = {
    "lr": ("log", 5e-5, 3e-3),
    "beta1": ("choice", [0.0, 0.2, 0.5, 0.8]),
    "ema_decay": ("choice", [0.0, 0.99, 0.999]),
    "lr_schedule": ("choice", ["constant", "linear"]),
    "lr_decay_start": ("choice", [0.0, 0.5, 0.8]),
}
KINDS = ("log", "float", "int", "choice")


def metrics_of(objective: str) -> list[str]:
    """An objective is one metric or a sum of metrics: ``modes_3sigma+hq_fraction`` counts whole
    modes first and lets the high-quality share (0 to 1) break ties between equal counts."""
    return [m.strip() for m in objective.split("+")]


def direction_of(objective: str) -> str:
    return "minimize" if better(metrics_of(objective)[0]) == "lower" else "maximize"


def check_space(space: dict[str, tuple], method: str) -> None:
    """A search space: names of settings or of the method's options, each a known kind of range."""
    from ..core.settings import lookup

    options = option_names(method)
    for name, spec in space.items():
        if name not in options:
            lookup(name)  # a setting, or one line naming the nearest
        if not isinstance(spec, (tuple, list)) or not spec or spec[0] not in KINDS:
            raise UserError(f"search space {name}: expected (kind, ...) with kind one of {', '.join(KINDS)}, got {spec!r}")
        kind = spec[0]
        if kind == "choice":
            if len(spec) != 2 or not isinstance(spec[1], (list, tuple)) or not spec[1]:
                raise UserError(f"search space {name}: ('choice', [values]) needs a non-empty list")
        elif len(spec) != 3 or not all(isinstance(v, (int, float)) for v in spec[1:]) or not spec[1] < spec[2] \
                or (kind == "log" and spec[1] <= 0):
            raise UserError(f"search space {name}: ({kind!r}, low, high) needs low < high{' and low > 0' if kind == 'log' else ''}")


def default_space(method: str) -> dict[str, tuple]:
    from ..strategies import STRATEGIES

    return {**TRAIN_SPACE, **STRATEGIES.get(method).search_space}


def suggest(trial: Any, space: dict[str, tuple]) -> dict[str, Any]:
    out = {}
    for name, spec in space.items():
        kind = spec[0]
        if kind == "choice":
            out[name] = trial.suggest_categorical(name, list(spec[1]))
        elif kind == "int":
            out[name] = trial.suggest_int(name, int(spec[1]), int(spec[2]))
        else:
            out[name] = trial.suggest_float(name, float(spec[1]), float(spec[2]), log=kind == "log")
    return out


@dataclass
class TuneResult:
    """One method's search on one dataset: its best recipe and where its history lies."""

    method: str
    data: str
    trials: int
    best_value: float
    best_params: dict[str, Any]
    folder: Path
    fresh: Path | None = None  # the best recipe's runs on fresh seeds, when asked for


def tune(methods: list[str], data: str, preset: str, *, budget: int, seeds: int = 1, batch: int = 4,
         objective: str = "modes_3sigma", storage: str | None = None, out: Path = Path("runs/tune"),
         space: dict[str, dict[str, tuple]] | None = None, options: dict[str, dict[str, Any]] | None = None,
         engine: str = "auto", fresh_seeds: int = 0, pruner: str = "median", curve_points: int = 4,
         confirm_seeds: int = 0, confirm_top: int = 3, check_only: bool = False,
         log: Callable[[str], Any] = lambda text: None, **settings: Any) -> list[TuneResult]:
    """Search each method's recipe on ``data`` with ``budget`` run-steps; ``settings`` fix what is
    not searched (``steps`` included); ``space`` overrides a method's default space (per method).
    ``pruner`` (none, median or halving) stops trials that fall behind at one of ``curve_points``
    evaluations per phase; a stopped trial counts the run-steps it trained. ``fresh_seeds``: then
    train each best recipe on seeds 0 .. fresh_seeds - 1, which tuning never saw, into
    ``METHOD@DATA/fresh`` (its rows are the numbers to report). ``confirm_seeds``: before that,
    re-train the ``confirm_top`` best trials and the preset's recipe on that many further tuning
    seeds and take the best mean over all their tuning seeds (a best-of-many pick on one or two
    seeds is mostly seed luck: ``_confirm``). Every bad input is refused before
    anything trains; ``check_only`` stops there, after opening each method's study in the
    storage (what a command that submits workers as jobs checks first)."""
    from ..core.results import HEADLINE_METRICS

    optuna = load_optuna()
    if budget < 1 or seeds < 1 or batch < 1 or curve_points < 1 or confirm_top < 1 or not 0 <= fresh_seeds <= TUNING_SEED \
            or not 0 <= confirm_seeds <= 1000:
        raise UserError(f"--budget, --seeds, --batch, --curve-points and --confirm-top must be >= 1, --fresh-seeds "
                        f"from 0 to {TUNING_SEED} and --confirm-seeds from 0 to 1000")
    if pruner not in PRUNERS:
        raise UserError(f"--pruner {pruner!r}: valid: {', '.join(PRUNERS)}{did_you_mean(pruner, list(PRUNERS))}")
    for metric in metrics_of(objective):
        if metric not in HEADLINE_METRICS and not metric.startswith("label_probe_error_"):
            raise UserError(f"--objective {metric!r} is not a metric{did_you_mean(metric, HEADLINE_METRICS)}; "
                            f"metrics: {', '.join(HEADLINE_METRICS)}")
    aimless = [m for m in metrics_of(objective) if better(m) is None]
    if aimless:
        raise UserError(f"--objective {aimless[0]} improves in no one direction (a correlation's sign is the map's, "
                        "the path ratio describes); choose a metric with a better end")
    if len({direction_of(m) for m in metrics_of(objective)}) > 1:
        raise UserError(f"--objective {objective}: a sum needs metrics that improve in the same direction")
    from ..core.settings import resolve

    given = resolve(settings)
    swept = [k for k, v in given.items() if isinstance(v, list) and len(v) > 1]
    swept += [f"{m}.{k}" for m, given in (options or {}).items() for k, v in given.items() if isinstance(v, list)]
    if swept:
        raise UserError(f"izoo tune fixes what it does not search to one value; {', '.join(swept)} is given as a "
                        "sweep (searching is the tuner's job: put it in the search space)")
    spaces = {m: (space or {}).get(m, default_space(m)) for m in methods}
    for method, chosen in spaces.items():
        check_space(chosen, method)
        both = sorted((set(given) | set((options or {}).get(method, {}))) & set(chosen))
        if both:
            raise UserError(f"{method}: {', '.join(both)} is both fixed and searched; leave it out of the command "
                            "or out of the search space")
    tuning_seeds = list(range(TUNING_SEED, TUNING_SEED + seeds))
    out.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(out / 'tuning.db').resolve()}"
    results = []
    if pruner != "none" and "eval_every" not in settings:
        probe = plan_compare([methods[0]], data, preset, tuning_seeds[:1], options, engine=engine, **settings)[0]
        settings = {**settings, "eval_every": curve_every(probe.train.steps, probe.train.log_every, curve_points)}
    for method in methods:
        probe = plan_compare([method], data, preset, tuning_seeds[:1], options, engine=engine, **settings)[0]
        per_trial = run_steps(probe) * seeds
        if budget < per_trial:
            raise UserError(f"--budget {budget} run-steps buys no trial of {method} ({per_trial} run-steps each: "
                            f"{probe.train.steps} steps x phases x {seeds} seed(s))")
        folder = out / safe_name(f"{method}@{data}")
        carried = load_search(optuna, url, f"{method}@{data}", folder / SEARCH_FILE)
        study = open_study(optuna, url, f"{method}@{data}", direction_of(objective), pruner, batch)
        if carried:  # a copy's running trials ran elsewhere: their workers are gone
            log(f"{method}@{data}: the search goes on from {folder / SEARCH_FILE} ({len(study.trials)} trials)")
            requeue_orphans(optuna, study, log, everyone=True)
        enqueue_preset_recipe(study, probe, spaces[method])  # by the submitter, before any worker starts
        if check_only:
            continue
        log(cost_line(f"{method}@{data}", budget, per_trial, run_steps(probe), confirm_seeds and confirm_top + 1,
                      confirm_seeds, fresh_seeds))
        while True:
            requeue_orphans(optuna, study, log)
            left = (budget - budget_used(study, per_trial)) // per_trial
            if left < 1:
                break
            asked = drop_second_preset_recipe(optuna, study, [study.ask() for _ in range(min(batch, left))])
            for trial in asked:
                trial.set_user_attr("worker", worker_id())
            excess = budget_used(study, per_trial) - budget  # another worker asked at the same time
            over = asked[len(asked) - min(len(asked), max(0, -(-excess // per_trial))):]
            for trial in over:
                not_counted(study, trial.number)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            asked = asked[:len(asked) - len(over)]
            if not asked:
                break
            configs = {}
            for trial in asked:
                # seeded by the trial's number: a trial's parameters depend on the trials finished
                # before it, not on which worker asked (workers seeded alike would draw alike)
                study.sampler = optuna.samplers.TPESampler(seed=trial.number)
                planned = _plan_trial(method, data, preset, tuning_seeds, suggest(trial, spaces[method]), options,
                                      engine, settings)
                configs[trial.number] = [dataclasses.replace(c, variant=f"trial={runs_in(trial)}") for c in planned]
            goes_on = [f"{t.number} in trial {runs_in(t)}'s runs" for t in asked if runs_in(t) != t.number]
            log(f"{method}@{data}: trials {', '.join(map(str, configs))} "
                f"({budget - budget_used(study, per_trial)} of {budget} run-steps left after them)"
                + (f"; {', '.join(goes_on)}, from their checkpoints" if goes_on else ""))
            prepare_output(folder, [c for cs in configs.values() for c in cs], "resume")
            if probe.train.mlflow:  # each trial a parent run; its seeds' runs nest under it as they start
                for trial in asked:
                    open_group(probe.train.mlflow, folder, f"{method}@trial={runs_in(trial)}", trial.params)
            watcher = TrialWatcher({f"{method}@trial={runs_in(t)}": t for t in asked}, objective, seeds)
            rows = run_cells([c for cs in configs.values() for c in cs], folder,
                             watcher=watcher if pruner != "none" else None)
            for trial in asked:
                label = f"{method}@trial={runs_in(trial)}"
                trained = [r["value"] for r in rows if r["method"] == label and r["metric"] == "trained_run_steps"]
                if trained:  # stopped at a curve point: what it trained counts
                    trial.set_user_attr("run_steps", int(sum(trained)))
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    if probe.train.mlflow:
                        close_group(probe.train.mlflow, folder, label, {}, "KILLED")
                    continue
                trial.set_user_attr("run_steps", per_trial)
                value = _objective(rows, label, objective)
                if math.isfinite(value):
                    study.tell(trial, value)
                else:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                if probe.train.mlflow:
                    close_group(probe.train.mlflow, folder, label, {objective: value},
                                "FINISHED" if math.isfinite(value) else "FAILED")
            save_search(optuna, url, study.study_name, folder / SEARCH_FILE)
        save_search(optuna, url, study.study_name, folder / SEARCH_FILE)
        write_history(study, folder / "trials.csv")
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not done:
            raise UserError(f"no trial of {method} on {data} finished (all diverged or gave no {objective})")
        best, value, confirmed = study.best_trial, study.best_trial.value, None
        if confirm_seeds:
            chosen = _confirm(study, done, method, data, preset, tuning_seeds, confirm_seeds, confirm_top, options,
                              engine, settings, objective, folder, log)
            if chosen is None:  # another worker holds some of its runs: it will choose
                log(f"{method}@{data}: another worker is re-training the candidates; it chooses, this one goes on")
                continue
            best, value, confirmed = chosen
        write_json(folder / "best.json", {"method": method, "data": data, "objective": objective,
                                          "direction": direction_of(objective), "value": value,
                                          "params": best.params, "trial": best.number, "trials": len(study.trials),
                                          "budget_run_steps": budget, "run_steps_per_trial": per_trial,
                                          "tuning_seeds": tuning_seeds, "fixed_settings": _plain(settings),
                                          "importances": importances(optuna, study), **throughput(study),
                                          **({"confirmation": confirmed} if confirmed else {})})
        from ..viz.tuning import plot_history

        plot_history(folder)
        fresh = None
        if fresh_seeds:
            fresh = folder / "fresh"
            seeds_fresh = list(range(fresh_seeds))
            planned = _plan_trial(method, data, preset, seeds_fresh, best.params, options, engine, settings)
            control = plan_compare([method], data, preset, seeds_fresh, options, engine=engine, **settings)
            configs_fresh = ([dataclasses.replace(c, variant="tuned") for c in planned]
                             + [dataclasses.replace(c, variant="preset") for c in control])
            log(f"{method}@{data}: the best recipe (trial {best.number}) and the preset's on fresh seeds "
                f"0-{fresh_seeds - 1}")
            prepare_output(fresh, configs_fresh, "resume")
            write_tables(fresh, run_cells(configs_fresh, fresh))
        results.append(TuneResult(method, data, len(study.trials), value, best.params, folder, fresh))
    return results


def _confirm(study: Any, done: list[Any], method: str, data: str, preset: str, tuning_seeds: list[int], n: int,
             top: int, options: dict[str, dict[str, Any]] | None, engine: str, settings: dict[str, Any],
             objective: str, folder: Path, log: Callable[[str], Any]) -> tuple[Any, float, dict[str, Any]] | None:
    """Re-train the ``top`` best completed trials, and the preset's recipe (trial 0 of a new
    search), on ``n`` further tuning seeds into ``folder/confirm``; the candidate with the best mean
    over all its tuning seeds wins. Returns it, that mean and the record for best.json (its
    run-steps are spent on every method alike, outside the search budget); None where another
    worker is still training some of them (the choice is that worker's)."""
    sign = 1.0 if direction_of(objective) == "maximize" else -1.0
    ranked = sorted(done, key=lambda t: -sign * t.value)
    trials = {t.number: t for t in study.trials}

    def preset_recipe(t: Any) -> bool:  # or queued again from it, after its worker died
        return bool(t.user_attrs.get("preset_recipe")) or "requeued_from" in t.user_attrs and \
            preset_recipe(trials[t.user_attrs["requeued_from"]])

    candidates = ranked[:top] + [t for t in ranked[top:] if preset_recipe(t)]
    seeds = list(range(tuning_seeds[-1] + 1, tuning_seeds[-1] + 1 + n))
    configs = [dataclasses.replace(c, variant=f"trial={t.number}") for t in candidates
               for c in _plan_trial(method, data, preset, seeds, t.params, options, engine, settings)]
    log(f"{method}@{data}: trials {', '.join(str(t.number) for t in candidates)} again on tuning seeds "
        f"{seeds[0]}-{seeds[-1]}")
    where = folder / "confirm"
    prepare_output(where, configs, "resume")
    rows = run_cells(configs, where)
    if {(c.label, c.seed) for c in configs} - {(r["method"], r["seed"]) for r in rows}:
        return None
    write_tables(where, rows)
    table = []
    for t in candidates:
        again = _objective(rows, f"{method}@trial={t.number}", objective)
        table.append({"trial": t.number, "preset_recipe": preset_recipe(t),
                      "search_value": t.value, "confirm_value": again,
                      "value": (t.value * len(tuning_seeds) + again * n) / (len(tuning_seeds) + n)})
    finite = [r for r in table if math.isfinite(r["value"])] or [{**table[0], "value": table[0]["search_value"]}]
    chosen = max(finite, key=lambda r: sign * r["value"])
    record = {"seeds": seeds, "run_steps": sum(run_steps(c) for c in configs), "candidates": table}
    return next(t for t in candidates if t.number == chosen["trial"]), chosen["value"], record


def run_tuning(design: Tuning, *, unused: list[str] | None = None, methods: list[str] | None = None,
               datasets: list[str] | None = None, out: Path | None = None, publish: Path | None = None,
               overwrite: bool = False, engine: str = "auto",
               log: Callable[[str], Any] = lambda text: None) -> tuple[Path | None, list[Path]]:
    """Run a registered tuning (``studies.tunings``): ``izoo tune`` on each of its datasets (or the
    chosen ``datasets``) for its methods (or the chosen ``methods``) with the design's arguments,
    into ``out/DATA`` (default runs/tunings/NAME), then publish: to ``publish``, else to
    ``figures/NAME`` from the design's own run folder (as a study publishes). Returns where it
    published (None: nowhere) and what it wrote there. ``unused``: the options a caller was given
    that a tuning does not take (refused in one line)."""
    if unused:
        raise UserError(f"{design.name} is a tuning (izoo tune at the arguments it was published with): izoo study "
                        f"{design.name} takes --methods, --datasets, --out, --publish and --overwrite, not "
                        f"{unused[0]} (izoo tune searches at other settings)")
    for kind, chosen, known in (("method", methods, design.methods), ("dataset", datasets, design.datasets)):
        wrong = [c for c in chosen or [] if c not in known]
        if wrong:
            raise UserError(f"tuning {design.name} has no {kind} {wrong[0]}{did_you_mean(wrong[0], list(known))}; "
                            f"its {kind}s: {', '.join(known)}")
    root = out or Path("runs/tunings") / design.name
    sources = []
    for data in datasets or design.datasets:
        folder = root / data
        sources.append(folder)
        tune(list(methods or design.methods), data, out=folder, engine=engine, log=log, **design.arguments())
    target = publish or (Path("figures") / design.name if out is None else None)
    return target, [] if target is None else publish_tuning(sources, target, overwrite, design.figures_of)


def publish_tuning(sources: list[Path], target: Path, overwrite: bool = False, figures_of: str = "") -> list[Path]:
    """Publish ``izoo tune`` folders into ``target`` (``figures/<name>``): each method's history
    (``tuning/METHOD@DATA/trials.csv``, ``best.json``, the Optuna study as ``search.journal``),
    every fresh-seed row (tuned and preset recipes) in one tidy ``results.csv`` and
    ``summary.csv``, their curves in ``curves.csv``, the
    first fresh seed's held-out samples of each recipe in ``samples/`` (what the paper-layout
    figures are drawn from), and ``tuning.json`` (commands, commits, machines). ``figures_of``
    (a registered study's name, kept in ``tuning.json``): the folder also gets that study's figures,
    and its sample rule picks the samples (every fresh seed's, cut to the points it publishes,
    where it has one). Publishing into a
    folder that holds other cells adds to it; a cell, a history or samples it holds with other
    content are replaced only with ``overwrite``. Returns the figures."""
    from ..core.fileio import atomic_write, load_arrays, read_json_object, save_arrays
    from ..core.results import read_curve, read_rows, write_curve, write_summary
    from ..studies import STUDIES
    from ..studies.base import tuning_figures
    from ..viz.tuning import tuning_folders

    folders = [f for source in sources for f in tuning_folders(source)]
    if not folders:
        raise UserError(f"no izoo tune folder (METHOD@DATA/trials.csv and best.json) in {', '.join(map(str, sources))}")
    record_path = target / "tuning.json"
    record = read_json_object(record_path, "restore it from git or publish again with --overwrite") \
        if record_path.is_file() else {}
    if figures_of:
        record["figures_of"] = figures_of
    study = STUDIES.get(record["figures_of"]) if record.get("figures_of") else None
    old_rows = read_rows(target / "results.csv") if (target / "results.csv").is_file() else []
    new_rows: list[dict[str, Any]] = []
    new_curves: list[dict[str, Any]] = []
    samples: dict[Path, dict[str, Any]] = {}
    histories = {}
    for folder in folders:
        name = folder.name
        fresh = folder / "fresh"
        rows = read_rows(fresh / "results.csv") if (fresh / "results.csv").is_file() else []
        new_rows += rows
        new_curves += _fresh_curves(fresh, rows)
        samples.update(_fresh_samples(fresh, rows, target / "samples", study))
        histories[name] = folder
        envs = [read_json_object(p, "run the fresh seeds again") for p in sorted(fresh.glob("runs/*/*/seed*/env.json"))]
        best = read_json_object(folder / "best.json", "run izoo tune again")
        record.setdefault("methods", {})[name] = {"best": best, "commits": sorted({str(e.get("git_commit")) for e in envs}),
                                   "machines": sorted({str(e.get("platform")) for e in envs}),
                                   "commands": sorted({command_line(e["argv"]) for e in envs
                                                       if isinstance(e.get("argv"), list)}),
                                   "fresh_seeds": sorted({r["seed"] for r in rows})}
    cells_new = {_cell(r) for r in new_rows}
    kept = [r for r in old_rows if _cell(r) not in cells_new]
    replaced = [r for r in old_rows if _cell(r) in cells_new]
    if replaced and not overwrite and _comparable(replaced) != _comparable(
            [r for r in new_rows if _cell(r) in {_cell(o) for o in replaced}]):
        raise UserError(f"{target} holds other results for cells of these folders; publish with --overwrite to replace them")
    for name, folder in histories.items():
        dest = target / "tuning" / name
        for file in ("trials.csv", "best.json"):
            if (dest / file).is_file() and (dest / file).read_bytes() != (folder / file).read_bytes() and not overwrite:
                raise UserError(f"{dest / file} holds another tuning history; publish with --overwrite to replace it")
    for path, arrays in samples.items():
        if path.is_file() and not overwrite and not _same_arrays(load_arrays(path), arrays):
            raise UserError(f"{path} holds other samples; publish with --overwrite to replace them")
    target.mkdir(parents=True, exist_ok=True)
    for path, arrays in samples.items():
        save_arrays(path, arrays)
    old_curves = read_curve(target / "curves.csv") if (target / "curves.csv").is_file() else []
    curves = [r for r in old_curves if _cell(r) not in cells_new] + new_curves
    if curves:
        write_curve(target / "curves.csv", sorted(curves, key=_cell))
    for name, folder in histories.items():
        dest = target / "tuning" / name
        # the journal is the same study as trials.csv (its worker ids differ at each writing): it goes with them
        for file in ("trials.csv", "best.json", *([SEARCH_FILE] if (folder / SEARCH_FILE).is_file() else [])):
            data = (folder / file).read_bytes()
            atomic_write(dest / file, lambda f: f.write(data))
    rows = sorted(kept + new_rows, key=_cell)
    write_rows(target / "results.csv", rows)
    write_summary(target / "summary.csv", rows)
    write_json(record_path, record)
    return tuning_figures(target)


def _cell(row: dict[str, Any]) -> tuple[str, str, int]:
    return row["dataset"], row["method"], row["seed"]


def _fresh_curves(fresh: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every fresh-seed cell's curve (its rows, in the order they were written)."""
    from ..core.results import cell_path, read_curve

    curves = []
    for cell in dict.fromkeys(map(_cell, rows)):
        path = cell_path(fresh, *cell) / "curve.csv"
        if path.is_file():
            curves += read_curve(path)
    return curves


def _fresh_samples(fresh: Path, rows: list[dict[str, Any]], samples_dir: Path, study: Any = None
                   ) -> dict[Path, dict[str, Any]]:
    """The samples to publish, by where they go: per recipe, the lowest fresh seed's held-out
    points; where ``study`` (a ``Study``) publishes a number of points, every seed's, cut to it."""
    from ..core.fileio import load_arrays, read_json_object
    from ..core.results import cell_path, sample_name

    found = {}
    cells = list(dict.fromkeys(map(_cell, rows)))
    lowest: dict[tuple[str, str], int] = {}
    for dataset, method, seed in cells:
        lowest[dataset, method] = min(seed, lowest.get((dataset, method), seed))
    for dataset, method, seed in cells:
        first = seed == lowest[dataset, method]
        run = cell_path(fresh, dataset, method, seed)
        if study is None and not first or not (run / "samples.npz").is_file():  # a diverged run has none
            continue
        config = RunConfig.from_dict(read_json_object(run / "config.json", "run the fresh seeds again"))
        n = None if study is None else study.sample_points(config)
        if n is None:  # the lowest seed's, every held-out point
            if not first:
                continue
            n = config.data.n_test
        found[samples_dir / sample_name(dataset, method, seed)] = {
            k: v[:n] for k, v in load_arrays(run / "samples.npz").items()}
    return found


def _same_arrays(a: dict[str, Any], b: dict[str, Any]) -> bool:
    import numpy as np

    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f") for k in a)


def _comparable(rows: list[dict[str, Any]]) -> list[tuple]:
    """A cell's rows without their timings (which differ between any two runs of it)."""
    return sorted((_cell(r), r["metric"], repr(float(r["value"]))) for r in rows  # repr: NaN equals NaN
                  if r["metric"] not in ("train_seconds", "eval_seconds"))


def curve_every(steps: int, log_every: int, points: int) -> int:
    """``eval_every`` for about ``points`` curve points per phase: a multiple of ``log_every``."""
    return max(log_every, steps // points // log_every * log_every)


class TrialWatcher:
    """The engine's watcher for a batch of trials: each curve point's objective, averaged over a
    trial's seeds once all have reported it, goes to the trial (``trial.report``); the study's
    pruner then says whether the trial stops there."""

    def __init__(self, trials: dict[str, Any], objective: str, seeds: int) -> None:
        self.trials, self.objective, self.seeds = trials, objective, seeds
        self.points: dict[tuple[str, int], list[float]] = {}
        self.prune: dict[str, bool] = {}

    def report(self, config: RunConfig, rows: list[dict[str, Any]], point: int) -> None:
        trial = self.trials.get(config.label)
        if trial is None:
            return
        k = point  # the run's own count: a run gone on from a dead worker's checkpoint keeps its place
        values = self.points.setdefault((config.label, k), [])
        values.append(_objective(rows, config.label, self.objective))
        if len(values) == self.seeds:
            mean = sum(values) / len(values)
            if math.isfinite(mean):
                trial.report(mean, k)
                self.prune[config.label] = trial.should_prune()

    def stopped(self, config: RunConfig) -> bool:
        return self.prune.get(config.label, False)


def _plan_trial(method: str, data: str, preset: str, seeds: list[int], params: dict[str, Any],
                options: dict[str, dict[str, Any]] | None, engine: str, settings: dict[str, Any]) -> list[RunConfig]:
    """A trial's runs: its parameters laid over the preset as a recipe (``tune`` refuses a name
    that is both fixed and searched, so none of ``settings`` or ``options`` hides one)."""
    return plan_compare([method], data, preset, seeds, options, engine=engine, recipes={method: params}, **settings)


def cost_line(name: str, budget: int, per_trial: int, per_run: int, candidates: int, confirm_seeds: int,
              fresh_seeds: int) -> str:
    """What a search will train, in run-steps, before it starts: the budget (trials unpruned), at
    most ``candidates`` trials again on ``confirm_seeds`` seeds, the best and the preset's recipes on
    ``fresh_seeds`` seeds."""
    confirm, fresh = candidates * confirm_seeds * per_run, 2 * fresh_seeds * per_run
    return (f"{name}: {budget:,} run-steps of search ({budget // per_trial} trials of {per_trial:,} unless pruned)"
            + (f", at most {confirm:,} of confirmation" if confirm else "")
            + (f", {fresh:,} on fresh seeds" if fresh else "") + f": at most {budget + confirm + fresh:,} in all")


def run_steps(config: RunConfig) -> int:
    """The run-steps one run of ``config`` trains: its steps per phase x its phases."""
    from ..data import build_dataset
    from ..engine.train import build_strategy

    return config.train.steps * len(build_strategy(config, build_dataset(config.data).x_dim).phases(config.train.steps))


def _objective(rows: list[dict[str, Any]], label: str, objective: str) -> float:
    """The objective's value for one trial: each metric's mean over the trial's seeds, summed; NaN
    where a run diverged or a metric is missing."""
    if any(r["value"] for r in rows if r["method"] == label and r["metric"] == "diverged"):
        return math.nan
    total = 0.0
    for metric in metrics_of(objective):
        values = [r["value"] for r in rows if r["method"] == label and r["metric"] == metric]
        if not values:
            return math.nan
        total += sum(values) / len(values)
    return total


def _plain(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in settings.items() if v is not None}


__all__ = ["TRAIN_SPACE", "TUNING_SEED", "TuneResult", "default_space", "publish_tuning", "run_tuning", "tune"]
