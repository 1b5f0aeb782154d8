"""Tidy result tables (read, write, aggregate: mean, standard error, n) and where a run's live.

An output folder of ``izoo compare`` or a study::

    runs/<dataset>/<method>/seed<k>/   one run folder per cell (config.json, checkpoint.pt, results.csv, curve.csv)
    shared/                            phases reused across strategies (the GAN of latent/posthoc)
    results.csv                        every cell's tidy rows
    summary.csv                        mean, standard error and n per (dataset, method, metric)
"""
from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .errors import UserError
from .fileio import write_csv

if TYPE_CHECKING:
    from .config import RunConfig

RESULT_FIELDS = ["study", "dataset", "method", "seed", "metric", "value"]
#: a run's curve.csv (train.eval_every): the same rows at each evaluated step of each phase, with
#: the training wall time so far
CURVE_FIELDS = ["study", "dataset", "method", "seed", "phase", "step", "seconds", "metric", "value"]
SUMMARY_FIELDS = ["dataset", "method", "metric", "mean", "se", "n"]
#: the metrics tables and sweep figures show, in this order (those a run has; bookkeeping left out)
HEADLINE_METRICS = ["modes_3sigma", "hq_fraction", "reverse_kl", "modes_responsibility", "recon_mse",
                    "recon_same_mode", "recon_same_class", "recon_mse_z1", "recon_same_mode_z1",
                    "recon_same_class_z1", "latent_recovery_mse", "prior_mmd", "corr_x_encoding",
                    "recon_mse_mean_code", "corr_x_mean_code",
                    "probe_linear_acc", "probe_1nn_acc", "classifier_error", "supervised_error", "fid", "kid", "precision", "recall", "density", "coverage",
                    "feature_net_acc", "arith_target_prob",
                    "interp_path_ratio", "interp_mid_nn_mse"]
#: which way each headline metric improves; None: neither (a correlation's sign is the map the
#: encoder learned; the interpolation path ratio describes, 1 being a cross-fade)
BETTER: dict[str, str | None] = {
    **dict.fromkeys(["modes_3sigma", "hq_fraction", "modes_responsibility", "recon_same_mode", "recon_same_class",
                     "recon_same_mode_z1", "recon_same_class_z1", "probe_linear_acc", "probe_1nn_acc", "precision",
                     "recall", "density", "coverage", "feature_net_acc", "arith_target_prob"], "higher"),
    **dict.fromkeys(["reverse_kl", "recon_mse", "recon_mse_z1", "latent_recovery_mse", "prior_mmd",
                     "recon_mse_mean_code", "classifier_error", "supervised_error", "fid", "kid",
                     "interp_mid_nn_mse"], "lower"),
    **dict.fromkeys(["corr_x_encoding", "corr_x_mean_code", "interp_path_ratio"], None),
}


#: metrics a stack's seeds share: they train as one model, so each records the stack's wall time
STACK_SHARED = ("train_seconds",)
#: the footnote of a table that shows such a value ("3.37 (shared)") in place of a spread
SHARED_NOTE = "(shared): the seeds trained as one stacked model and share its one wall time (no spread)"


def better(metric: str) -> str | None:
    """"higher", "lower" or None (see ``BETTER``); a label-count probe's error is lower-is-better."""
    return "lower" if metric.startswith("label_probe_error") else BETTER.get(metric)


def read_rows(path: str | Path, fields: list[str] = RESULT_FIELDS) -> list[dict[str, Any]]:
    path = Path(path)
    damaged = f"cannot read {path}: damaged (not a tidy results table); restore it, or re-publish it"
    try:
        text = path.read_bytes().decode("utf-8")
        if text and not text.endswith("\n"):  # izoo ends every table it writes with a newline
            raise UserError(f"cannot read {path}: truncated (no final newline); restore it, or re-publish it")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = list(reader)
        header = reader.fieldnames or []
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error):
        raise UserError(damaged) from None
    if set(fields) - set(header):
        raise UserError(f"{path} is not a tidy results table (columns {', '.join(fields)})")
    try:
        for row in rows:
            if None in row or any(row[k] is None for k in fields):  # a short or long (truncated) line
                raise ValueError
            row["seed"] = int(row["seed"])
            row["value"] = float(row["value"])
            if "step" in row:
                row["step"] = int(row["step"])
                row["seconds"] = float(row["seconds"])
    except (ValueError, TypeError):
        raise UserError(damaged) from None
    return rows


