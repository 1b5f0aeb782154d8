"""inference_zoo: compare inference mechanisms in latent-variable generative models.

The public names are imported lazily so that ``import inference_zoo.metrics`` stays torch-free.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["STRATEGIES", "Phase", "Results", "StepOutput", "Strategy", "UserError", "__version__", "compare",
           "load_run", "read_results", "study"]
_API = ("Results", "compare", "load_run", "read_results", "study")  # experiment/api.py


from .core.errors import UserError  # noqa: E402  (plugins raise it for one-line errors)


def __getattr__(name: str) -> Any:
    if name in ("STRATEGIES", "Phase", "StepOutput", "Strategy"):
        from . import strategies

        return getattr(strategies, name)
    if name in _API:
        from .experiment import api

        return getattr(api, name)
    raise AttributeError(f"module 'inference_zoo' has no attribute {name!r}")
