"""Every user-facing setting, read from the config dataclasses' fields.

A setting is a field of ``TrainConfig``, ``EvalConfig`` or ``DataConfig`` declared with
``config.setting``: its name, type, default and help live in that one place, and the command line
(its flags and ``--set``), the Python API, studies and the tuner all find it here by name. A
setting goes by its field name (``lr``) or its dotted name (``train.lr``).
"""
from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass
from typing import Any

from . import config as config_module
from .config import DataConfig, EvalConfig, TrainConfig, coerce_value, setting_text
from .errors import UserError, did_you_mean
from .registry import is_safe_name

#: the config sections that hold settings, in the order help lists them
SECTIONS = {"train": TrainConfig, "eval": EvalConfig, "data": DataConfig}
#: a setting that is not given: the preset's (or the study's) value stands
UNSET = None


@dataclass(frozen=True)
class Setting:
    """One settable field of a config section."""

    name: str
    section: str
    type: Any  # int, float, str, bool or tuple[int, ...]
    default: Any
    help: str
    sweep: bool
    flag: bool
    study: bool

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def flag_name(self) -> str:
        return "--" + self.name.replace("_", "-")

    def value(self, value: Any, where: str = "") -> Any:
        """``value`` (text from the command line, or a Python value) as this setting's type; a
        list (or comma text) for a sweep."""
        where = where or self.flag_name
        if isinstance(value, str) and self.type is not str and self.type is not tuple and "," in value:
            value = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, str) and self.type is str and self.sweep and "," in value:
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, (list, tuple)) and self.type is not tuple:
            if not self.sweep:
                raise UserError(f"{where} takes one value, not a list ({self.name} cannot be swept)")
            values = [self._one(v, where) for v in value]
            if not values:
                raise UserError(f"{where} is empty")
            return values
        return self._one(value, where)

    def _one(self, value: Any, where: str) -> Any:
        if self.type is tuple:
            items = value.split(",") if isinstance(value, str) else value
            try:
                return tuple(int(v) for v in items if str(v).strip())
            except (TypeError, ValueError):
                raise UserError(f"{where}: expected integers, e.g. 100,1000; got {value!r}") from None
        if isinstance(value, str):
            return coerce_value(value.strip(), self.default, where)
        if self.type is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            kind = {int: "an integer", float: "a number", str: "text", bool: "true or false"}.get(self.type, "a value")
            raise UserError(f"{where}: expected {kind}, got {value!r}")
        return value


def _field_type(cls: type, f: dataclasses.Field) -> Any:
    hint = typing.get_type_hints(cls, vars(config_module))[f.name]
    return tuple if typing.get_origin(hint) is tuple else hint


@functools.lru_cache(maxsize=None)
def _table() -> dict[str, Setting]:
    table: dict[str, Setting] = {}
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            if "help" not in f.metadata:
                continue  # a field the toolkit sets itself (a dataset's name and options)
            if f.name in table:
                raise RuntimeError(f"setting {f.name} is declared in two sections; give it another name")
            table[f.name] = Setting(f.name, section, _field_type(cls, f), f.default, f.metadata["help"],
                                    f.metadata["sweep"], f.metadata["flag"], f.metadata["study"])
    return table


def all_settings() -> dict[str, Setting]:
    """Every setting by field name, in declaration order (train, eval, data)."""
    return dict(_table())


def lookup(name: str, *, study: bool = False) -> Setting:
    """The setting called ``name`` (``lr`` or ``train.lr``); one line naming the near miss if none."""
    table = _table()
    section, _, short = name.rpartition(".")
    found = table.get(short)
    if found is None or (section and section != found.section):
        valid = list(table) + [s.key for s in table.values()]
        raise UserError(f"no setting {name!r}{did_you_mean(name, valid)}; settings: {', '.join(table)}")
    if study and not found.study:
        raise UserError(f"a study fixes {found.name} itself; settings a study takes: "
                        f"{', '.join(n for n, s in table.items() if s.study)}")
    return found


def resolve(given: dict[str, Any], *, study: bool = False) -> dict[str, Any]:
    """``given`` (names or dotted names -> values; None: not given) as field names -> typed values
    (lists for sweeps), checked."""
    out: dict[str, Any] = {}
    for name, value in given.items():
        if value is UNSET:
            continue
        s = lookup(name, study=study)
        if s.name in out:
            raise UserError(f"setting {s.name} is given twice")
        value = s.value(value, s.flag_name)
        if isinstance(value, list):
            check_sweep(s, value)
        out[s.name] = value
    return out


def check_sweep(s: Setting, values: list[Any]) -> None:
    """A sweep's values: distinct, and each fit to name a run (``ali@lr=0.0003``)."""
    if len(set(values)) < len(values):
        what = "a learning rate" if s.name == "lr" else "a value"
        raise UserError(f"{s.flag_name} lists {what} twice: {', '.join(map(str, values))}")
    for v in values:
        if not is_safe_name(setting_text(v)):
            raise UserError(f"{s.flag_name}: a swept value may hold only letters, digits, _ . -; got {v!r}")


def parse_assignments(items: list[str], *, study: bool = False) -> dict[str, Any]:
    """``--set name=value`` items (``lr=3e-4``, ``eval.n_three_sigma=5000``, ``beta1=0.5,0.8``)."""
    out: dict[str, Any] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise UserError(f"--set expects name=value, got {item!r}")
        out[name.strip()] = value
    return resolve(out, study=study)


def sections_of(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Resolved settings split by config section: {"train": {...}, "eval": {...}, "data": {...}}."""
    out: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for name, value in values.items():
        out[_table()[name].section][name] = value
    return out


__all__ = ["SECTIONS", "Setting", "all_settings", "check_sweep", "did_you_mean", "lookup", "parse_assignments",
           "resolve", "sections_of"]
