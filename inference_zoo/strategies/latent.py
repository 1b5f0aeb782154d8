"""GAN plus a "latent regressor": an encoder trained afterwards to map G(z) back to z.

ALI paper's alternative (b), BiGAN paper's latent regressor: minimise E_z ||z - E(G(z))||^2 with
the decoder frozen, so no encoder gradient reaches the generator.
"""
from __future__ import annotations

import torch

from .base import StepOutput
from .gan import GANThenEncoder
from .registry import STRATEGIES


@STRATEGIES.register("latent")
class LatentRegressor(GANThenEncoder):
    name = "latent"
    description = "GAN, then an encoder regressing z from G(z) (decoder frozen)"
    encoder_phase = "regress"

    def encoder_groups(self) -> dict[str, tuple[str, ...]]:
        return {"encoder": ("encoder",)}

    def encoder_step(self, x: torch.Tensor) -> StepOutput:
        z = self.prior(self.batch_size(x))
        with torch.no_grad():
            x_fake = self.decoder(z)
        return StepOutput({"encoder": (self.encoder(x_fake) - z).pow(2).sum(-1).mean(-1)})
