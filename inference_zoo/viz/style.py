"""Shared plotting helpers: Agg backend (a notebook's inline one kept), byte-stable atomic saving, mode
colours, text that fits its figure."""

from __future__ import annotations

import colorsys
import contextlib
import os
from pathlib import Path
from typing import Iterator, Sequence

import matplotlib

#: a notebook's inline backend is kept, so its own plots still show: it draws with Agg as well, and
#: sets no rc parameters of its own, so saved figures are the same bytes
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
if os.environ.get("MPLBACKEND") != INLINE_BACKEND:
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (must come after matplotlib.use)
import numpy as np  # noqa: E402
from matplotlib.textpath import TextPath  # noqa: E402

from ..core.fileio import atomic_write  # noqa: E402

DEFAULT_DPI = 150
SVG_HASHSALT = "inference_zoo"

# Metadata entries that would otherwise embed the matplotlib version or a
# timestamp, making the output differ between otherwise identical runs.
_STABLE_METADATA = {
    "png": {"Software": None},
    "pdf": {"CreationDate": None, "Producer": None, "Creator": None},
    "svg": {"Date": None},
}

_GOLDEN = (5 ** 0.5 - 1) / 2  # 0.618..., hue step between consecutive modes
_VALUES = (0.95, 0.72, 0.52)  # brightness cycle, separates modes of similar hue


#: what ``izoo figures --format`` can write
FORMATS = tuple(_STABLE_METADATA)
_output = {"format": None}  # set by ``figure_format``; None = each path's own suffix


@contextlib.contextmanager
def figure_format(fmt: str) -> Iterator[None]:
    """Within the block, every ``save_figure`` writes ``fmt`` (png, pdf or svg) in place of the
    suffix its caller named: the figure code names its files once, as .png."""
    if fmt not in FORMATS:
        raise ValueError(f"figure format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    before, _output["format"] = _output["format"], fmt
    try:
        yield
    finally:
        _output["format"] = before


def save_figure(fig, path, dpi: int = DEFAULT_DPI) -> Path:
    """Save ``fig`` to ``path`` atomically and byte-stably (no timestamp or version metadata), close
    it and return the path written: the format is the one ``figure_format`` chose, else the path's
    suffix (PNG when there is none)."""
    path = Path(path)
    if _output["format"] is not None:
        path = path.with_suffix("." + _output["format"])
    fmt = path.suffix[1:].lower() or "png"

    def write(f) -> None:
        with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT}):
            fig.savefig(f, format=fmt, dpi=dpi, metadata=_STABLE_METADATA.get(fmt))

    try:
        atomic_write(path, write)
    finally:
        plt.close(fig)
    return path


TEXT_MARGIN = 0.25  # inches a fitted text leaves free across its figure


def text_width(text: str, fontsize: float) -> float:
    """The width in inches of one line of ``text`` at ``fontsize`` points, from the font's glyph
    outlines (no renderer needed)."""
    return TextPath((0, 0), text, size=fontsize).get_extents().width / 72 if text.strip() else 0.0


def fit_text(parts: str | Sequence[str], width: float, fontsize: float) -> str:
    """``parts`` on one line where they fit ``width`` inches (less ``TEXT_MARGIN``) at ``fontsize``
    points; else each part on lines of its own, broken at spaces: a title that fits its figure."""
    parts = [parts] if isinstance(parts, str) else list(parts)
    room = width - TEXT_MARGIN
    if text_width(" ".join(parts), fontsize) <= room:
        return " ".join(parts)
    lines: list[str] = []
    for part in parts:
        line = ""
        for word in part.split(" "):
            if line and text_width(f"{line} {word}", fontsize) > room:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
    return "\n".join(lines)


#: one colour per built-in method in every study figure
METHOD_COLOURS = {"ali": "#1f77b4", "bigan": "#17becf", "latent": "#ff7f0e", "posthoc": "#d62728", "vae": "#2ca02c",
                  "cali": "#9467bd", "alice": "#8c564b", "hali": "#bcbd22", "ssali": "#e377c2"}


def method_colour(method: str, i: int) -> str:
    """A method's colour; the ``i``-th of matplotlib's cycle for methods without one."""
    return METHOD_COLOURS.get(method, plt.get_cmap("tab10")(i % 10))


def mode_colours(labels, n_modes: int) -> np.ndarray:
    """RGBA colour (shape [n, 4]) for each integer mode label in ``[0, n_modes)``.

    Mode ``k`` gets hue ``k * 0.618 mod 1`` (golden-ratio stepping, so
    consecutive labels get far-apart hues) and a brightness cycling over three
    levels, which keeps 25+ modes - including grid neighbours ``k`` and
    ``k +- 5`` - distinguishable.  The colour of a mode depends only on ``k``,
    so it is the same in every figure.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if n_modes < 1:
        raise ValueError(f"n_modes must be >= 1, got {n_modes}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_modes):
        raise ValueError(
            f"labels must lie in [0, {n_modes}), got range [{labels.min()}, {labels.max()}]"
        )
    palette = np.array(
        [
            (*colorsys.hsv_to_rgb((k * _GOLDEN) % 1.0, 0.85, _VALUES[k % len(_VALUES)]), 1.0)
            for k in range(n_modes)
        ]
    )
    return palette[labels]
