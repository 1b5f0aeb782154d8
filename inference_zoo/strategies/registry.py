"""The strategy registry: built-ins register by decorator, plugins through entry points."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..registry import Registry

if TYPE_CHECKING:
    from .base import Strategy

STRATEGIES: "Registry[type[Strategy]]" = Registry("strategy", entry_point_group="inference_zoo.strategies")
