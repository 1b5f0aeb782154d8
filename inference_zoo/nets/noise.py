"""Where strategies and networks draw their noise (z ~ p(z), encoder noise, reparameterisation).

Every module that draws noise holds a ``noise`` attribute, a ``Noise``: a strategy
(``self.prior``, ``self.noise.randn_like``) and the networks that inject noise (``MLPEncoder``,
the Gaussian conv encoder). By default it is torch's global generator, which the engine seeds per
phase. For a stacked run of K members the engine gives the stacked model a ``MemberNoise`` of one
generator per member, seeded as that member's single run seeds the global one; every draw then
stacks K per-member draws, so each member sees exactly the noise of the run it replaces.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import nn


class Noise:
    """N(0, I) draws from torch's global generator (one run)."""

    def randn(self, *shape: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
              ) -> torch.Tensor:
        """Noise of one run's ``shape``."""
        return torch.randn(shape, device=device, dtype=dtype)

    def randn_like(self, t: torch.Tensor) -> torch.Tensor:
        """Noise shaped like ``t`` (whose leading axis is the member axis in a stacked run)."""
        return torch.randn_like(t)


class MemberNoise(Noise):
    """One generator per stacked member: a draw of one run's shape is [K, *shape]."""

    def __init__(self, generators: Sequence[torch.Generator]) -> None:
        self.generators = tuple(generators)

    def randn(self, *shape, device=None, dtype=None):
        return torch.stack([torch.randn(shape, generator=g, device=device, dtype=dtype) for g in self.generators])

    def randn_like(self, t):
        return self.randn(*t.shape[1:], device=t.device, dtype=t.dtype)


class GeneratorNoise(Noise):
    """N(0, I) draws from one ``torch.Generator``, on its device (a loaded run's repeatable codes)."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def randn(self, *shape, device=None, dtype=None):
        return torch.randn(shape, generator=self.generator, device=self.generator.device, dtype=dtype).to(device)

    def randn_like(self, t):
        return self.randn(*t.shape, device=t.device, dtype=t.dtype)


class ZeroNoise(Noise):
    """No noise: every draw is zeros (a loaded run's noise-free code)."""

    def randn(self, *shape, device=None, dtype=None):
        return torch.zeros(shape, device=device, dtype=dtype)

    def randn_like(self, t):
        return torch.zeros_like(t)


GLOBAL = Noise()


def use_noise(model: nn.Module, source: Noise) -> None:
    """Make every module of ``model`` that draws noise draw it from ``source``."""
    for module in model.modules():
        if isinstance(getattr(module, "noise", None), Noise):
            module.noise = source


@contextlib.contextmanager
def noise_from(model: nn.Module, source: Noise) -> Iterator[None]:
    """Within the block, ``model`` draws its noise from ``source``; after it, from where it did."""
    before = [(module, module.noise) for module in model.modules() if isinstance(getattr(module, "noise", None), Noise)]
    use_noise(model, source)
    try:
        yield
    finally:
        for module, noise in before:
            module.noise = noise
