"""The identity toy (anchors s.3): x ~ N(0, 1), z ~ N(0, 1), many seeds per strategy.

Any measure-preserving map fools an ideal discriminator, so what each strategy converges to is
itself the result: the identity, the sign flip, a piecewise flip, or no inverse at all (e.g. the
independent coupling that stochastic encoders allow). Each seed is classified from its tidy rows:
invertible when reconstruction MSE < 0.1, and then identity (corr(x, E(x)) >= 0.95), flip
(corr <= -0.95) or piecewise (anything else that still inverts: folds, partial flips);
non-invertible when MSE >= 0.1. Calibration: identity MSE 0, corr +1; flip MSE 0, corr -1;
independent coupling MSE 2, corr 0.

Runs evaluated since the noise-free metrics exist are judged by the encoder's mean map
x -> E[z | x] (32 draws averaged): its correlation with x and the reconstruction MSE through
it (``corr_x_mean_code``, ``recon_mse_mean_code``). One noisy draw of a stochastic encoder
charges ALI for the noise it injects (a perfect inverse plus unit-variance noise has MSE about 1);
the mean map does not. Its own limit: where q(z|x) has two branches (post-hoc's folded maps),
their mean is no code, so such a seed counts as non-invertible. Earlier published runs, which
lack the metrics, keep the one-draw criterion.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ..core.config import VARIANT_MARK, method_label, split_label
from ..core.fileio import write_text
from ..core.results import mean_se_text, read_rows, summary_index
from ..viz.style import method_colour, plt, save_figure
from .base import STUDIES, Study, load_published_samples

METHODS = ("ali", "bigan", "latent", "posthoc", "vae", "alice")
CORR_THRESHOLD = 0.95
MSE_THRESHOLD = 0.1


SOLUTIONS = ("identity", "flip", "piecewise", "non-invertible")


def classify(corr: float, mse: float) -> str:
    if not mse < MSE_THRESHOLD:  # NaN counts as non-invertible too
        return "non-invertible"
    if corr >= CORR_THRESHOLD:
        return "identity"
    if corr <= -CORR_THRESHOLD:
        return "flip"
    return "piecewise"


def criterion(metrics: dict[str, float]) -> tuple[str, str]:
    """(correlation metric, reconstruction metric) a seed is judged by: the mean map's where the
    run has them, else one encoder draw's."""
    if "recon_mse_mean_code" in metrics:
        return "corr_x_mean_code", "recon_mse_mean_code"
    return "corr_x_encoding", "recon_mse"


def solution_counts(per_seed_metrics: dict[int, dict[str, float]]) -> Counter:
    """How many seeds found each solution (``criterion``)."""
    counts = Counter()
    for v in per_seed_metrics.values():
        corr, mse = criterion(v)
        counts[classify(v.get(corr, np.nan), v.get(mse, np.nan))] += 1
    return counts


def _per_seed(rows: list[dict]) -> dict[str, dict[int, dict[str, float]]]:
    out: dict[str, dict[int, dict[str, float]]] = {}
    for r in rows:
        out.setdefault(r["method"], {}).setdefault(r["seed"], {})[r["metric"]] = r["value"]
    return out


def maps_figure(folder: Path, rows: list[dict]) -> Path:
    """Methods as columns; a pair of rows (E(x) against x, G(z) against z) per setting of a sweep."""
    per_seed = _per_seed(rows)
    methods = list(dict.fromkeys(split_label(label)[0] for label in per_seed))
    variants = list(dict.fromkeys(label.partition(VARIANT_MARK)[2] for label in per_seed))
    fig, axes = plt.subplots(2 * len(variants), len(methods), figsize=(2.6 * len(methods) + 0.6, 5.4 * len(variants)),
                             squeeze=False, sharex=True, sharey=True)
    cmap = plt.get_cmap("viridis")
    for i, variant in enumerate(variants):
        for j, method in enumerate(methods):
            label, top, bottom = method_label(method, variant), axes[2 * i, j], axes[2 * i + 1, j]
            if label not in per_seed:
                top.set_visible(False)
                bottom.set_visible(False)
                continue
            seeds = sorted(per_seed[label])
            for k, seed in enumerate(seeds):
                s = load_published_samples(folder, "identity", label, seed)
                if s is None:
                    continue
                colour = cmap(k / max(1, len(seeds) - 1))
                top.scatter(s["x_test"][:, 0], s["z_encoded"][:, 0], s=0.6, color=colour, alpha=0.5, linewidths=0)
                bottom.scatter(s["z_prior"][:, 0], s["x_generated"][:, 0], s=0.6, color=colour, alpha=0.5, linewidths=0)
            counts = solution_counts(per_seed[label])
            top.set_title(f"{label}\nid {counts['identity']} / flip {counts['flip']} / piecewise "
                          f"{counts['piecewise']} / none {counts['non-invertible']}", fontsize=8)
            for ax in (top, bottom):
                ax.plot([-4, 4], [-4, 4], color="black", lw=0.5, ls="--")
                ax.plot([-4, 4], [4, -4], color="grey", lw=0.5, ls=":")
                ax.set_xlim(-4, 4)
                ax.set_ylim(-4, 4)
                ax.set_aspect("equal")
    for i, variant in enumerate(variants):
        setting = f"{variant}\n" if variant else ""
        axes[2 * i, 0].set_ylabel(f"{setting}E(x) against x")
        axes[2 * i + 1, 0].set_ylabel(f"{setting}G(z) against z")
    fig.suptitle(f"identity toy: learned maps, all seeds overlaid ({len(next(iter(per_seed.values())))} seeds per method)", fontsize=10)
    if len(variants) > 1:  # leave the title its own strip; one setting keeps the published layout
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))
    else:
        fig.tight_layout()
    path = folder / "identity_maps.png"
    return save_figure(fig, path)


