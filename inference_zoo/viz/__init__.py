"""Figures built from stored sample arrays (never from live models)."""

from . import style  # noqa: F401  (first: it picks the backend before anything imports pyplot)
from .mixture_figure import SAMPLE_KEYS, load_samples, plot_mixture_comparison  # noqa: E402
from .style import mode_colours, save_figure  # noqa: E402

__all__ = [
    "SAMPLE_KEYS",
    "load_samples",
    "mode_colours",
    "plot_mixture_comparison",
    "save_figure",
]
