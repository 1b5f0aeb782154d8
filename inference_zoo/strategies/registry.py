"""The strategy registry: built-ins register by decorator, plugins through entry points."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.registry import Registry

if TYPE_CHECKING:
    from .base import Strategy



def check_strategy_class(item: object) -> None:
    from .base import Strategy

    if not (isinstance(item, type) and issubclass(item, Strategy)):
        raise TypeError("a strategy must subclass inference_zoo.Strategy")
    item.check_plugin_contract()


STRATEGIES: "Registry[type[Strategy]]" = Registry("strategy", entry_point_group="inference_zoo.strategies",
                                                  check=check_strategy_class)
