"""Semi-supervised learning with ALI's K+1-class discriminator, against the number of labels.

Cells: digits (scikit-learn's 8x8, offline) x {ssali at 20, 50, 100 and 200 labels, ali, bigan,
vae} x seeds, preset ``digits``. Each seed fixes one class-balanced labelled subset per size
(``data.labelled_subset``), shared by every method. Published: held-out test error against the
number of labels, mean ± s.e. over seeds, for
- semi-supervised ALI's classifier, argmax over the K class logits of D(x, E(x));
- a network of the same size as its discriminator trained on the labelled pixels alone;
- a linear probe on each unsupervised encoder's codes, fitted on the same labelled examples;
and a table beside the ALI paper's semi-supervised results (SVHN, CIFAR-10), which are on other
datasets and label counts (anchors section 1): the comparison is of shape, not of numbers.
"""
from __future__ import annotations

import math
from pathlib import Path

from ..core.fileio import write_text
from ..core.results import mean_se_text, read_rows, summary_index
from ..viz.style import method_colour, plt, save_figure
from .base import STUDIES, Study

LABEL_COUNTS = (20, 50, 100, 200)
UNSUPERVISED = ("ali", "bigan", "vae")
PUBLISHED = ("| SVHN, 1,000 labels | ALI (K+1 D) | 7.42 ± 0.65 % |",
             "| SVHN, 1,000 labels | ALI features + L2-SVM | 19.14 % |",
             "| CIFAR-10, 1,000 to 8,000 labels | ALI (K+1 D) | 19.98 % to 17.05 % |")


def error_rows(rows: list[dict]) -> list[dict]:
    """Tidy rows of test error, one per (classifier, labels, seed): the classifier as ``method``,
    the label count as ``metric``, so ``summary_index`` gives each point's mean, s.e. and n."""
    out = []
    for r in rows:
        method, metric = r["method"], r["metric"]
        if method.startswith("ssali@labels=") and metric in ("classifier_error", "supervised_error"):
            name = "ssali (K+1 D)" if metric == "classifier_error" else "supervised, pixels only"
            labels = int(method.split("=")[-1])
        elif metric.startswith("label_probe_error_"):
            name, labels = f"{method} codes + linear probe", int(metric.rsplit("_", 1)[1])
        else:
            continue
        out.append({"dataset": r["dataset"], "method": name, "metric": str(labels), "seed": r["seed"],
                    "value": float(r["value"])})
    return out


def figures(folder: Path) -> list[Path]:
    summary = summary_index(error_rows(read_rows(folder / "results.csv")))
    series: dict[str, dict[int, dict]] = {}
    for (_, name, labels), s in summary.items():
        series.setdefault(name, {})[int(labels)] = s
    counts = sorted({n for points in series.values() for n in points})
    dataset = next(iter(summary))[0]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (name, points) in enumerate(sorted(series.items())):
        xs = sorted(points)
        colour = "k" if name.startswith("supervised") else method_colour(name.split()[0], i)
        ax.errorbar(xs, [100 * points[x]["mean"] for x in xs],
                    yerr=[100 * (0 if math.isnan(points[x]["se"]) else points[x]["se"]) for x in xs],
                    marker="o", ms=4, capsize=3, lw=1.4, color=colour, ls="--" if "probe" in name else "-",
                    label=f"{name} (n={min(p['n'] for p in points.values())})")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(counts, [str(n) for n in counts])
    ax.set_xlabel("labelled training examples (balanced over the 10 classes)")
    ax.set_ylabel("held-out test error (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"{dataset}: test error against labels (mean ± s.e. over seeds)", fontsize=10)
    fig.tight_layout()
    written = [save_figure(fig, folder / "error_vs_labels.png")]
    lines = [f"# Semi-supervised learning on {dataset}: test error (%) against labelled examples", "",
             "Mean ± standard error over seeds; every method of a seed uses the same labelled examples.", "",
             "| classifier | " + " | ".join(f"{n} labels" for n in counts) + " |",
             "|---|" + "---|" * len(counts)]
    for name in sorted(series):
        cells = [mean_se_text(summary, (dataset, name, str(n)), scale=100, digits=1) for n in counts]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "The ALI paper's semi-supervised results, on other data (32x32 colour images, thousands of labels):",
              "", "| data | classifier | test error |", "|---|---|---|", *PUBLISHED, ""]
    path = folder / "results_table.md"
    write_text(path, "\n".join(lines) + "\n")
    return [*written, path]


STUDIES.add("semi_supervised", Study(
    name="semi_supervised",
    description="digits: semi-supervised ALI's test error against labels, beside probes on unsupervised codes "
                "and a supervised network on the same labels",
    datasets=("digits",),
    methods=("ssali", *UNSUPERVISED),
    seeds=3,
    preset="digits",
    figures=figures,
    options={"ssali": {"labels": list(LABEL_COUNTS)}},
    evaluation={"label_counts": LABEL_COUNTS},
))
