"""Shared plotting helpers: Agg backend, byte-stable atomic saving, mode colours."""

from __future__ import annotations

import colorsys
import os
import tempfile

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (must come after matplotlib.use)
import numpy as np  # noqa: E402

from ..errors import UserError  # noqa: E402

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


def save_figure(fig, path, dpi: int = DEFAULT_DPI) -> None:
    """Save ``fig`` to ``path`` byte-stably and atomically, then close it.

    The format is inferred from the suffix (PNG when there is none).  The
    figure is written to a temporary file in the target directory, fsynced and
    moved onto ``path`` with ``os.replace``, so readers never see a partial
    file.  Timestamp/version metadata is stripped so unchanged inputs give
    byte-identical files.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    suffix = os.path.splitext(base)[1]
    fmt = suffix[1:].lower() or "png"
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=f".{base}.", suffix=suffix)
    except OSError as exc:
        plt.close(fig)
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh, matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT}):
            fig.savefig(fh, format=fmt, dpi=dpi, metadata=_STABLE_METADATA.get(fmt))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except OSError as exc:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    finally:
        plt.close(fig)


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
