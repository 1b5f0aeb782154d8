"""inference_zoo: compare inference mechanisms in latent-variable generative models.

The public names are imported lazily so that ``import inference_zoo.metrics`` stays torch-free.
"""
from __future__ import annotations

from typing import Any

__all__ = ["STRATEGIES", "Architecture", "Dataset", "Phase", "Results", "StepOutput", "Strategy", "UserError",
           "__version__", "adversarial_game", "compare", "export_run", "load_run", "member_apply", "member_rows",
           "read_results", "settings", "study", "tune", "verify"]
_API = ("Results", "compare", "load_run", "read_results", "settings", "study", "tune")  # experiment/api.py


from .core import __version__  # noqa: E402
from .core.errors import UserError  # noqa: E402  (plugins raise it for one-line errors)


def __getattr__(name: str) -> Any:
    if name in ("STRATEGIES", "Phase", "StepOutput", "Strategy", "member_apply", "member_rows"):
        from .strategies import base, registry

        return getattr(registry if name == "STRATEGIES" else base, name)
    if name == "adversarial_game":  # what an adversarial plugin computes its losses with
        from .strategies.adversarial import adversarial_game

        return adversarial_game
    if name in ("Dataset", "Architecture"):  # what dataset and architecture plugins subclass
        from .data import Dataset
        from .nets import Architecture

        return {"Dataset": Dataset, "Architecture": Architecture}[name]
    if name == "export_run":  # izoo export from Python (its errors name keywords, not flags)
        from .experiment.api import python_words
        from .experiment.export import export_run

        return python_words(export_run)
    if name == "verify":  # izoo verify from Python
        from .experiment.api import python_words
        from .experiment.verify import verify

        return python_words(verify)
    if name in _API:
        from .experiment import api

        return getattr(api, name)
    raise AttributeError(f"module 'inference_zoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API (what tab completion offers; most of it is imported on first use) and the
    module's own dunder names."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})
