"""ALI (Dumoulin et al. 2016) and BiGAN (Donahue et al. 2016): encoder and decoder trained
jointly against one discriminator D(x, z) on (x, E(x)) versus (G(z), z) pairs.

ALI's encoder is stochastic (noise eps ~ N(0, I) concatenated to x, as in the paper's mixture
code); BiGAN's is deterministic. D and (encoder, decoder) are updated from the same minibatch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..nets import NetworkFactory
from .adversarial import adversarial_game, check_generator_loss
from .base import Phase, StepOutput, Strategy
from .registry import STRATEGIES


@STRATEGIES.register("ali")
class ALI(Strategy):
    name = "ali"
    description = "ALI: stochastic encoder + decoder vs joint discriminator D(x, z)"
    stochastic_encoder = True
    stackable = True

    @dataclass
    class Options:
        generator_loss: str = "nonsaturating"  # or "minimax" (the paper's V(D, G))

        def __post_init__(self) -> None:
            check_generator_loss(self.generator_loss)

    def __init__(self, nets: NetworkFactory, options: "ALI.Options | None" = None) -> None:
        super().__init__(nets, options)
        noise_dim = self.z_dim if self.stochastic_encoder else 0
        self.encoder = nets.encoder("encoder", out_dim=self.z_dim, noise_dim=noise_dim)
        self.decoder = nets.decoder("decoder")
        self.discriminator = nets.joint_discriminator("joint_discriminator")

    def phases(self, steps: int) -> list[Phase]:
        groups = {"discriminator": ("discriminator",), "generator": ("encoder", "decoder")}
        return [Phase(self.name, steps, groups)]

    def step(self, phase: str, x: torch.Tensor) -> StepOutput:
        z = self.prior(self.batch_size(x))
        d_loss, g_loss, logs = adversarial_game(self.discriminator, (x, self.encoder(x)), (self.decoder(z), z),
                                                self.options.generator_loss, self.joint_pass)
        return StepOutput({"discriminator": d_loss, "generator": g_loss}, logs)


@STRATEGIES.register("bigan")
class BiGAN(ALI):
    name = "bigan"
    description = "BiGAN: ALI with a deterministic encoder"
    stochastic_encoder = False
