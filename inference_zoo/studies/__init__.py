"""Studies: named grids of run configs (dataset x method x seed) with their published figures.

A study's definition lives in its own module here (so ``izoo study NAME`` imports only installed
code); ``studies/<name>.py`` at the repository root is the same study as a runnable script. Every
published folder ``figures/NAME`` is the study NAME: a base study's own, or one derived from a
base study at other settings (``derived.py``), or a tuning (``tunings.py``: ``izoo tune``'s
published searches).
"""
from .base import STUDIES, Study, derive, publish_pieces, rebuild_figures
from . import identity_toy, image_features, mixture_coverage, semi_supervised  # noqa: F401  (register the studies)
from . import derived  # noqa: F401  (the studies derived from them)
from .tunings import TUNINGS, Tuning

__all__ = ["STUDIES", "TUNINGS", "Study", "Tuning", "derive", "publish_pieces", "rebuild_figures"]
