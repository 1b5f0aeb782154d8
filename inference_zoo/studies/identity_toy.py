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
from ..viz.style import fit_text, method_colour, plt, save_figure, text_width
from .base import FIRST_FIVE, STUDIES, Study, as_published, load_published_samples

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


#: the maps' key: what each reference line is, and what the counts over each column mean
REFERENCE_LINES = (("z = x: the identity", "black", "--", 0.5), ("z = -x: the sign flip", "grey", ":", 0.5))
COUNTS_KEY = ("Above each column, how many seeds learned each solution: id, the identity; flip, the sign flip; "
              "piecewise, an inverse with folds; none, no inverse (the criterion: identity_table.md).")
KEY_FONT, TITLE_FONT = 8, 10  # points
TICKS = (-4, -2, 0, 2, 4)
# the maps' layout, in inches: panels are placed by hand, so each stays square and apart
LEFT, RIGHT, COLUMN_GAP, ROW_GAP = 0.8, 0.2, 0.25, 0.12  # margins beside the panels, gaps between them
TITLE_LINE, HEADS, TICK_LABELS = 0.2, 0.42, 0.32  # a title line; each pair's column titles; the x tick labels
STRIP_LEFT, STRIP_HEIGHT, LINE_HEIGHT = 0.6, 0.16, 0.16  # the seed strip; a line of the key's text


def seed_colours(seeds: list[int]) -> dict[int, tuple]:
    """Each seed's colour (viridis, lowest to highest seed): one seed has one colour in every panel."""
    cmap = plt.get_cmap("viridis")
    return {seed: cmap(k / max(1, len(seeds) - 1)) for k, seed in enumerate(seeds)}


def _key_layout(width: float, n_seeds: int) -> dict[str, float]:
    """Where the key's parts go, in inches from the figure's foot (and the strip's width): the
    counts text at the bottom, the seed strip at the top, the lines' legend beside the strip where
    it fits, else between the two."""
    strip = min(0.3 * n_seeds, 4.0, width - STRIP_LEFT - 0.3)
    legend = 2 * max(text_width(text, KEY_FONT) for text, *_ in REFERENCE_LINES) + 1.2
    beside = width - (STRIP_LEFT + strip + 0.4) >= legend
    text_height = LINE_HEIGHT * (fit_text(COUNTS_KEY, width, KEY_FONT).count("\n") + 1)
    legend_y = 0.1 + text_height + 0.1
    strip_y = (legend_y if beside else legend_y + 2 * LINE_HEIGHT + 0.15) + 0.25  # under it: the seed numbers
    return {"strip": strip, "beside": beside, "legend_y": strip_y if beside else legend_y, "strip_y": strip_y,
            "height": strip_y + STRIP_HEIGHT + 0.1}


