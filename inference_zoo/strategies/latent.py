"""GAN plus a "latent regressor": an encoder trained afterwards to map G(z) back to z.

ALI paper's alternative (b), BiGAN paper's latent regressor: minimise E_z ||z - E(G(z))||^2 with
the decoder frozen, so no encoder gradient reaches the generator.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..nets import NetworkFactory
from .adversarial import check_generator_loss
from .base import Phase, StepOutput, Strategy
from .gan import gan_phase, gan_step
from .registry import STRATEGIES


@STRATEGIES.register("latent")
class LatentRegressor(Strategy):
    name = "latent"
    description = "GAN, then an encoder regressing z from G(z) (decoder frozen)"

    @dataclass
    class Options:
        generator_loss: str = "nonsaturating"
        encoder_steps: int = 0  # 0: as many as the GAN phase

        def __post_init__(self) -> None:
            check_generator_loss(self.generator_loss)

    def __init__(self, nets: NetworkFactory, options: "LatentRegressor.Options | None" = None) -> None:
        super().__init__(nets, options)
        self.encoder = nets.encoder("encoder", out_dim=self.z_dim, noise_dim=self.z_dim)
        self.decoder = nets.decoder("decoder")
        self.gan_discriminator = nets.discriminator("gan_discriminator")

    def phases(self, steps: int) -> list[Phase]:
        regress = Phase("regress", self.options.encoder_steps or steps, {"encoder": ("encoder",)}, frozen=("decoder",))
        return [gan_phase(steps, self.options.generator_loss), regress]

    def step(self, phase: str, x: torch.Tensor) -> StepOutput:
        if phase == "gan":
            return gan_step(self, x, self.options.generator_loss)
        z = self.prior(x.shape[0])
        with torch.no_grad():
            x_fake = self.decoder(z)
        loss = (self.encoder(x_fake) - z).pow(2).sum(1).mean()
        return StepOutput({"encoder": loss})

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)
