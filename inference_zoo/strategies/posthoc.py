"""GAN, then "post-hoc learned inference": decoder frozen, an encoder learned ALI-style against a
new joint discriminator D(x, z) (ALI paper's alternative (c))."""
from __future__ import annotations

import torch

from ..nets import NetworkFactory
from .adversarial import adversarial_game
from .base import StepOutput
from .gan import GANThenEncoder
from .registry import STRATEGIES


@STRATEGIES.register("posthoc")
class PostHoc(GANThenEncoder):
    name = "posthoc"
    description = "GAN, then decoder frozen and an encoder learned ALI-style vs a new D(x, z)"
    encoder_phase = "posthoc"

    def __init__(self, nets: NetworkFactory, options=None) -> None:
        super().__init__(nets, options)
        self.joint_discriminator = nets.joint_discriminator("joint_discriminator")

    def encoder_groups(self) -> dict[str, tuple[str, ...]]:
        return {"discriminator": ("joint_discriminator",), "encoder": ("encoder",)}

    def encoder_step(self, x: torch.Tensor) -> StepOutput:
        z = self.prior(self.batch_size(x))
        with torch.no_grad():
            x_fake = self.decoder(z)
        d_loss, e_loss, logs = adversarial_game(self.joint_discriminator, (x, self.encoder(x)), (x_fake, z),
                                                self.options.generator_loss, self.joint_pass)
        return StepOutput({"discriminator": d_loss, "encoder": e_loss}, logs)
