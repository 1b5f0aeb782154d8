"""Name -> object registries, so nothing in the toolkit branches on a strategy or dataset name.

Strategies can also come from other installed packages through the entry-point group
``inference_zoo.strategies``: each entry point names a ``Strategy`` subclass. A plugin that fails to
import is remembered (and reported by ``izoo list``) instead of breaking the registry for the rest.
"""
from __future__ import annotations

import re
from importlib.metadata import entry_points
from typing import Callable, Generic, Iterator, TypeVar

from .errors import UserError, unknown

T = TypeVar("T")


def is_safe_name(text: str) -> bool:
    """Names and swept values become folder names and labels ("ali@lr=0.0003",
    config.method_label): letters, digits, "_", "." and "-" only."""
    return re.fullmatch(r"[A-Za-z0-9_.-]+", text) is not None


def check_name(kind: str, name: str) -> None:
    if not is_safe_name(name):
        raise ValueError(f"{kind} name {name!r} may hold only letters, digits, '_', '.' and '-'")


def check_plugin_class(base: type, required: tuple[str, ...], options: bool = True) -> Callable[[object], None]:
    """A plugin check: the item subclasses ``base``, overrides each ``required`` method and, where
    ``options``, has a dataclass ``Options``."""
    import dataclasses

    def check(item: object) -> None:
        if not (isinstance(item, type) and issubclass(item, base)):
            raise TypeError(f"a plugin must subclass {base.__module__.split('.')[0]}.{base.__name__}")
        missing = [m for m in required if getattr(item, m) is getattr(base, m)]
        if missing:
            raise TypeError(f"{item.__name__} does not implement {', '.join(missing)}")
        if options and not dataclasses.is_dataclass(getattr(item, "Options", None)):
            raise TypeError(f"{item.__name__}.Options must be a dataclass")

    return check


class Registry(Generic[T]):
    """A dictionary of named items with a helpful error for unknown names."""

    def __init__(self, kind: str, entry_point_group: str | None = None,
                 check: Callable[[object], None] | None = None) -> None:
        """``check(item)`` vets each plugin; it raises (e.g. TypeError) to mark the plugin broken."""
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.check = check
        self._items: dict[str, T] = {}
        self._plugins_loaded = entry_point_group is None
        self.broken_plugins: dict[str, str] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            self.add(name, item)
            return item

        return add

    def add(self, name: str, item: T) -> None:
        check_name(self.kind, name)
        if name in self._items and self._items[name] is not item:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            if ep.name in self._items:
                continue  # built-ins win; a plugin cannot silently replace them
            try:
                check_name(self.kind, ep.name)
                item = ep.load()
                if self.check is not None:
                    self.check(item)
            except Exception as exc:  # noqa: BLE001 - any failure of third-party code
                self.broken_plugins[ep.name] = f"{ep.value}: {type(exc).__name__}: {exc}"
                continue
            self._items[ep.name] = item

    def get(self, name: str) -> T:
        self._load_plugins()
        if name in self._items:
            return self._items[name]
        if name in self.broken_plugins:
            raise UserError(f"{self.kind} {name!r} is a plugin that failed to load ({self.broken_plugins[name]})")
        raise unknown(self.kind, name, self.names())

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        for name in self.names():
            yield name, self._items[name]

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._items
