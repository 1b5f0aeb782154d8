"""inference_zoo plugins shipped outside the toolkit, found through the entry-point groups
``inference_zoo.strategies``, ``inference_zoo.datasets`` and ``inference_zoo.architectures`` (see
this package's pyproject.toml): two strategies (a plain autoencoder, and ALI with a cycle term
that trains stacked), a dataset and an architecture.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from inference_zoo import Phase, StepOutput, Strategy, UserError, adversarial_game
from inference_zoo.data.mixtures import IsotropicMixture
from inference_zoo.nets.mlp import ToyMLP

__all__ = ["ALICycle", "AutoEncoder", "LeakyMLP", "Spiral"]


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


class ALICycle(Strategy):
    """ALI plus an explicit cycle-consistency term on the generator side, weight ``cycle_weight``
    times the mean squared reconstruction ||x - G(E(x))||^2 (ALICE's explicit form, Li et al. 2017).

    An adversarial plugin that stacks: its networks come from the shared factory, it draws noise
    only through the encoder and ``self.prior``, reduces over the batch axis only (``mean(-1)``)
    and data dimensions with ``self.sum_x``, and evaluates D through ``adversarial_game`` with the
    engine's ``self.joint_pass``. The extra term does not involve D, so it simply adds to the
    generator side's loss, with the shared discriminator chain or without.
    """

    name = "ali_cycle"
    description = "ALI + cycle term (plugin): ALI's game plus cycle_weight * ||x - G(E(x))||^2"
    stackable = True

    @dataclass
    class Options:
        cycle_weight: float = 1.0
        generator_loss: str = "nonsaturating"

    def __init__(self, nets, options: "ALICycle.Options | None" = None) -> None:
        super().__init__(nets, options)
        self.encoder = nets.encoder("encoder", out_dim=self.z_dim, noise_dim=self.z_dim)  # stochastic, as ALI's
        self.decoder = nets.decoder("decoder")
        self.discriminator = nets.joint_discriminator("joint_discriminator")

    def phases(self, steps: int) -> list[Phase]:
        return [Phase(self.name, steps, {"discriminator": ("discriminator",), "generator": ("encoder", "decoder")})]

    def step(self, phase: str, x: torch.Tensor) -> StepOutput:
        z_hat = self.encoder(x)
        z = self.prior(self.batch_size(x))
        d_loss, g_loss, logs = adversarial_game(self.discriminator, (x, z_hat), (self.decoder(z), z),
                                                self.options.generator_loss, self.joint_pass)
        cycle = self.sum_x((x - self.decoder(z_hat)).pow(2)).mean(-1)
        return StepOutput({"discriminator": d_loss, "generator": g_loss + self.options.cycle_weight * cycle},
                          {**logs, "cycle": cycle.detach()})


@dataclass
class SpiralOptions:
    modes: int = 12
    turns: float = 1.5
    std: float = 0.05


class Spiral(IsotropicMixture):
    """Gaussians along an Archimedean spiral: a dataset plugin with known modes, so the coverage
    metrics and the paper-layout figure work on it as on the grid."""

    description = "spiral of Gaussians (plugin; default 12 modes over 1.5 turns, std 0.05)"
    Options = SpiralOptions

    def __init__(self, options: SpiralOptions) -> None:
        if options.modes < 2:
            raise UserError(f"spiral modes must be at least 2, got {options.modes}")
        t = np.linspace(0.25, 1.0, options.modes) * options.turns * 2 * np.pi
        radius = 4 * t / t.max()
        super().__init__(np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1), options.std)


def _leaky(module: nn.Module) -> nn.Module:
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            setattr(module, name, nn.LeakyReLU(0.2))
        else:
            _leaky(child)
    return module


class LeakyMLP(ToyMLP):
    """The ALI paper's toy networks with LeakyReLU(0.2) in the encoder and decoder: an
    architecture plugin (stackable, since the stacked engine knows every layer it uses)."""

    description = "mlp with LeakyReLU(0.2) in encoder and decoder (plugin)"

    def encoder(self, out_dim: int, noise_dim: int) -> nn.Module:
        return _leaky(super().encoder(out_dim, noise_dim))

    def decoder(self) -> nn.Module:
        return _leaky(super().decoder())
