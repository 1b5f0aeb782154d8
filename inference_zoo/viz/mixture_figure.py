"""The ALI paper's Gaussian-mixture comparison figure, built from stored samples.

Columns are inference methods, rows are (1) test examples x, (2) latent codes
E(x), (3) reconstructions G(E(x)), (4) prior samples z and (5) generator samples
G(z).  2-D cells are scatter plots coloured by mixture component; 1-D cells are
histograms with the N(0, 1) density overlaid.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..core.errors import UserError
from ..core.fileio import load_arrays
from .style import fit_text, mode_colours, plt, save_figure

SAMPLE_KEYS = (
    "x_test",
    "x_test_label",
    "z_encoded",
    "x_reconstructed",
    "z_prior",
    "x_generated",
    "x_generated_label",
)

# (row label, array key, label key, space) for the five rows of the grid.
ROWS = (
    ("test x", "x_test", "x_test_label", "x"),
    ("E(x)", "z_encoded", "x_test_label", "z"),
    ("G(E(x))", "x_reconstructed", "x_test_label", "x"),
    ("prior z", "z_prior", "x_generated_label", "z"),
    ("G(z)", "x_generated", "x_generated_label", "x"),
)

HIST_BINS = 60
MARKER_SIZE = 1.5
KEY_FONT = 9  # points
#: the figure's key: what the colours of 2-D panels and the histograms of 1-D panels show
COLOUR_KEY = ("Colour: a mixture component, as placed in the test x row; test x, E(x) and G(E(x)) take their test "
              "point's component, prior z and G(z) the component most likely to have drawn G(z).")
HISTOGRAM_KEY = "Histograms: the points' density; black line: the N(0, 1) density."


def load_samples(path) -> dict[str, np.ndarray]:
    """Load a run's ``samples.npz``; raise ValueError if any SAMPLE_KEYS is missing."""
    samples = load_arrays(path)
    missing = [key for key in SAMPLE_KEYS if key not in samples]
    if missing:
        raise UserError(f"{os.fspath(path)} is missing sample arrays: {', '.join(missing)}; run that cell again")
    return samples


def _checked_column(name: str, samples: dict) -> dict[str, np.ndarray]:
    """Return the column's arrays as 2-D points / 1-D labels, checking shapes."""
    missing = [key for key in SAMPLE_KEYS if key not in samples]
    if missing:
        raise ValueError(f"column {name!r} is missing sample arrays: {', '.join(missing)}")
    arrays = {}
    for key in SAMPLE_KEYS:
        value = np.asarray(samples[key])
        if key.endswith("_label"):
            if value.ndim != 1:
                raise ValueError(f"column {name!r}: {key} must be 1-D, got shape {value.shape}")
            value = value.astype(np.int64)
        else:
            if value.ndim == 1:
                value = value[:, None]
            if value.ndim != 2 or value.shape[1] < 1:
                raise ValueError(f"column {name!r}: {key} must have shape [n, d], got {value.shape}")
            value = value[:, :2]  # latent spaces wider than 2: draw the first two coordinates
        arrays[key] = value

    def check(cond: bool, what: str) -> None:
        if not cond:
            raise ValueError(f"column {name!r}: inconsistent dims: {what}")

    d, dz = arrays["x_test"].shape[1], arrays["z_encoded"].shape[1]
    n, m = len(arrays["x_test"]), len(arrays["z_prior"])
    check(arrays["x_reconstructed"].shape[1] == d, "x_reconstructed vs x_test")
    check(arrays["x_generated"].shape[1] == d, "x_generated vs x_test")
    check(arrays["z_prior"].shape[1] == dz, "z_prior vs z_encoded")
    for key in ("x_test_label", "z_encoded", "x_reconstructed"):
        check(len(arrays[key]) == n, f"len({key}) != len(x_test)")
    for key in ("x_generated", "x_generated_label"):
        check(len(arrays[key]) == m, f"len({key}) != len(z_prior)")
    return arrays


def _scatter(ax, points: np.ndarray, labels: np.ndarray, n_modes: int, lim: float) -> None:
    ax.scatter(
        points[:, 0],
        points[:, 1],
        s=MARKER_SIZE,
        c=mode_colours(labels, n_modes),
        linewidths=0,
        edgecolors="none",
    )
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")


def _histogram(ax, values: np.ndarray, lim: float) -> None:
    bins = np.linspace(-lim, lim, HIST_BINS + 1)
    counts, _ = np.histogram(values, bins=bins)
    density = counts / max(counts.sum(), 1) / np.diff(bins)
    ax.stairs(density, bins, fill=True, color="tab:blue", alpha=0.6)
    grid = np.linspace(-lim, lim, 400)
    ax.plot(grid, np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi), color="black", linewidth=0.8)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(bottom=0)
    ax.set_box_aspect(1)


