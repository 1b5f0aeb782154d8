"""Image figures, drawn from stored sample arrays (samples.npz), never from live models.

- samples: a grid of G(z) per method;
- reconstructions: per method, a row of held-out inputs above the row of their reconstructions;
- interpolations (the ALI paper's figure): per method, each row decodes the straight line between
  the codes of two held-out images (left and right ends are reconstructions);
- class samples (conditional models): one row per class, one column per shared z;
- levels (hierarchical models): held-out x above its reconstructions through z1 and through z2;
- latent arithmetic: per method, a held-out image of class a moved along the class vector a -> b
  at each strength, beside a fixed classifier's mean probability of class b along the way.

Images are tiled into one array with numpy and shown with one ``imshow`` per panel, so figures are
small, fast and byte-stable.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .style import fit_text, plt, save_figure

PAD = 1  # pixels of white between tiles
PANELS_PER_ROW = 3


def tile(images: np.ndarray) -> np.ndarray:
    """[rows, cols, C, H, W] in [0, 1] -> one [rows*(H+PAD)-PAD, cols*(W+PAD)-PAD(, 3)] mosaic."""
    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    if images.ndim != 5:
        raise ValueError(f"tile needs [rows, cols, C, H, W], got {images.shape}")
    rows, cols, c, h, w = images.shape
    out = np.ones((rows * (h + PAD) - PAD, cols * (w + PAD) - PAD, c), dtype=np.float32)
    for i in range(rows):
        for j in range(cols):
            out[i * (h + PAD):i * (h + PAD) + h, j * (w + PAD):j * (w + PAD) + w] = images[i, j].transpose(1, 2, 0)
    return out[..., 0] if c == 1 else out


def _show(ax, mosaic: np.ndarray, title: str) -> None:
    ax.imshow(mosaic, cmap="gray" if mosaic.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _grid(images: np.ndarray, cols: int) -> np.ndarray:
    rows = len(images) // cols
    return images[: rows * cols].reshape(rows, cols, *images.shape[1:])


def _panels(n: int, width: float, height: float):
    """A figure of n panels, at most PANELS_PER_ROW a row; unused axes hidden."""
    cols = min(n, PANELS_PER_ROW)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows + 0.4), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat)


def samples_figure(columns: list[tuple[str, dict]], path: Path, title: str, cols: int = 8) -> Path:
    fig, axes = _panels(len(columns), 2.6, 2.7)
    for ax, (method, s) in zip(axes, columns):
        _show(ax, tile(_grid(s["x_generated"], cols)), f"{method}: G(z)")
    fig.suptitle(fit_text(title, fig.get_figwidth(), 10), fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def reconstructions_figure(columns: list[tuple[str, dict]], path: Path, title: str, n: int = 16) -> Path:
    fig, axes = plt.subplots(len(columns), 1, figsize=(0.45 * n + 0.6, 1.15 * len(columns) + 0.5), squeeze=False)
    for ax, (method, s) in zip(axes[:, 0], columns):
        pair = np.stack([s["x_test"][:n], s["x_reconstructed"][:n]])
        _show(ax, tile(pair), f"{method}: x (top), G(E(x)) (bottom)")
    fig.suptitle(fit_text(title, fig.get_figwidth(), 10), fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def interpolations_figure(columns: list[tuple[str, dict]], path: Path, title: str, pairs: int = 4) -> Path:
    shown = [(m, s) for m, s in columns if "interpolation" in s]
    fig, axes = _panels(len(shown), 3.2, 0.5 + 0.4 * pairs)
    for ax, (method, s) in zip(axes, shown):
        _show(ax, tile(s["interpolation"][:pairs]), f"{method}")
    fig.suptitle(fit_text([title + ":", "G((1-t) E(x_a) + t E(x_b)), t = 0 ... 1"], fig.get_figwidth(), 10), fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def class_samples_figure(method: str, samples: dict, path: Path, title: str) -> Path:
    grid = samples["class_samples"]  # [classes, shared z, C, H, W]
    fig, ax = plt.subplots(figsize=(0.5 * grid.shape[1] + 0.8, 0.5 * grid.shape[0] + 0.8))
    _show(ax, tile(grid), f"{title}\n{method}: row = class, column = one z shared by all classes")
    ax.set_yticks([(i + 0.5) * (grid.shape[3] + PAD) for i in range(grid.shape[0])], range(grid.shape[0]), fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def levels_figure(method: str, samples: dict, path: Path, title: str, n: int = 16) -> Path:
    """A hierarchical model's reconstructions: held-out x, through z1, through z2 (rows)."""
    rows = np.stack([samples[k][:n] for k in ("x_test", "x_reconstructed_z1", "x_reconstructed")])
    fig, ax = plt.subplots(figsize=(0.45 * rows.shape[1] + 1.2, 2.2))
    _show(ax, tile(rows), f"{title}\n{method}: x, G(z1) with z1 ~ q(z1|x), G(z1') through z2")
    ax.set_yticks([(i + 0.5) * (rows.shape[3] + PAD) for i in range(3)], ["x", "via z1", "via z2"], fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def arithmetic_figure(method: str, samples: dict, path: Path, title: str) -> Path:
    frames = samples["arith_frames"]  # [pairs, strengths, C, H, W]
    probs, pairs, strengths = samples["arith_target_prob"], samples["arith_pairs"], samples["arith_strengths"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(0.55 * frames.shape[1] + 4.6, 0.5 * frames.shape[0] + 1.2),
                                      gridspec_kw={"width_ratios": [0.55 * frames.shape[1] + 0.6, 3.6]})
    _show(left, tile(frames), f"{method}: G(E(x) + s (mean code of b - mean code of a))")
    left.set_yticks([(i + 0.5) * (frames.shape[3] + PAD) for i in range(len(pairs))],
                    [f"{a}→{b}" for a, b in pairs], fontsize=7)
    left.set_xticks([(j + 0.5) * (frames.shape[4] + PAD) for j in range(len(strengths))],
                    [f"{s:g}" for s in strengths], fontsize=7)
    left.set_xlabel("strength s", fontsize=8)
    for row in probs:
        right.plot(strengths, row, color="0.6", lw=0.7)
    right.plot(strengths, probs.mean(0), color="k", lw=2, label="mean over pairs")
    right.set_ylim(-0.02, 1.02)
    right.set_xlabel("strength s", fontsize=8)
    right.set_ylabel("P(class b), fixed classifier", fontsize=8)
    right.legend(fontsize=7, loc="upper left")
    right.grid(alpha=0.3)
    right.set_title("held-out images of class a, mean", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def image_figures(columns: list[tuple[str, dict]], folder: Path, stem: str, title: str) -> list[Path]:
    """Every image figure for one dataset; ``columns`` are (method, samples) pairs."""
    written = [samples_figure(columns, folder / f"samples-{stem}.png", title),
               reconstructions_figure(columns, folder / f"reconstructions-{stem}.png", title)]
    if any("interpolation" in s for _, s in columns):
        written.append(interpolations_figure(columns, folder / f"interpolations-{stem}.png", title))
    for method, s in columns:
        if "class_samples" in s:
            written.append(class_samples_figure(method, s, folder / f"class-samples-{stem}-{method}.png", title))
        if "x_reconstructed_z1" in s:
            written.append(levels_figure(method, s, folder / f"levels-{stem}-{method}.png", title))
        if "arith_frames" in s:
            written.append(arithmetic_figure(method, s, folder / f"arithmetic-{stem}-{method}.png", title))
    return written


def is_image_samples(samples: dict) -> bool:
    return np.asarray(samples["x_test"]).ndim == 4
