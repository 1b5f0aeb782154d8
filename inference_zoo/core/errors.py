"""The two ways a run stops early: a user's mistake (one line, exit 2) and a diverged run."""
from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (names, numbers, specs, folders): shown as one line, exit code 2."""


class Diverged(RuntimeError):
    """A loss, a parameter or an evaluated output became NaN/Inf: the run stops, its last good
    checkpoint stays."""

    @classmethod
    def non_finite(cls, label: str, seed: int, what: list[str], where: str) -> Diverged:
        return cls(f"{label} seed {seed}: non-finite {', '.join(what)} {where}")
