"""GAN, then "post-hoc learned inference": decoder frozen, an encoder learned ALI-style against a
new joint discriminator D(x, z) (ALI paper's alternative (c))."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..nets import NetworkFactory
from .adversarial import adversarial_losses, check_generator_loss, discriminator_logs
from .base import Phase, StepOutput, Strategy
from .gan import gan_phase, gan_step
from .registry import STRATEGIES


@STRATEGIES.register("posthoc")
class PostHoc(Strategy):
    name = "posthoc"
    description = "GAN, then decoder frozen and an encoder learned ALI-style vs a new D(x, z)"

    @dataclass
    class Options:
        generator_loss: str = "nonsaturating"
        encoder_steps: int = 0  # 0: as many as the GAN phase

        def __post_init__(self) -> None:
            check_generator_loss(self.generator_loss)

    def __init__(self, nets: NetworkFactory, options: "PostHoc.Options | None" = None) -> None:
        super().__init__(nets, options)
        self.encoder = nets.encoder("encoder", out_dim=self.z_dim, noise_dim=self.z_dim)
        self.decoder = nets.decoder("decoder")
        self.gan_discriminator = nets.discriminator("gan_discriminator")
        self.joint_discriminator = nets.joint_discriminator("joint_discriminator")

    def phases(self, steps: int) -> list[Phase]:
        groups = {"discriminator": ("joint_discriminator",), "encoder": ("encoder",)}
        encoder_phase = Phase("posthoc", self.options.encoder_steps or steps, groups, frozen=("decoder",))
        return [gan_phase(steps, self.options.generator_loss), encoder_phase]

    def step(self, phase: str, x: torch.Tensor) -> StepOutput:
        if phase == "gan":
            return gan_step(self, x, self.options.generator_loss)
        z = self.prior(x.shape[0])
        with torch.no_grad():
            x_fake = self.decoder(z)
        real = self.joint_discriminator(x, self.encoder(x))
        fake = self.joint_discriminator(x_fake, z)
        d_loss, e_loss = adversarial_losses(real, fake, self.options.generator_loss)
        return StepOutput({"discriminator": d_loss, "encoder": e_loss}, discriminator_logs(real, fake))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)
