"""The plain GAN phase that the latent-regressor and post-hoc strategies start from.

Both name their networks ``decoder`` and ``gan_discriminator`` and declare the same shared key, so
for one seed the trainer trains this GAN once and both encoders are learned for the same decoder:
their comparison then isolates the inference mechanism.
"""
from __future__ import annotations

import torch

from .adversarial import adversarial_losses, discriminator_logs
from .base import Phase, StepOutput, Strategy

GAN_GROUPS = {"discriminator": ("gan_discriminator",), "generator": ("decoder",)}


def gan_phase(steps: int, generator_loss: str) -> Phase:
    return Phase("gan", steps, GAN_GROUPS, shared_key={"phase": "gan", "generator_loss": generator_loss})


def gan_step(strategy: Strategy, x: torch.Tensor, generator_loss: str) -> StepOutput:
    real = strategy.gan_discriminator(x)
    fake = strategy.gan_discriminator(strategy.decoder(strategy.prior(x.shape[0])))
    d_loss, g_loss = adversarial_losses(real, fake, generator_loss)
    return StepOutput({"discriminator": d_loss, "generator": g_loss}, discriminator_logs(real, fake))
