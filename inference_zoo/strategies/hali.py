"""Hierarchical ALI (the ALI paper, section 4.3): two stochastic latent levels.

Encoder side: z1 ~ q(z1 | x), z2 ~ q(z2 | z1). Decoder side: z2 ~ N(0, I), z1 ~ p(z1 | z2),
x = G(z1). One discriminator D(x, z1, z2) tells (x, z1, z2) drawn through the encoders from
(x, z1, z2) drawn through the decoders; the four networks play against it with ALI's loss.

The x-level networks are the run's architecture (the MLP toys or a conv family), z1 its latent
size; the z1 <-> z2 networks are noise-injected MLPs of the same widths (``nets/mlp.py``), so
every family gets a second level. ``encode``/``decode`` go through both levels (the prior is
z2's); ``reconstruct_levels`` gives the reconstruction through each level, as the paper's
figure shows them: through z1, G(z1) with z1 ~ q(z1 | x); through z2, G(z1') with
z1' ~ p(z1 | z2), z2 ~ q(z2 | z1).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.errors import UserError
from ..nets import NetworkFactory
from ..nets.mlp import ToyMLP
from .adversarial import adversarial_game, check_generator_loss
from .base import Phase, StepOutput, Strategy
from .registry import STRATEGIES


@STRATEGIES.register("hali")
class HALI(Strategy):
    name = "hali"
    description = "Hierarchical ALI: x -> z1 -> z2 and z2 -> z1 -> x against one D(x, z1, z2)"
    stackable = True

    @dataclass
    class Options:
        generator_loss: str = "nonsaturating"
        z2_dim: int = 0  # the top level's size; 0: half of z1's (at least 1)

        def __post_init__(self) -> None:
            check_generator_loss(self.generator_loss)
            if self.z2_dim < 0:
                raise UserError(f"z2_dim must be >= 0, got {self.z2_dim}")

    def __init__(self, nets: NetworkFactory, options: "HALI.Options | None" = None) -> None:
        super().__init__(nets, options)
        self.z1_dim = nets.z_dim
        self.z2_dim = self.options.z2_dim or max(1, self.z1_dim // 2)
        self.z_dim = self.z2_dim  # the prior, encode and decode are the top level's
        self.encoder1 = nets.encoder("encoder1", out_dim=self.z1_dim, noise_dim=self.z1_dim)
        self.decoder1 = nets.decoder("decoder1")
        config = nets.arch.config
        self.encoder2 = NetworkFactory(ToyMLP(config, self.z1_dim), nets.seed).encoder(
            "encoder2", out_dim=self.z2_dim, noise_dim=self.z2_dim)
        self.decoder2 = NetworkFactory(ToyMLP(config, self.z2_dim), nets.seed).encoder(
            "decoder2", out_dim=self.z1_dim, noise_dim=self.z1_dim)
        self.discriminator = nets.reshaped(z_dim=self.z1_dim + self.z2_dim).joint_discriminator("joint_discriminator")

    def phases(self, steps: int) -> list[Phase]:
        groups = {"discriminator": ("discriminator",), "generator": ("encoder1", "encoder2", "decoder1", "decoder2")}
        return [Phase(self.name, steps, groups)]

    def step(self, phase: str, x: torch.Tensor) -> StepOutput:
        z1 = self.encoder1(x)
        z2 = self.encoder2(z1)
        z2_prior = self.prior(self.batch_size(x))
        z1_prior = self.decoder2(z2_prior)
        d_loss, g_loss, logs = adversarial_game(
            self.discriminator, (x, torch.cat([z1, z2], -1)), (self.decoder1(z1_prior), torch.cat([z1_prior, z2_prior], -1)),
            self.options.generator_loss, self.joint_pass)
        return StepOutput({"discriminator": d_loss, "generator": g_loss}, logs)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder2(self.encoder1(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder1(self.decoder2(z))

    def reconstruct_levels(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The reconstruction of ``x`` through each latent level: {"z1": ..., "z2": ...}."""
        z1 = self.encoder1(x)
        return {"z1": self.decoder1(z1), "z2": self.decoder1(self.decoder2(self.encoder2(z1)))}