def write_rows(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    write_csv(path, rows, RESULT_FIELDS)


def read_curve(path: str | Path) -> list[dict[str, Any]]:
    return read_rows(path, CURVE_FIELDS)


def write_curve(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    write_csv(path, rows, CURVE_FIELDS)


def aggregate(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean, standard error (sample std / sqrt(n); NaN for n = 1) and n per (dataset, method, metric).

    NaN values (e.g. reverse KL with no high-quality sample) are left out of the mean and of n.
    """
    groups: dict[tuple[str, str, str], list[float]] = {}  # insertion-ordered; NaN-only keys kept
    for row in rows:
        values = groups.setdefault((row["dataset"], row["method"], row["metric"]), [])
        if not math.isnan(float(row["value"])):
            values.append(float(row["value"]))
    out = []
    for key, values in groups.items():
        n = len(values)
        mean = sum(values) / n if n else math.nan
        se = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n) if n > 1 else math.nan
        out.append(dict(zip(SUMMARY_FIELDS, (*key, mean, se, n))))
    return out


def write_summary(path: str | Path, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    summary = aggregate(rows)
    write_csv(path, summary, SUMMARY_FIELDS)
    return summary



def shared_by_stack(rows: Iterable[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """The (dataset, method, metric) keys of ``STACK_SHARED`` metrics whose seeds (two or more)
    all hold one value: seeds trained as one stacked model record the stack's one wall time."""
    values: dict[tuple[str, str, str], list[float]] = {}
    for row in rows:
        if row["metric"] in STACK_SHARED:
            values.setdefault((row["dataset"], row["method"], row["metric"]), []).append(float(row["value"]))
    return {key for key, v in values.items() if len(v) > 1 and len(set(v)) == 1 and not math.isnan(v[0])}


def summary_index(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """``aggregate(rows)`` keyed by (dataset, method, metric); each entry's "shared" says whether
    its seeds share one value (``shared_by_stack``), which tables show without a spread."""
    rows = list(rows)
    shared = shared_by_stack(rows)
    return {(s["dataset"], s["method"], s["metric"]): {**s, "shared": (s["dataset"], s["method"], s["metric"]) in shared}
            for s in aggregate(rows)}


def mean_se_text(summary: dict[tuple[str, str, str], dict[str, Any]], key: tuple[str, str, str],
                 scale: float = 1.0, digits: int = 2) -> str:
    """"mean ± se" of one summary entry for a table ("-" where there is none; no "±" for n = 1;
    "mean (shared)" for a stack's one wall time, ``SHARED_NOTE``)."""
    s = summary.get(key)
    if s is None or s["n"] == 0 or math.isnan(s["mean"]):
        return "-"
    if s.get("shared"):
        return f"{s['mean'] * scale:.{digits}f} (shared)"
    se = "" if math.isnan(s["se"]) else f" ± {s['se'] * scale:.{digits}f}"
    return f"{s['mean'] * scale:.{digits}f}{se}"

# --- where a cell's run folder is ---------------------------------------------------------
def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=@-]+", "_", text)


def sample_name(dataset: str, method: str, seed: int) -> str:
    """A cell's sample arrays in a published folder's ``samples/``."""
    return f"{safe_name(dataset)}__{method}__seed{seed}.npz"


def cell_dir(out: Path, config: RunConfig) -> Path:
    return cell_path(out, config.data.label(), config.label, config.seed)


def cell_path(out: Path, dataset: str, method: str, seed: int) -> Path:
    """A cell's run folder from the names in a tidy row (dataset label, method label, seed)."""
    return out / "runs" / safe_name(dataset) / safe_name(method) / f"seed{seed}"


def output_of(run_dir: Path) -> Path:
    """The output folder a cell's run folder lies in (``cell_path``'s ``out``); for a folder laid
    out otherwise, the folder that holds it."""
    run_dir = Path(run_dir)
    if run_dir.name.startswith("seed") and len(run_dir.parents) > 3 and run_dir.parents[2].name == "runs":
        return run_dir.parents[3]
    return run_dir.parent


def write_tables(out: Path, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = list(rows)
    write_rows(out / "results.csv", rows)
    return write_summary(out / "summary.csv", rows)


def collect_rows(out: Path) -> list[dict[str, Any]]:
    """Every finished cell's rows under ``out/runs`` (what results.csv is rebuilt from)."""
    return [row for path in sorted((out / "runs").glob("*/*/seed*/results.csv")) for row in read_rows(path)]
