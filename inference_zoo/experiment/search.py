"""A search of ``izoo tune`` as an Optuna study: where it is kept, who trains which trial, what it has spent.

The study lives in a storage (a database URL: SQLite on one machine, a server for many) and, after
every batch, in a journal file beside the search (``SEARCH_FILE``), the text form that goes with a
search to another machine or into a published folder. Here: opening the study, the journal
(``save_search``, ``load_search``), the workers (``worker_id``; a dead worker's trials queued again,
``requeue_orphans``), the budget in run-steps (``budget_used``), the preset's recipe as the first
trial, and what a search reports (``write_history``, ``throughput``, ``importances``). What is
searched and how trials train: ``tune.py``.
"""
from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any, Callable

from ..core.config import RunConfig
from ..core.errors import UserError
from ..core.fileio import write_csv


#: each search's study as an Optuna journal, in its METHOD@DATA folder (``save_search``)
SEARCH_FILE = "search.journal"


def load_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise UserError("izoo tune runs on Optuna: pip install 'inference-zoo[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def importances(optuna: Any, study: Any) -> dict[str, float]:
    """How much of the objective's variance over the completed trials each parameter explains
    (Optuna's fANOVA, seeded); empty where too few trials finished to tell."""
    try:
        found = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}
    return {name: round(float(value), 4) for name, value in found.items()}


def worker_id() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def not_counted(study: Any, number: int) -> None:
    study.set_user_attr("not_counted", sorted({*study.user_attrs.get("not_counted", []), number}))


def budget_used(study: Any, per_trial: int) -> int:
    """Run-steps spent or promised: each trial's trained run-steps once told (a pruned trial's are
    fewer), ``per_trial`` while it runs. Trials waiting in the queue (the preset's recipe, a dead
    worker's parameters queued again) count once asked, not before: counted while they wait, a dead
    worker's last batch would use up the budget it never trained. Killed trials and trials asked
    over the budget aside."""
    skip = set(study.user_attrs.get("not_counted", []))
    return sum(int(t.user_attrs.get("run_steps", per_trial)) for t in study.get_trials(deepcopy=False)
               if t.number not in skip and t.state.name != "WAITING")


def enqueue_preset_recipe(study: Any, config: RunConfig, space: dict[str, tuple]) -> None:
    """A new study's first trial is the preset's own recipe (its values of the searched names that
    lie in the space), so the history shows what the search gained over it."""
    if study.trials or study.user_attrs.get("preset_enqueued"):
        return
    study.set_user_attr("preset_enqueued", True)
    values = {**dataclasses.asdict(config.train), **config.options}
    params = {}
    for name, spec in space.items():
        value = values.get(name)
        if value is None:
            continue
        if spec[0] == "choice" and value in list(spec[1]) or spec[0] != "choice" and spec[1] <= value <= spec[2]:
            params[name] = value
    study.enqueue_trial(params, user_attrs={"preset_recipe": True})


def drop_second_preset_recipe(optuna: Any, study: Any, asked: list[Any]) -> list[Any]:
    """Workers started together on a new study may each queue the preset's recipe; the lowest
    numbered copy runs and a later copy, when asked, fails without counting against the budget."""
    def first_copy(t: Any) -> bool:
        return bool(t.user_attrs.get("preset_recipe")) and "requeued_from" not in t.user_attrs

    copies = [t.number for t in study.get_trials(deepcopy=False) if first_copy(t)]
    kept = []
    for trial in asked:
        if first_copy(trial) and trial.number != min(copies):
            not_counted(study, trial.number)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            kept.append(trial)
    return kept


def requeue_orphans(optuna: Any, study: Any, log: Callable[[str], Any], everyone: bool = False) -> None:
    """A running trial whose worker died on this machine (its process is gone) fails, and its
    parameters are queued again, so the next ask trains them, in the dead trial's run folders from
    their last checkpoints (``runs_in``); it does not count against the budget. Workers on other
    machines cannot be seen from here: their trials wait. ``everyone``: every running trial is an
    orphan (the study was read from a copy: whatever ran it is not running it here)."""
    import socket

    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        owner, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if not everyone and (owner != host or not pid.isdigit() or _alive(int(pid))):
            continue
        not_counted(study, trial.number)
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        marks = {k: v for k, v in trial.user_attrs.items() if k == "preset_recipe"}
        study.enqueue_trial(trial.params, user_attrs={"requeued_from": trial.number, "runs_in": runs_in(trial), **marks})
        worker = trial.user_attrs.get("worker", "unknown")
        log(f"{study.study_name}: trial {trial.number}'s worker ({worker}) is gone; its parameters are queued again")


