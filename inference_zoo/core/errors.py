"""The ways a run stops early: a user's mistake (one line, exit 2), a diverged run, and a run
stopped at a curve point by whoever watches it (a tuner's pruner)."""
from __future__ import annotations

import difflib
from typing import Iterable


class UserError(Exception):
    """Bad input from the user (names, numbers, specs, folders): shown as one line, exit code 2."""


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """" (did you mean lr_floor?)" for a near miss, case aside ("ALI": ali), else ""."""
    by_case = {v.lower(): v for v in valid}
    key = name.lower()
    extended = sorted((v for v in by_case if v.startswith(key)), key=len)  # "ema" -> "ema_decay"
    close = extended or difflib.get_close_matches(key, list(by_case), n=1, cutoff=0.6)
    return f" (did you mean {by_case[close[0]]}?)" if close else ""


def unknown(kind: str, name: str, valid: Iterable[str]) -> UserError:
    """The error for a ``kind`` called ``name`` that is none of ``valid``:
    "unknown preset 'quik' (did you mean quick?); valid: ..."."""
    valid = list(valid)
    return UserError(f"unknown {kind} {name!r}{did_you_mean(name, valid)}; valid: {', '.join(valid)}")


class Diverged(RuntimeError):
    """A loss, a parameter or an evaluated output became NaN/Inf: the run stops, its last good
    checkpoint stays."""

    @classmethod
    def non_finite(cls, label: str, seed: int, what: list[str], where: str) -> Diverged:
        return cls(f"{label} seed {seed}: non-finite {', '.join(what)} {where}")


class Stopped(RuntimeError):
    """Stopped at a curve point by the run's watcher (``engine.train.Watcher``, e.g. a tuner
    pruning a trial that falls behind): it keeps its curve and last checkpoint; ``run_steps`` is
    what it trained."""

    def __init__(self, message: str, run_steps: int) -> None:
        super().__init__(message)
        self.run_steps = run_steps
