"""Tunings: the published searches of ``izoo tune``, each a registered design that rebuilds its folder.

A tuning is what a study is for ``izoo compare``: ``izoo study NAME`` (or ``inference_zoo.study(NAME)``)
runs ``izoo tune`` for every dataset of the design with the arguments written here (every method
searched with the same run-step budget, then its best recipe and the preset's on fresh seeds) and
publishes the histories and the fresh seeds' rows into ``figures/NAME``. A folder may hold only some
of its design's methods and datasets: those published so far (``--methods`` and ``--datasets``
choose a part). ``tests/test_published_studies.py`` checks that the command recorded in each
folder's ``tuning.json`` is the design's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.registry import Registry

EVERY_STRATEGY = ("ali", "bigan", "alice", "vae", "latent", "posthoc")  # the built-in two-network strategies


@dataclass(frozen=True)
class Tuning:
    """The arguments of ``izoo tune`` for each of ``datasets``; ``settings`` fix what is not searched."""

    name: str
    description: str
    methods: tuple[str, ...]
    datasets: tuple[str, ...]
    preset: str
    budget: int
    objective: str = "modes_3sigma+hq_fraction"
    seeds: int = 1
    batch: int = 4
    pruner: str = "median"
    curve_points: int = 4
    confirm_seeds: int = 0
    confirm_top: int = 3
    fresh_seeds: int = 5
    settings: dict[str, Any] = field(default_factory=dict)
    #: a registered study whose figures the published folder also gets, drawn from its fresh-seed
    #: rows, and whose sample rule picks the samples published (every fresh seed's where it says so)
    figures_of: str = ""

    def arguments(self) -> dict[str, Any]:
        """``experiment.tune.tune``'s keyword arguments (beside methods, data and out)."""
        return dict(preset=self.preset, budget=self.budget, objective=self.objective, seeds=self.seeds,
                    batch=self.batch, pruner=self.pruner, curve_points=self.curve_points,
                    confirm_seeds=self.confirm_seeds, confirm_top=self.confirm_top, fresh_seeds=self.fresh_seeds,
                    **self.settings)


TUNINGS: Registry[Tuning] = Registry("tuning")

DESIGNS = (
    Tuning("tuned_quick_1seed", "every strategy tuned at the quick preset, one tuning seed per trial, no pruning",
           EVERY_STRATEGY, ("grid", "ring"), "quick", budget=48_000, pruner="none"),
    Tuning("tuned_quick", "every strategy tuned at the quick preset: two tuning seeds per trial, the best two "
           "confirmed on four more", EVERY_STRATEGY, ("grid", "ring"), "quick", budget=48_000, seeds=2,
           confirm_seeds=4, confirm_top=2),
    Tuning("tuned_10k", "every strategy tuned at the paper's networks for 10,000 steps (preset converged): two "
           "tuning seeds per trial, the best two confirmed on four more", EVERY_STRATEGY, ("grid", "ring"),
           "converged", budget=160_000, seeds=2, confirm_seeds=4, confirm_top=2, settings={"steps": 10_000}),
    # the identity toy's question is inversion, not coverage: the objective is the reconstruction
    # error through the encoder's mean map (identity_toy_converged's judge), at that study's budget
    Tuning("tuned_identity", "every strategy tuned on the identity toy at the quick preset for 6,000 steps "
           "(identity_toy_converged's budget), objective the mean-map reconstruction error; 20 fresh seeds",
           EVERY_STRATEGY, ("identity",), "quick", budget=96_000, objective="recon_mse_mean_code", seeds=2,
           confirm_seeds=4, confirm_top=2, fresh_seeds=20, settings={"steps": 6_000}, figures_of="identity_toy"),
)

for _tuning in DESIGNS:
    TUNINGS.add(_tuning.name, _tuning)
