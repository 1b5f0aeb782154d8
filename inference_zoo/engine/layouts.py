"""How the runs of one training loop share a model (a layout), and the plain one: ``OneRun``, one
run's own strategy. ``distributed.DataParallel`` spreads one run over processes and
``stacked.Stack`` holds K seeds as one model; ``train.train_runs`` drives any of them.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch

from .averaging import WeightAverage
from ..core.seeding import derive_seed, generator
from ..strategies import Phase, Strategy

#: one run of the loop, a ``train.Trainer`` (layouts sit below the loop that drives them)
Run = Any


class Layout:
    """How the runs of one training loop share a model: built per phase for runs at one step."""

    stacked: ClassVar[bool]
    model: Strategy  # what steps: one run's strategy, or K runs' stacked into one

    def __init__(self, runs: list[Run], phase: Phase, data: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        raise NotImplementedError

    @staticmethod
    def begin(runs: list[Run]) -> None:
        """Once, after the runs' folders are started (a stack records its members)."""

    def optimizers(self, groups: dict[str, list[torch.nn.Parameter]]) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def resume(self, optimizers: dict[str, torch.optim.Optimizer], groups: dict[str, list[torch.nn.Parameter]],
               average: WeightAverage | None) -> None:
        """Restore optimiser, generator and average states from the runs' ``resume_state``."""
        raise NotImplementedError

    def set_lr_factors(self, optimizers: dict[str, torch.optim.Optimizer], factors: list[float]) -> None:
        """Each run's learning-rate factor (its schedule's, ``core.config.lr_factor``) for the next step."""
        raise NotImplementedError

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next minibatch (x, labels), each run's from its own data generator."""
        raise NotImplementedError

    def after_update(self) -> None:
        """Called after each update."""

    def reduce_gradients(self, groups: dict[str, list[torch.nn.Parameter]]) -> None:
        """Between the gradients and the optimiser steps (data-parallel runs average them)."""

    def reduce_logs(self, running: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The log window's summed losses and logs, as every process should log them."""
        return running

    def finite(self, params: list[torch.nn.Parameter]) -> list[bool]:
        """Per run: whether all of ``params`` are finite."""
        raise NotImplementedError

    def state(self) -> dict[str, torch.Tensor]:
        """A snapshot of the model's state that later loads do not change."""
        raise NotImplementedError

    def run_state(self, state: dict[str, torch.Tensor], j: int) -> dict[str, torch.Tensor]:
        """Run ``j``'s part of a model state (or of the weight average's state)."""
        raise NotImplementedError

    def run_optimizer_state(self, state: dict[str, Any], group: str, j: int) -> dict[str, Any]:
        raise NotImplementedError

    def rng_state(self, j: int) -> dict[str, Any]:
        raise NotImplementedError


class OneRun(Layout):
    """One run's own strategy: noise from torch's global generator, seeded per phase; torch's Adam."""

    stacked = False

    def __init__(self, runs: list[Run], phase: Phase, data: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        (self.run,) = runs
        (self.data,) = data
        self.model = self.run.strategy
        self.train = self.run.config.train
        self.data_rng = generator(self.run.config.seed, "batches", phase.name, device=self.run.device)
        torch.manual_seed(derive_seed(self.run.config.seed, "phase", phase.name))

    def optimizers(self, groups):
        t = self.train
        return {g: torch.optim.Adam(params, lr=t.lr, betas=(t.beta1, t.beta2), foreach=True)
                for g, params in groups.items()}

    def resume(self, optimizers, groups, average):
        state = self.run.resume_state
        for g, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][g])
        torch.set_rng_state(state["rng"]["torch"])
        self.data_rng.set_state(state["rng"]["data"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        if average is not None:
            average.load(state["ema"])

    def set_lr_factors(self, optimizers, factors):
        for opt in optimizers.values():
            for group in opt.param_groups:
                group["lr"] = self.train.lr * factors[0]

    def batch(self):
        x, y = self.data
        idx = torch.randint(x.shape[0], (self.train.batch_size,), device=self.run.device, generator=self.data_rng)
        return x[idx], y[idx]

    def finite(self, params):
        return [all(bool(torch.isfinite(p).all()) for p in params)]

    def state(self):
        return {key: v.detach().clone() for key, v in self.model.state_dict().items()}

    def run_state(self, state, j):
        return state

    def run_optimizer_state(self, state, group, j):
        return state

    def rng_state(self, j):
        state = {"torch": torch.get_rng_state(), "data": self.data_rng.get_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state