def _maps_key(fig, colours: dict[int, tuple], layout: dict[str, float]) -> None:
    """The key under the panels: the seed colours, the reference lines and what the counts over each
    column mean."""
    width, tall = fig.get_figwidth(), fig.get_figheight()
    seeds = list(colours)
    ax = fig.add_axes((STRIP_LEFT / width, layout["strip_y"] / tall, layout["strip"] / width, STRIP_HEIGHT / tall))
    ax.imshow(np.array([[colours[s] for s in seeds]]), aspect="auto", interpolation="nearest")
    every = -(-len(seeds) // 10)  # at most ten labels
    ax.set_xticks(range(0, len(seeds), every), [str(s) for s in seeds[::every]], fontsize=KEY_FONT - 1)
    ax.set_yticks([])
    ax.tick_params(length=2, pad=1)
    ax.set_ylabel("seed", fontsize=KEY_FONT, rotation=0, ha="right", va="center")
    lines = [plt.Line2D([], [], color=colour, ls=style, lw=2 * lw) for _, colour, style, lw in REFERENCE_LINES]
    left = STRIP_LEFT + layout["strip"] + 0.4 if layout["beside"] else STRIP_LEFT
    fig.legend(lines, [text for text, *_ in REFERENCE_LINES], fontsize=KEY_FONT, frameon=False, borderaxespad=0,
               ncol=2 if layout["beside"] else 1, loc="lower left", bbox_to_anchor=(left / width, layout["legend_y"] / tall))
    fig.text(0.5, 0.1 / tall, fit_text(COUNTS_KEY, width, KEY_FONT), ha="center", va="bottom", fontsize=KEY_FONT)


def maps_figure(folder: Path, rows: list[dict]) -> Path:
    """Methods as columns; a pair of rows (E(x) against x, G(z) against z) per setting of a sweep;
    a key for the seeds' colours, the reference lines and the solution counts under the panels."""
    per_seed = _per_seed(rows)
    methods = list(dict.fromkeys(split_label(label)[0] for label in per_seed))
    variants = list(dict.fromkeys(label.partition(VARIANT_MARK)[2] for label in per_seed))
    colours = seed_colours(sorted({seed for seeds in per_seed.values() for seed in seeds}))
    width = 2.6 * len(methods) + 0.6
    panel = (width - LEFT - RIGHT - COLUMN_GAP * (len(methods) - 1)) / len(methods)
    title = fit_text(f"identity toy: learned maps, all seeds overlaid "
                     f"({len(next(iter(per_seed.values())))} seeds per method)", width, TITLE_FONT)
    title_height = 0.25 + TITLE_LINE * (title.count("\n") + 1)
    pair = HEADS + 2 * panel + ROW_GAP
    key = _key_layout(width, len(colours))
    tall = title_height + pair * len(variants) + TICK_LABELS + key["height"]
    fig = plt.figure(figsize=(width, tall))
    first = None
    for i, variant in enumerate(variants):
        for j, method in enumerate(methods):
            label = method_label(method, variant)
            top, bottom = [fig.add_axes(((LEFT + j * (panel + COLUMN_GAP)) / width,
                                         (tall - title_height - i * pair - HEADS - (k + 1) * panel - k * ROW_GAP) / tall,
                                         panel / width, panel / tall), sharex=first, sharey=first) for k in (0, 1)]
            first = first or top
            if label not in per_seed:
                top.set_visible(False)
                bottom.set_visible(False)
                continue
            for seed in sorted(per_seed[label]):
                s = load_published_samples(folder, "identity", label, seed)
                if s is None:
                    continue
                top.scatter(s["x_test"][:, 0], s["z_encoded"][:, 0], s=0.6, color=colours[seed], alpha=0.5, linewidths=0)
                bottom.scatter(s["z_prior"][:, 0], s["x_generated"][:, 0], s=0.6, color=colours[seed], alpha=0.5,
                               linewidths=0)
            counts = solution_counts(per_seed[label])
            top.set_title(f"{label}\nid {counts['identity']} / flip {counts['flip']} / piecewise "
                          f"{counts['piecewise']} / none {counts['non-invertible']}", fontsize=8)
            for row, ax in enumerate((top, bottom)):
                for (_, colour, style, lw), end in zip(REFERENCE_LINES, (4, -4)):
                    ax.plot([-4, 4], [-end, end], color=colour, lw=lw, ls=style)
                ax.set_xlim(-4, 4)
                ax.set_ylim(-4, 4)
                ax.set_xticks(TICKS)
                ax.set_yticks(TICKS)
                ax.tick_params(labelbottom=row == 1 and i == len(variants) - 1, labelleft=j == 0)
                if j == 0:
                    setting = f"{variant}\n" if variant else ""
                    ax.set_ylabel(f"{setting}{'G(z) against z' if row else 'E(x) against x'}")
    fig.suptitle(title, fontsize=TITLE_FONT, y=1 - 0.12 / tall, va="top")
    _maps_key(fig, colours, key)
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


#: the identity toy as designed, the template of its published studies (``as_published`` below,
#: ``derived.py``): six strategies; 10 seeds at preset study where a study does not say
IDENTITY_TOY = Study(
    name="identity_toy",
    description="1-D x ~ N(0,1), z ~ N(0,1): which map each strategy learns, over many seeds",
    datasets=("identity",),
    methods=METHODS,
    seeds=10,
    preset="study",
    figures=figures,
    sample_points=lambda config: 1000,
)

STUDIES.add("identity_toy", as_published(
    IDENTITY_TOY, "1-D x ~ N(0,1), z ~ N(0,1): which map each strategy learns; 8 seeds of the first five "
    "strategies, preset quick at 2,000 steps per phase, single engine", methods=FIRST_FIVE, seeds=8, preset="quick",
    settings={"steps": 2_000, "engine": "single"}))