def distributions_figure(folder: Path, rows: list[dict]) -> Path:
    per_seed = _per_seed(rows)
    methods = list(per_seed)
    metrics = [("recon_mse", "reconstruction MSE (0 invertible, 2 independent)"),
               ("corr_x_encoding", "corr(x, E(x)) (+1 identity, -1 flip)"),
               ("prior_ks", "KS of E(x) vs N(0,1)"), ("sample_ks", "KS of G(z) vs N(0,1)")]
    if any("recon_mse_mean_code" in v for seeds in per_seed.values() for v in seeds.values()):
        metrics[:2] = [("recon_mse_mean_code", "recon. MSE through the mean map E[z|x]"),
                       ("abs_corr_x_mean_code", "|corr(x, E[z|x])| (1: invertible map)")]
        for seeds in per_seed.values():
            for v in seeds.values():
                if "corr_x_mean_code" in v:
                    v["abs_corr_x_mean_code"] = abs(v["corr_x_mean_code"])
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics), 3.4), squeeze=False)
    rng = np.random.default_rng(0)  # fixed jitter: byte-stable figure
    for ax, (metric, label) in zip(axes[0], metrics):
        for i, method in enumerate(methods):
            ys = np.array([v[metric] for v in per_seed[method].values() if metric in v])
            xs = i + rng.uniform(-0.15, 0.15, size=len(ys))
            ax.scatter(xs, ys, s=14, color=method_colour(method, i), alpha=0.8)
        ax.set_xticks(range(len(methods)), methods, rotation=30, fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    path = folder / "identity_distributions.png"
    return save_figure(fig, path)


#: (column header, metric, digits) of the table, by criterion; "abs_" metrics are |value|
ONE_DRAW_COLUMNS = [("recon MSE", "recon_mse", 3), ("corr(x, E(x))", "corr_x_encoding", 2),
                    ("KS E(x)", "prior_ks", 3), ("KS G(z)", "sample_ks", 3)]
MEAN_MAP_COLUMNS = [("recon MSE, mean map", "recon_mse_mean_code", 3), ("|corr(x, E[z|x])|", "abs_corr_x_mean_code", 2),
                    ("recon MSE, one draw", "recon_mse", 3), ("|corr(x, E(x))|, one draw", "abs_corr_x_encoding", 2),
                    ("KS G(z)", "sample_ks", 3)]
ONE_DRAW_TEXT = (f"Classification per seed: invertible when recon MSE < {MSE_THRESHOLD}, then identity "
                 f"(corr(x, E(x)) >= {CORR_THRESHOLD}), flip (corr <= -{CORR_THRESHOLD}) or piecewise (inverts, "
                 "but folded); non-invertible when MSE >= 0.1. Mean ± s.e. over seeds.")
MEAN_MAP_TEXT = ("Judged by the encoder's mean map E[z|x] (32 encoder draws averaged), so a stochastic encoder "
                 f"is not charged for its noise: invertible when the reconstruction MSE through it is < {MSE_THRESHOLD}, "
                 f"then identity (corr(x, E[z|x]) >= {CORR_THRESHOLD}), flip (<= -{CORR_THRESHOLD}) or piecewise; "
                 "non-invertible otherwise. |corr| and MSE: mean ± s.e. over seeds; the one-draw columns are what "
                 "an earlier criterion judged by.")


def table(folder: Path, rows: list[dict]) -> Path:
    per_seed = _per_seed(rows)
    mean_map = any("recon_mse_mean_code" in v for seeds in per_seed.values() for v in seeds.values())
    columns, text = (MEAN_MAP_COLUMNS, MEAN_MAP_TEXT) if mean_map else (ONE_DRAW_COLUMNS, ONE_DRAW_TEXT)
    absolute = [{**r, "metric": "abs_" + r["metric"], "value": abs(r["value"])} for r in rows
                if r["metric"] in ("corr_x_mean_code", "corr_x_encoding")]
    summary = summary_index(rows + absolute)
    lines = ["# Identity toy: which solution each strategy finds", "", text, "",
             "| method | seeds | identity | flip | piecewise | non-invertible | "
             + " | ".join(header for header, _, _ in columns) + " |",
             "|---" * (6 + len(columns)) + "|"]
    for method, seeds in per_seed.items():
        counts = solution_counts(seeds)
        cells = [mean_se_text(summary, ("identity", method, metric), digits=digits) for _, metric, digits in columns]
        lines.append(f"| {method} | {len(seeds)} | {counts['identity']} | {counts['flip']} | {counts['piecewise']} | "
                     f"{counts['non-invertible']} | " + " | ".join(cells) + " |")
    path = folder / "identity_table.md"
    write_text(path, "\n".join(lines) + "\n")
    return path


def figures(folder: Path) -> list[Path]:
    rows = [r for r in read_rows(folder / "results.csv") if r["dataset"] == "identity"]
    return [maps_figure(folder, rows), distributions_figure(folder, rows), table(folder, rows)]


STUDIES.add("identity_toy", Study(
    name="identity_toy",
    description="1-D x ~ N(0,1), z ~ N(0,1): which map each strategy learns, over many seeds",
    datasets=("identity",),
    methods=METHODS,
    seeds=10,
    preset="study",
    figures=figures,
    sample_points=lambda config: 1000,
))
