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
its stack-mates, at its own decay; a member at decay 0 (no average) is not averaged, and the
trainer hands it on without one.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

AVERAGED = ("encoder", "decoder")


class WeightAverage:
    """The average of a strategy's (or a stack's) ``encoder`` and ``decoder`` parameters, at
    ``decay`` (for a stack: one decay for every member, or one per member)."""

    def __init__(self, strategy: torch.nn.Module, decay: float | list[float], stacked: bool = False) -> None:
        self.stacked = stacked
        self.params = {name: p for name, p in strategy.named_parameters() if name.split(".")[0] in AVERAGED}
        self.shadow = {name: p.detach().clone() for name, p in self.params.items()}
        if isinstance(decay, (int, float)):
            members = next(iter(self.params.values())).shape[0] if stacked and self.params else 1
            decay = [float(decay)] * members
        self._pairs = self._slices(list(decay))

    def _slices(self, decays: list[float]) -> dict[float, tuple[list[torch.Tensor], list[torch.Tensor]]]:
        """Per decay (above 0), the shadows and live tensors it averages."""
        pairs: dict[float, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        for name, p in self.params.items():
            if self.stacked:
                members = zip(decays, self.shadow[name].unbind(0), p.detach().unbind(0))
            else:
                members = [(decays[0], self.shadow[name], p.detach())]
            for decay, shadow, live in members:
                if decay:
                    shadows, lives = pairs.setdefault(decay, ([], []))
                    shadows.append(shadow)
                    lives.append(live)
        return pairs

    @torch.no_grad()
    def update(self) -> None:
        for decay, (shadows, lives) in self._pairs.items():
            torch._foreach_lerp_(shadows, lives, 1.0 - decay)

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
