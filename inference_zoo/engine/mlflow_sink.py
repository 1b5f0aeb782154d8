"""``--mlflow URI`` (train.mlflow): each run folder also logged as an MLflow run, through MLflow's
own client (the mlflow-skinny package, an optional extra).

One output folder (``izoo compare --out``, a study's run folder, each tuned method's folder) is one
MLflow experiment, named by the folder's absolute path. Each run folder (dataset, method, seed) is
one MLflow run in it, named "dataset/method/seedN" and tagged with its folder (``izoo.run_folder``),
so a resumed run goes on logging into the run it started. A run holds:

    params      the resolved config, flattened: train.lr, options.generator_loss, seed, ...
    metrics     the training log (train/PHASE/NAME) and the curve points (eval/PHASE/METRIC), each at
                its step within the phase as in metrics.jsonl; then the results rows (modes_3sigma, ...)
    artifacts   the folder's files but its weights and sample arrays: results.csv, config.json,
                env.json, model.json, metrics.jsonl, curve.csv, figures

An MLflow run created for a folder that already holds training (a run started without --mlflow)
first gets what the folder holds; it ends FINISHED, FAILED (diverged) or KILLED (stopped by the
tuner). A tuning trial is a parent run (``open_group``) with its seeds' runs nested. Only the
client is used, never MLflow's active run, so the seeds of a stack log side by side. A failure
once a run trains is a warning: training goes on, and the folder holds everything.
"""
from __future__ import annotations

import functools
import json
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from ..core.config import RunConfig
from ..core.errors import UserError
from ..core.results import output_of, read_curve

INSTALL = "pip install 'inference-zoo[mlflow]'"
#: what a run folder holds that is not an artifact: weights and sample arrays (izoo export and
#: inference_zoo.load_run read those from the folder)
NOT_ARTIFACTS = ("checkpoint.pt", "samples.npz")
#: MLflow's limits on one log_batch call
BATCH_METRICS, BATCH_PARAMS = 1000, 100
#: a param longer than this is cut (MLflow 2.0's limit; config.json, an artifact, holds it whole)
PARAM_CHARS = 500
FOLDER_TAG, GROUP_TAG, PARENT_TAG = "izoo.run_folder", "izoo.group", "mlflow.parentRunId"
#: how a run's rows end its MLflow run
DIVERGED, STOPPED = "diverged", "stopped"