def plot_mixture_comparison(
    columns,
    path,
    *,
    n_modes: int | None = None,
    x_lim: float = 6.0,
    z_lim: float = 4.0,
    title: str | None = None,
) -> Path:
    """Plot the 5 x len(columns) comparison grid to ``path``; return the path written.

    ``columns`` is a list of ``(method_name, samples_dict)`` with the arrays
    named in SAMPLE_KEYS.  All columns must share the data dimension (1 or 2);
    each column's latent dimension (1 or 2) is its own (hierarchical ALI's top
    level is smaller).  ``n_modes`` defaults to max label + 1.
    """
    columns = list(columns)
    if not columns:
        raise ValueError("plot_mixture_comparison needs at least one column")
    checked = [(name, _checked_column(name, samples)) for name, samples in columns]

    dims = {arrays["x_test"].shape[1] for _, arrays in checked}
    if len(dims) != 1:
        raise ValueError(f"inconsistent data dims across columns: {sorted(dims)}")

    max_label = max(
        int(arrays[key].max(initial=0))
        for _, arrays in checked
        for key in ("x_test_label", "x_generated_label")
    )
    if n_modes is None:
        n_modes = max_label + 1
    elif max_label >= n_modes:
        raise ValueError(f"labels go up to {max_label} but n_modes={n_modes}")

    n_cols = len(checked)
    fig, axes = plt.subplots(
        len(ROWS), n_cols, figsize=(2.2 * n_cols + 0.8, 2.2 * len(ROWS)),
        squeeze=False,
        layout="constrained",
    )
    for col, (name, arrays) in enumerate(checked):
        axes[0, col].set_title(name, fontsize=11)
        for row, (row_label, key, label_key, space) in enumerate(ROWS):
            ax = axes[row, col]
            lim = x_lim if space == "x" else z_lim
            points = arrays[key]
            if points.shape[1] == 2:
                _scatter(ax, points, arrays[label_key], n_modes, lim)
                ax.set_xticks([-lim, 0, lim])
                ax.set_yticks([-lim, 0, lim])
            else:
                _histogram(ax, points[:, 0], lim)
                ax.set_xticks([-lim, 0, lim])
            ax.tick_params(labelsize=7, length=2, pad=1)
            if col == 0:
                ax.set_ylabel(row_label, fontsize=11)
            elif points.shape[1] == 2:
                ax.tick_params(labelleft=False)

    if title:
        fig.suptitle(fit_text(title, fig.get_figwidth(), 12), fontsize=12)
    key = [text for text, shown in ((COLOUR_KEY, n_modes > 1 and any(a["x_test"].shape[1] == 2 for _, a in checked)),
                                    (HISTOGRAM_KEY, any(a[k].shape[1] == 1 for _, a in checked for _, k, _, _ in ROWS)))
           if shown]
    if key:
        fig.supxlabel(fit_text(key, fig.get_figwidth(), KEY_FONT), fontsize=KEY_FONT)
    return save_figure(fig, path)


def published_layout(folder: Path, dataset: str, columns: list[tuple[str, str]], seed: int, path: Path,
                     title: str) -> Path | None:
    """The comparison grid from a published folder's ``samples/``: a column per (name shown, method
    label) of ``columns`` whose samples at ``seed`` were published (None where none were, or
    where they are images: ``image_figures`` draws those)."""
    from ..core.results import sample_name
    from ..data import build_dataset, parse_data_spec
    from .image_figures import is_image_samples

    found = [(shown, load_arrays(p)) for shown, method in columns
             if (p := folder / "samples" / sample_name(dataset, method, seed)).is_file()]
    if not found or is_image_samples(found[0][1]):
        return None
    ds = build_dataset(parse_data_spec(dataset))
    return plot_mixture_comparison(found, path, n_modes=ds.n_modes or None, x_lim=ds.plot_limit(), z_lim=4.0,
                                   title=title)


def plot_levels(method: str, samples: dict, path, *, n_modes: int, x_lim: float, title: str = "") -> Path:
    """A hierarchical model's reconstructions through each latent level, beside the data:
    test x, G(z1) with z1 ~ q(z1|x), and G(z1') through the top level (coloured by component)."""
    panels = (("test x", "x_test"), ("through z1", "x_reconstructed_z1"), ("through z2", "x_reconstructed"))
    labels = np.asarray(samples["x_test_label"]).astype(np.int64)
    fig, axes = plt.subplots(1, 3, figsize=(7.2, 2.8), layout="constrained")
    for ax, (name, key) in zip(axes, panels):
        points = np.asarray(samples[key], dtype=np.float64)
        if points.shape[1] == 2:
            _scatter(ax, points, labels, n_modes, x_lim)
        else:
            _histogram(ax, points[:, 0], x_lim)
        ax.set_title(name, fontsize=10)
        ax.tick_params(labelsize=7, length=2, pad=1)
    fig.suptitle(f"{title}: {method}" if title else method, fontsize=11)
    return save_figure(fig, path)
