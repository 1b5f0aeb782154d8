"""An inference_zoo strategy shipped outside the toolkit, found through the entry-point group
``inference_zoo.strategies`` (see this package's pyproject.toml); it uses only the public API.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from inference_zoo import Phase, StepOutput, Strategy

__all__ = ["AutoEncoder"]


class AutoEncoder(Strategy):
    """Deterministic autoencoder: the baseline that shows what reconstruction alone buys.

    Loss: ||x - G(E(x))||^2 plus ``prior_weight`` times a moment-matching penalty pulling the
    batch of codes E(x) toward N(0, I) (mean^2 + (var - 1)^2 per z dimension), so that decoding
    prior samples z ~ N(0, I) lands somewhere sensible. No adversary, no sampling noise.
    """

    name = "ae"
    description = "AE (plugin): deterministic autoencoder, MSE + moment match of E(x) to N(0, I)"

    @dataclass
    class Options:
        prior_weight: float = 1.0  # 0: a plain autoencoder, whose samples G(z) are meaningless

    def __init__(self, nets, options: "AutoEncoder.Options | None" = None) -> None:
        super().__init__(nets, options)
        self.encoder = nets.encoder("encoder", out_dim=self.z_dim)
        self.decoder = nets.decoder("decoder")

    def phases(self, steps: int) -> list[Phase]:
        return [Phase(self.name, steps, {"autoencoder": ("encoder", "decoder")})]

    def step(self, phase: str, x: torch.Tensor) -> StepOutput:
        z = self.encoder(x)
        recon = (x - self.decoder(z)).pow(2).sum(1).mean()
        mean, var = z.mean(0), z.var(0)
        moments = (mean.pow(2) + (var - 1).pow(2)).sum()
        loss = recon + self.options.prior_weight * moments
        return StepOutput({"autoencoder": loss}, {"recon": recon.detach(), "moments": moments.detach()})

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)