def client_class() -> type:
    """MLflow's ``MlflowClient``; it needs the mlflow-skinny package (an optional extra). MLflow's
    telemetry stays off unless the environment turns it on: nothing goes anywhere but to the URI."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise UserError(f"--mlflow needs the mlflow-skinny package: {INSTALL}") from None
    return MlflowClient


@functools.lru_cache(maxsize=None)
def client(uri: str) -> Any:
    """A client of the tracking store at ``uri``. A ``file:`` store (or a plain path) is allowed:
    MLflow 3 asks for an opt-in to it (MLFLOW_ALLOW_FILE_STORE), and naming it is one."""
    cls = client_class()
    if urlparse(uri).scheme in ("", "file"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        return cls(uri)
    except Exception as exc:  # noqa: BLE001 - MLflow's own errors: an unknown scheme, a missing driver
        raise UserError(f"--mlflow {uri}: {_first_line(exc)}") from None


def check_uri(uri: str) -> None:
    """The package is there and MLflow takes ``uri``: one line if not, before anything trains."""
    client_class()
    client(uri)


def experiment_id(uri: str, folder: Path) -> str:
    """The experiment of an output folder (named by its absolute path), created if new."""
    c, name = client(uri), str(Path(folder).resolve())
    found = c.get_experiment_by_name(name)
    if found is None:
        try:
            return c.create_experiment(name)
        except Exception:  # noqa: BLE001 - another process created it meanwhile
            found = c.get_experiment_by_name(name)
            if found is None:
                raise
    if found.lifecycle_stage == "deleted":
        raise UserError(f"--mlflow {uri}: experiment {name} is deleted; restore it in MLflow, or use another --out")
    return found.experiment_id


def _find(uri: str, experiment: str, tag: str, value: str) -> Any | None:
    """The active run of ``experiment`` whose ``tag`` is ``value``, or None."""
    quote = "'" if "'" not in value else '"'
    if quote in value:  # both quotes: look through the runs here
        return next((r for r in client(uri).search_runs([experiment], max_results=50_000)
                     if r.data.tags.get(tag) == value), None)
    runs = client(uri).search_runs([experiment], filter_string=f"tags.`{tag}` = {quote}{value}{quote}", max_results=1)
    return runs[0] if runs else None


def params_of(config: RunConfig) -> dict[str, str]:
    """The resolved config as MLflow params, flattened by dotted keys (``train.lr``); values as JSON
    but text as itself."""
    flat: dict[str, str] = {}

    def walk(d: dict[str, Any], prefix: str) -> None:
        for key, value in d.items():
            if isinstance(value, dict) and value:
                walk(value, f"{prefix}{key}.")
            else:
                text = value if isinstance(value, str) else json.dumps(value)
                flat[_key(prefix + key)] = text if len(text) <= PARAM_CHARS else text[:PARAM_CHARS - 3] + "..."
    walk(config.saved_dict(), "")
    return flat


def _key(name: str) -> str:
    """A name as MLflow takes it (letters, digits, _ - . / : and spaces)."""
    return re.sub(r"[^\w\-./: ]", "_", name)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


class MlflowRun:
    """One run folder's MLflow run: ``open`` it, ``log`` its records, ``finish`` it."""

    def __init__(self, uri: str, run_id: str, where: Path) -> None:
        self.uri, self.run_id, self.where = uri, run_id, where
        self.broken = False  # a failure stopped its logging (warned once)

    @classmethod
    def open(cls, config: RunConfig, run_dir: Path, *, fresh: bool) -> "MlflowRun":
        """The MLflow run of ``run_dir``: the one it started, going on, or a new one holding what the
        folder holds. ``fresh``: the folder starts over, so a run it started before is deleted."""
        uri, run_dir = config.train.mlflow, Path(run_dir)
        try:
            return cls._open(uri, config, run_dir, fresh)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - the tracking store's errors, before the run trains
            raise UserError(f"--mlflow {uri}: cannot log {run_dir}: {_first_line(exc)}") from None

    @classmethod
    def _open(cls, uri: str, config: RunConfig, run_dir: Path, fresh: bool) -> "MlflowRun":
        c = client(uri)
        experiment = experiment_id(uri, output_of(run_dir))
        found = _find(uri, experiment, FOLDER_TAG, str(run_dir.resolve()))
        if found is not None and not fresh:
            c.update_run(found.info.run_id, status="RUNNING")
            return cls(uri, found.info.run_id, run_dir)
        if found is not None:
            c.delete_run(found.info.run_id)
        tags = {FOLDER_TAG: str(run_dir.resolve()), "izoo.study": config.study, "izoo.dataset": config.data.label(),
                "izoo.method": config.label, "izoo.seed": str(config.seed)}
        parent = _find(uri, experiment, GROUP_TAG, config.label)
        if parent is not None:
            tags[PARENT_TAG] = parent.info.run_id
        run = c.create_run(experiment, tags=tags, run_name=f"{config.data.label()}/{config.label}/seed{config.seed}")
        made = cls(uri, run.info.run_id, run_dir)
        made._params(params_of(config))
        if not fresh:
            made._replay()
        return made

    def log(self, prefix: str, step: int, values: dict[str, Any]) -> None:
        """Metrics ``prefix/name`` at ``step`` (numbers only, as TensorBoard gets them)."""
        self._safely("logging", lambda: self._metrics(_metrics(prefix, step, values)))

    def finish(self, rows: list[dict[str, Any]]) -> None:
        """The results rows as metrics, the folder's files as artifacts, and the run ended."""
        def end() -> None:
            self._metrics(_metrics("", 0, {r["metric"]: r["value"] for r in rows}))
            for path in artifacts(self.where):
                client(self.uri).log_artifact(self.run_id, str(path))
            client(self.uri).set_terminated(self.run_id, status_of(rows))
        self._safely("finishing", end)

    def _params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), BATCH_PARAMS):
            client(self.uri).log_batch(self.run_id, params=items[i:i + BATCH_PARAMS])

    def _metrics(self, metrics: list[Any]) -> None:
        for i in range(0, len(metrics), BATCH_METRICS):
            client(self.uri).log_batch(self.run_id, metrics=metrics[i:i + BATCH_METRICS])

    def _replay(self) -> None:
        """What the folder already holds: its training log and curve points."""
        metrics = []
        log = self.where / "metrics.jsonl"
        for line in log.read_text(errors="replace").splitlines() if log.is_file() else []:
            record = json.loads(line)
            metrics += _metrics(f"train/{record['phase']}", record["step"],
                                {k: v for k, v in record.items() if k not in ("phase", "step")})
        curve = self.where / "curve.csv"
        for row in read_curve(curve) if curve.is_file() else []:
            metrics += _metrics(f"eval/{row['phase']}", row["step"], {row["metric"]: row["value"]})
        self._metrics(metrics)

    def _safely(self, what: str, action: Callable[[], Any]) -> None:
        if self.broken:
            return
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - the tracking store's errors: the folder holds everything
            self.broken = True
            warnings.warn(f"izoo: MLflow logging of {self.where} stopped ({what}: {_first_line(exc)}); the run goes "
                          "on and its folder holds everything", stacklevel=3)


