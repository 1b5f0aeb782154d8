"""An exponential moving average of the generator-side weights, used for evaluation (``train.ema_decay``).

Yazici et al. (2019, "The unusual effectiveness of averaging in GAN training") evaluate a GAN's
generator with an exponential moving average of its weights: adversarial training circles
around an equilibrium, and the average sits nearer to it. Here the average covers the networks
that the inference API uses, ``encoder`` and ``decoder`` (BatchNorm statistics stay the live
ones). It starts from the live weights at each phase's start, so a phase shared between
strategies (latent/posthoc's GAN) hands on its live decoder, as it always has; in a one-phase
strategy (ALI, BiGAN, the VAE) it covers all of training. Training itself never sees the average.

In a stacked run each member's slice is averaged as a tensor of its own (torch's ``lerp`` kernel
rounds a flat loop's last values on another path), so a member's average does not depend on
its stack-mates.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

AVERAGED = ("encoder", "decoder")


class WeightAverage:
    """The average of a strategy's (or a stack's) ``encoder`` and ``decoder`` parameters."""

    def __init__(self, strategy: torch.nn.Module, decay: float, stacked: bool = False) -> None:
        self.decay = decay
        self.stacked = stacked
        self.params = {name: p for name, p in strategy.named_parameters() if name.split(".")[0] in AVERAGED}
        self.shadow = {name: p.detach().clone() for name, p in self.params.items()}
        self._pairs = self._slices()

    def _slices(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        shadows, lives = [], []
        for name, p in self.params.items():
            if self.stacked:
                shadows += list(self.shadow[name].unbind(0))
                lives += list(p.detach().unbind(0))
            else:
                shadows.append(self.shadow[name])
                lives.append(p.detach())
        return shadows, lives

    @torch.no_grad()
    def update(self) -> None:
        shadows, lives = self._pairs
        torch._foreach_lerp_(shadows, lives, 1.0 - self.decay)

    def state(self) -> dict[str, torch.Tensor]:
        return {name: t.detach().clone() for name, t in self.shadow.items()}

    @torch.no_grad()
    def load(self, state: dict[str, torch.Tensor]) -> None:
        for name, t in self.shadow.items():
            t.copy_(state[name])

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The averaged weights in the live parameters for the duration (evaluation)."""
        live = {name: p.detach().clone() for name, p in self.params.items()}
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(self.shadow[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in self.params.items():
                    p.copy_(live[name])
