"""The ways a run stops early: a user's mistake (one line, exit 2), a diverged run, and a run
stopped at a curve point by whoever watches it (a tuner's pruner)."""
from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (names, numbers, specs, folders): shown as one line, exit code 2."""


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
