"""Mode coverage and reconstruction on the 2-D mixtures, every strategy, several seeds.

Cells: {grid, ring} x {ali, bigan, latent, posthoc, vae} x seeds. Figures: the ALI paper's layout
for each dataset (seed 0), coverage vs reconstruction per seed, and a table of our mean ± s.e.
beside the published rows. ``latent`` and ``posthoc`` share one GAN per seed, so their G(z) rows
and coverage numbers are that GAN's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.config import RunConfig, describe_schedule, split_label
from ..data import build_dataset, parse_data_spec
from ..core.fileio import read_json_object, write_text
from ..core.results import mean_se_text, read_rows, summary_index
from ..viz.mixture_figure import published_layout
from ..viz.style import method_colour, plt, save_figure
from .base import FIRST_FIVE, STUDIES, Study, as_published
from .published import RESPONSIBILITY_GRID, THREE_SIGMA_GRID

METHODS = ("ali", "bigan", "latent", "posthoc", "vae", "alice")
def paper_layout_figures(folder: Path, rows: list[dict]) -> list[Path]:
    written = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        methods = list(dict.fromkeys(r["method"] for r in rows if r["dataset"] == dataset))
        seed = min(r["seed"] for r in rows if r["dataset"] == dataset)  # the study publishes seed 0's samples
        path = published_layout(folder, dataset, [(m, m) for m in methods], seed, folder / f"comparison-{dataset}.png",
                                f"{dataset}, seed {seed}")
        written += [path] if path else []
    return written


def coverage_vs_reconstruction(folder: Path, rows: list[dict]) -> Path:
    """Per seed: modes captured (3-sigma) against the share of reconstructions on the right mode."""
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.6 * len(datasets), 4.2), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        values: dict[tuple[str, int], dict[str, float]] = {}
        for r in rows:
            if r["dataset"] == dataset:
                values.setdefault((r["method"], r["seed"]), {})[r["metric"]] = r["value"]
        n_modes = build_dataset(parse_data_spec(dataset)).n_modes
        methods = list(dict.fromkeys(m for m, _ in values))
        for i, method in enumerate(methods):
            pts = [(v["recon_same_mode"], v["modes_3sigma"]) for (m, _), v in values.items()
                   if m == method and "modes_3sigma" in v]
            if not pts:
                continue
            xs, ys = np.array(pts).T
            ax.scatter(xs, ys, s=22, alpha=0.6, color=method_colour(method, i), label=f"{method} (n={len(pts)})")
            ax.scatter([xs.mean()], [ys.mean()], s=110, marker="X", color=method_colour(method, i), edgecolor="black", linewidth=0.6)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.5, n_modes + 0.5)
        ax.set_xlabel("reconstruction on the right mode (fraction)")
        ax.set_ylabel(f"modes captured, 3-sigma (of {n_modes})")
        ax.set_title(f"{dataset}: coverage vs reconstruction (X = mean)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = folder / "coverage_vs_reconstruction.png"
    return save_figure(fig, path)


def results_table(folder: Path, rows: list[dict], config_note: str) -> Path:
    """Markdown: our mean ± s.e. per dataset and method, then the published rows."""
    summary = summary_index(rows)
    lines = ["# Mode coverage and reconstruction: ours beside the published numbers", "",
             f"Ours: {config_note}. Mean ± standard error over seeds (n per cell in the last column).",
             "`latent` and `posthoc` share one GAN per seed, so their coverage columns are that GAN's.", ""]
    header = ("| dataset | method | modes 3σ | HQ % | reverse KL | modes (responsibility) | recon MSE | "
              "recon same mode | latent recovery MSE | prior MMD² | diverged | n |")
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        for method in dict.fromkeys(r["method"] for r in rows if r["dataset"] == dataset):
            k = lambda m: (dataset, method, m)  # noqa: E731
            n = summary.get(k("diverged"), {"n": 0})["n"]
            diverged = summary.get(k("diverged"))
            lines.append(
                f"| {dataset} | {method} | {mean_se_text(summary, k('modes_3sigma'), digits=1)} | "
                f"{mean_se_text(summary, k('hq_fraction'), 100, 1)} | {mean_se_text(summary, k('reverse_kl'))} | "
                f"{mean_se_text(summary, k('modes_responsibility'), digits=1)} | {mean_se_text(summary, k('recon_mse'), digits=3)} | "
                f"{mean_se_text(summary, k('recon_same_mode'))} | {mean_se_text(summary, k('latent_recovery_mse'), digits=3)} | "
                f"{mean_se_text(summary, k('prior_mmd'), digits=4)} | "
                f"{0 if diverged is None else round(diverged['mean'] * diverged['n'])} | {n} |")
    lines += ["", "## Published, 25-Gaussian grid, 3-sigma metric (their architectures and schedules)", "",
              "| source | method | modes /25 | HQ % | reverse KL |", "|---|---|---|---|---|"]
    lines += [f"| {src} | {m} | {modes} | {hq} | {kl or '-'} |" for src, m, modes, hq, kl in THREE_SIGMA_GRID]
    lines += ["", "## Published, 25-Gaussian grid, responsibility metric", "",
              "| source | method | modes /25 |", "|---|---|---|"]
    lines += [f"| {src} | {m} | {modes} |" for src, m, modes in RESPONSIBILITY_GRID]
    path = folder / "results_table.md"
    write_text(path, "\n".join(lines) + "\n")
    return path


def figures(folder: Path) -> list[Path]:
    rows = read_rows(folder / "results.csv")
    study = read_json_object(folder / "study.json", "restore it from git or re-publish the study")
    cfg = RunConfig.from_dict(study["example_config"]) if study.get("example_config") else None
    note = "setup unknown"
    if cfg is not None:
        t, a = cfg.train, cfg.arch
        # a constant rate goes unsaid, so captions drawn before schedules existed stay as they were
        schedule = "" if t.lr_schedule == "constant" else f" ({describe_schedule(t)})"
        # a swept rate is in each row's name (ali@lr=0.0003), not the example cell's
        swept_lr = any("lr" in split_label(r["method"])[1] for r in rows)
        rate = "as each row names it" if swept_lr else f"{t.lr:g}"
        note = (f"{a.name} networks enc {list(a.encoder_hidden)}, dec {list(a.decoder_hidden)}, D maxout "
                f"{list(a.discriminator_hidden)}x{a.maxout_pieces}; {t.steps} steps per phase, batch {t.batch_size}, "
                f"Adam lr {rate}{schedule}, betas ({t.beta1:g}, {t.beta2:g}); 2,500 samples (3σ), "
                "10,000 (responsibility)")
    return [*paper_layout_figures(folder, rows), coverage_vs_reconstruction(folder, rows), results_table(folder, rows, note)]


def _mixture_study(name: str, description: str, preset: str) -> Study:
    return Study(name=name, description=description, datasets=("grid", "ring"), methods=METHODS, seeds=5,
                 preset=preset, figures=figures,
                 sample_points=lambda config: None if config.seed != 0 else config.data.n_test)


#: the mixture study as designed at preset study, the template of its published studies
#: (``as_published`` below, ``derived.py``): every strategy, 5 seeds on each dataset
MIXTURE_COVERAGE = _mixture_study("mixture_coverage", "mode coverage + reconstruction on grid and ring", "study")

STUDIES.add("mixture_coverage", as_published(
    MIXTURE_COVERAGE, "mode coverage + reconstruction on grid (5 seeds) and ring (seed 0), the first five "
    "strategies, paper networks at 4,000 steps per phase, single engine", methods=FIRST_FIVE,
    settings={"engine": "single"}, seeds_by_dataset={"ring": 1}))
STUDIES.add("mixture_converged", _mixture_study(
    "mixture_converged", "mixture_coverage trained to convergence (30k steps per phase), with quality-vs-steps curves",
    "converged"))
