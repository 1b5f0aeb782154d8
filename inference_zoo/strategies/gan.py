"""The GAN phase that the latent-regressor and post-hoc strategies start from.

``GANThenEncoder`` trains a plain GAN (decoder + ``gan_discriminator``), then learns an encoder for
the frozen decoder in a second phase that subclasses define. The GAN phase declares a shared key,
so for one seed the trainer trains this GAN once and every such strategy learns its encoder for
the same decoder: their comparison then isolates the inference mechanism.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..nets import NetworkFactory
from .adversarial import adversarial_game, check_generator_loss
from .base import Phase, StepOutput, Strategy

GAN_GROUPS = {"discriminator": ("gan_discriminator",), "generator": ("decoder",)}


class GANThenEncoder(Strategy):
    """Phase "gan", then the subclass's encoder phase with the decoder frozen.

    A phase's name seeds its random streams, so ``encoder_phase`` is part of a strategy's results:
    renaming it changes every number of the strategy (published results use the names below).
    """

    encoder_phase: str = ""
    stackable = True

    @dataclass
    class Options:
        generator_loss: str = "nonsaturating"  # of the GAN phase and of any adversarial encoder phase
        encoder_steps: int = 0  # 0: as many as the GAN phase

        def __post_init__(self) -> None:
            check_generator_loss(self.generator_loss)

    def __init__(self, nets: NetworkFactory, options=None) -> None:
        super().__init__(nets, options)
        self.encoder = nets.encoder("encoder", out_dim=self.z_dim, noise_dim=self.z_dim)
        self.decoder = nets.decoder("decoder")
        self.gan_discriminator = nets.discriminator("gan_discriminator")

    def phases(self, steps: int) -> list[Phase]:
        gan = Phase("gan", steps, GAN_GROUPS, shared_key={"phase": "gan", "generator_loss": self.options.generator_loss})
        encoder_groups = self.encoder_groups()
        encoder = Phase(self.encoder_phase, self.options.encoder_steps or steps, encoder_groups, frozen=("decoder",))
        return [gan, encoder]

    def step(self, phase: str, x: torch.Tensor) -> StepOutput:
        if phase != "gan":
            return self.encoder_step(x)
        x_fake = self.decoder(self.prior(self.batch_size(x)))
        d_loss, g_loss, logs = adversarial_game(self.gan_discriminator, (x,), (x_fake,), self.options.generator_loss,
                                                self.joint_pass)
        return StepOutput({"discriminator": d_loss, "generator": g_loss}, logs)

    def encoder_groups(self) -> dict[str, tuple[str, ...]]:
        """Optimiser groups of the encoder phase."""
        raise NotImplementedError

    def encoder_step(self, x: torch.Tensor) -> StepOutput:
        """Losses of the encoder phase (the decoder is frozen)."""
        raise NotImplementedError