def _metrics(prefix: str, step: int, values: dict[str, Any]) -> list[Any]:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(_key(f"{prefix}/{name}" if prefix else name), float(value), now, int(step))
            for name, value in values.items() if isinstance(value, (int, float)) and not isinstance(value, bool)]


def artifacts(run_dir: Path) -> list[Path]:
    """The files of a run folder logged as artifacts (``NOT_ARTIFACTS`` and hidden files aside)."""
    return sorted(p for p in Path(run_dir).iterdir()
                  if p.is_file() and p.name not in NOT_ARTIFACTS and not p.name.startswith("."))


def status_of(rows: list[dict[str, Any]]) -> str:
    """How a run's rows end its MLflow run: FAILED where it diverged, KILLED where it was stopped."""
    flags = {r["metric"]: r["value"] for r in rows}
    if flags.get(DIVERGED):
        return "FAILED"
    return "KILLED" if flags.get(STOPPED) else "FINISHED"


def finish_run(config: RunConfig, run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """End the MLflow run of a run folder whose results are written: with its rows and files; a
    folder finished without --mlflow gets its run now. A run already ended is left as it is."""
    uri, run_dir = config.train.mlflow, Path(run_dir)
    try:
        experiment = experiment_id(uri, output_of(run_dir))
        found = _find(uri, experiment, FOLDER_TAG, str(run_dir.resolve()))
        if found is not None and found.info.status in ("FINISHED", "FAILED", "KILLED"):
            return
        run = MlflowRun(uri, found.info.run_id, run_dir) if found is not None else \
            MlflowRun.open(config, run_dir, fresh=False)
    except Exception as exc:  # noqa: BLE001 - the tracking store's errors: the folder holds everything
        warnings.warn(f"izoo: MLflow logging of {run_dir} failed ({_first_line(exc)}); its folder holds everything")
        return
    run.finish(rows)


def open_group(uri: str, folder: Path, label: str, params: dict[str, Any]) -> None:
    """The parent run of the runs labelled ``label`` in ``folder``'s experiment (a tuning trial, its
    params the trial's); they nest under it as they start."""
    try:
        experiment = experiment_id(uri, folder)
        if _find(uri, experiment, GROUP_TAG, label) is None:
            run = client(uri).create_run(experiment, tags={GROUP_TAG: label}, run_name=label)
            MlflowRun(uri, run.info.run_id, Path(folder))._params(
                {_key(k): v if isinstance(v, str) else json.dumps(v) for k, v in params.items()})
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - the tracking store's errors, before the trial trains
        raise UserError(f"--mlflow {uri}: cannot log {label}: {_first_line(exc)}") from None


def close_group(uri: str, folder: Path, label: str, metrics: dict[str, float], status: str) -> None:
    """End a parent run (``open_group``) with its metrics (a trial's objective) and ``status``."""
    try:
        found = _find(uri, experiment_id(uri, folder), GROUP_TAG, label)
        if found is None:
            return
        run = MlflowRun(uri, found.info.run_id, Path(folder))
        run._metrics(_metrics("", 0, metrics))
        client(uri).set_terminated(run.run_id, status)
    except Exception as exc:  # noqa: BLE001 - the tracking store's errors: trials.csv holds the trial
        warnings.warn(f"izoo: MLflow logging of {label} failed ({_first_line(exc)}); trials.csv holds the trial")
