"""Inference on images: reconstructions, interpolations and encoder-feature quality per strategy.

Cells: digits (scikit-learn's 8x8, shipped: runs anywhere, offline) x {ali, bigan, latent, posthoc,
vae, cali} x seeds, preset ``digits``. Published: sample, reconstruction and interpolation grids
and conditional ALI's per-class samples (seed 0), per-seed feature-quality and reconstruction
points, and a table of mean ± s.e. beside raw-pixel baselines of the same probes.

The pixel baselines (a linear probe and 1-NN on the 64 raw pixels) are computed once, when the
study is first published, into ``baselines.csv``; later redraws read that file, so every figure
and table is a function of the committed files alone.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..core.fileio import write_csv, write_text
from ..core.results import SHARED_NOTE, mean_se_text, read_rows, summary_index
from ..viz.image_figures import image_figures
from ..viz.style import method_colour, plt, save_figure
from .base import FIRST_FIVE, STUDIES, Study, as_published, load_published_samples

METHODS = ("ali", "bigan", "latent", "posthoc", "vae", "cali", "alice", "hali")
TABLE = (("recon_mse", "recon MSE (pixels)", 4), ("recon_same_class", "recon same class", 3),
         ("probe_linear_acc", "linear probe acc", 3),
         ("probe_1nn_acc", "1-NN acc", 3), ("interp_path_ratio", "interp. path ratio", 2),
         ("interp_mid_nn_mse", "interp. midpoint NN MSE", 4), ("latent_recovery_mse", "latent recovery MSE", 3),
         ("prior_mmd", "prior MMD²", 3), ("kid", "KID (feature net)", 1), ("precision", "precision", 3),
         ("recall", "recall", 3), ("coverage", "coverage", 3), ("arith_target_prob", "arithmetic P(target)", 2),
         ("train_seconds", "train s", 0))


def pixel_baselines(folder: Path, datasets: list[str]) -> list[dict]:
    """Linear-probe and 1-NN accuracy on raw pixels (train split -> test split), cached in baselines.csv."""
    path = folder / "baselines.csv"
    if not path.is_file():
        from ..data import build_dataset, parse_data_spec
        from ..metrics import linear_probe_accuracy, nearest_neighbour_accuracy
        from ..core.seeding import generator

        rows = []
        for dataset in datasets:
            ds = build_dataset(parse_data_spec(dataset))
            xa, ya = ds.sample(10_000, generator(0, "data", "probe"))
            xb, yb = ds.held_out(10_000, generator(0, "data", "test"))
            for metric, fn in (("probe_linear_acc", linear_probe_accuracy), ("probe_1nn_acc", nearest_neighbour_accuracy)):
                rows.append({"dataset": dataset, "features": "raw pixels", "metric": metric,
                             "value": fn(xa.numpy(), ya.numpy(), xb.numpy(), yb.numpy())})
        write_csv(path, rows, ["dataset", "features", "metric", "value"])
    with open(path, newline="") as f:
        return [{**r, "value": float(r["value"])} for r in csv.DictReader(f)]


def results_table(folder: Path, rows: list[dict], baselines: list[dict]) -> Path:
    summary = summary_index(rows)
    note = ("Mean ± standard error over seeds. Probes: fitted on the codes E(x) of the training split, "
            "scored on the held-out split. `cali` (conditional ALI) is given the label, so it has no probe. "
            "Interp. path ratio: pixel path length of G((1-t)E(a) + tE(b)) over the distance between its "
            "ends (1 = cross-fade); midpoint NN MSE: per-pixel MSE from each midpoint to the nearest "
            "training image.")
    measured = {r["metric"] for r in rows}
    table = [column for column in TABLE if column[0] in measured]  # folders published before a metric existed
    if any(s["shared"] for key, s in summary.items() if key[2] in {m for m, _, _ in table}):
        note += f" Train s {SHARED_NOTE}."
    lines = ["# Inference on images: reconstruction, interpolation, encoder features", "", note, ""]
    header = "| dataset | method | n | " + " | ".join(label for _, label, _ in table) + " |"
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        for method in dict.fromkeys(r["method"] for r in rows if r["dataset"] == dataset):
            n = summary.get((dataset, method, "diverged"), {"n": 0})["n"]
            cells = [mean_se_text(summary, (dataset, method, m), digits=d) for m, _, d in table]
            lines.append(f"| {dataset} | {method} | {n} | " + " | ".join(cells) + " |")
        base = {b["metric"]: b["value"] for b in baselines if b["dataset"] == dataset}
        if base:
            cells = [f"{base[m]:.3f}" if m in base else "" for m, _, _ in table]
            lines.append(f"| {dataset} | *raw pixels* | | " + " | ".join(cells) + " |")
    path = folder / "results_table.md"
    write_text(path, "\n".join(lines) + "\n")
    return path


def per_seed_figure(folder: Path, rows: list[dict], baselines: list[dict]) -> Path:
    """One point per seed: feature quality (linear probe, 1-NN) and reconstruction error."""
    metrics = [("probe_linear_acc", "linear probe accuracy"), ("probe_1nn_acc", "1-NN accuracy"),
               ("recon_mse", "reconstruction MSE (log)")]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.4), squeeze=False)
    rng = np.random.default_rng(0)  # fixed jitter: byte-stable figure
    for ax, (metric, label) in zip(axes[0], metrics):
        for i, method in enumerate(methods):
            ys = np.array([r["value"] for r in rows if r["method"] == method and r["metric"] == metric])
            ys = ys[np.isfinite(ys)]
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(ys)), ys, s=16, color=method_colour(method, i), alpha=0.8)
        for b in baselines:
            if b["metric"] == metric:
                ax.axhline(b["value"], color="grey", ls="--", lw=0.8, label="raw pixels")
                ax.legend(fontsize=7, loc="best")
        if metric == "recon_mse":
            ax.set_yscale("log")
        ax.set_xticks(range(len(methods)), methods, rotation=30, fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    path = folder / "features_per_seed.png"
    return save_figure(fig, path)


def figures(folder: Path) -> list[Path]:
    rows = read_rows(folder / "results.csv")
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    baselines = pixel_baselines(folder, datasets)
    written = []
    for dataset in datasets:
        seed = min(r["seed"] for r in rows if r["dataset"] == dataset)
        methods = dict.fromkeys(r["method"] for r in rows if r["dataset"] == dataset)
        columns = [(m, s) for m in methods if (s := load_published_samples(folder, dataset, m, seed)) is not None]
        if columns:
            written += image_figures(columns, folder, dataset, f"{dataset}, seed {seed}")
    return [*written, per_seed_figure(folder, rows, baselines), results_table(folder, rows, baselines)]


#: the digits study as designed, the template of its published studies (``as_published`` below,
#: ``derived.py``): every image strategy, 3 seeds at preset digits
IMAGE_FEATURES = Study(
    name="image_features",
    description="8x8 digits: reconstructions, interpolations, encoder features (linear probe, 1-NN), conditional ALI",
    datasets=("digits",),
    methods=METHODS,
    seeds=3,
    preset="digits",
    figures=figures,
    sample_points=lambda config: None if config.seed != 0 else 1_000_000,  # image arrays are already small
)

STUDIES.add("image_features", as_published(
    IMAGE_FEATURES, IMAGE_FEATURES.description + "; the first five strategies and cali", methods=(*FIRST_FIVE, "cali")))