def save_search(optuna: Any, url: str, name: str, path: Path) -> None:
    """Write study ``name`` as an Optuna journal (text, one operation per line) to ``path``,
    replacing it whole: what a search goes on from on another machine or after its storage is
    lost (``load_search``)."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, draft = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".partial")  # one per worker
    os.close(fd)
    try:
        optuna.copy_study(from_study_name=name, from_storage=url, to_storage=journal_storage(optuna, Path(draft)))
        os.chmod(draft, 0o644)  # mkstemp's file is the owner's alone; the journal is read like the rest
        os.replace(draft, path)
    finally:
        Path(draft).unlink(missing_ok=True)


def journal_storage(optuna: Any, path: Path) -> Any:
    """The Optuna storage of the journal file ``path`` (``optuna.load_study(..., storage=it)`` reads a search)."""
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def load_search(optuna: Any, url: str, name: str, path: Path) -> bool:
    """Where the storage has no study ``name`` and ``path`` holds its journal (``save_search``),
    copy the study from it (trial numbers, states, values, curves and queued trials kept) and
    return True. A damaged journal is one line."""
    if not path.is_file():
        return False
    try:
        if name in optuna.get_all_study_names(url):
            return False
    except Exception:  # noqa: BLE001 - a new or bad storage: _study opens it and names what is wrong
        pass
    try:
        optuna.copy_study(from_study_name=name, from_storage=journal_storage(optuna, path), to_storage=url)
    except optuna.exceptions.DuplicatedStudyError:  # a worker started beside this one copied it first
        return False
    except Exception as exc:  # noqa: BLE001 - optuna raises many kinds for a damaged journal
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot read the search {name} from {path}: {first}; restore the file or delete it "
                        "to search again") from None
    return True


def runs_in(trial: Any) -> int:
    """The trial number whose run folders (``METHOD@trial=N``) a trial trains in: its own, or, for
    parameters queued again after their worker died, the first such trial's, so the runs go on
    from that worker's last checkpoints instead of starting again."""
    return int(trial.user_attrs.get("runs_in", trial.number))


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: Optuna's pruners by name: each stops a trial whose curve falls behind the trials before it
PRUNERS = ("none", "median", "halving")


def _pruner(optuna: Any, name: str, batch: int) -> Any:
    if name == "median":  # behind the median of earlier trials at the same curve point; never the first batch
        return optuna.pruners.MedianPruner(n_startup_trials=batch, n_warmup_steps=0)
    if name == "halving":  # asynchronous successive halving: a third goes on at each rung
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def open_study(optuna: Any, url: str, name: str, direction: str, pruner: str = "none", batch: int = 4,
           tries: int = 5) -> Any:
    import time

    for attempt in range(tries):
        try:
            return optuna.create_study(study_name=name, storage=url, direction=direction, load_if_exists=True,
                                       sampler=optuna.samplers.TPESampler(seed=0),
                                       pruner=_pruner(optuna, pruner, batch))
        except Exception as exc:  # noqa: BLE001 - sqlalchemy and optuna raise many kinds for a bad storage
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            racing = ("already exists", "UNIQUE constraint failed", "database is locked")
            if any(r in first for r in racing) and attempt + 1 < tries:  # two workers created the tables at once
                time.sleep(0.5 * (attempt + 1))
                continue
            raise UserError(f"cannot open the tuning storage {url}: {first}") from None


def write_history(study: Any, path: Path) -> None:
    """Every trial of the study as tidy rows: trial, state, value, the run-steps it trained, its
    start and end (UTC, ISO), then one column per parameter."""
    names = sorted({p for t in study.trials for p in t.params})
    rows = [{"trial": t.number, "state": t.state.name, "value": "" if t.value is None else repr(float(t.value)),
             "run_steps": t.user_attrs.get("run_steps", ""), "start": _iso(t.datetime_start),
             "end": _iso(t.datetime_complete), **t.params} for t in study.trials]
    write_csv(path, rows, ["trial", "state", "value", "run_steps", "start", "end", *names])


def _utc(when: Any) -> Any:
    """Optuna's storages give naive (local) or aware times: both as aware UTC."""
    from datetime import timezone

    return when.astimezone(timezone.utc)


def _iso(when: Any) -> str:
    return "" if when is None else _utc(when).replace(tzinfo=None).isoformat(timespec="seconds")


def throughput(study: Any) -> dict[str, float]:
    """The search's wall time (while at least one finished trial ran, every worker counted once:
    pauses between calls, e.g. a search carried to another machine, left out) and the finished
    trials (completed or pruned) per hour of it."""
    finished = [t for t in study.trials if t.datetime_complete is not None and t.state.name in ("COMPLETE", "PRUNED")]
    if not finished:
        return {}
    wall, end = 0.0, None
    for start, stop in sorted((_utc(t.datetime_start), _utc(t.datetime_complete)) for t in finished):
        if end is None or start > end:
            wall, end = wall + (stop - start).total_seconds(), stop
        elif stop > end:
            wall, end = wall + (stop - end).total_seconds(), stop
    return {"wall_seconds": round(wall, 1), "trials_per_hour": round(len(finished) * 3600 / wall, 2) if wall else 0.0}


def read_history(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


__all__ = ["PRUNERS", "SEARCH_FILE", "budget_used", "drop_second_preset_recipe", "enqueue_preset_recipe",
           "importances", "journal_storage", "load_optuna", "load_search", "not_counted", "open_study", "read_history",
           "requeue_orphans", "runs_in", "save_search", "throughput", "worker_id", "write_history"]
