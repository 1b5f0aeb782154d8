"""VAE (Kingma & Welling 2014): Gaussian encoder, reparameterised, trained on the ELBO.

The decoder is the shared deterministic network, read as the mean of a Gaussian p(x|z) with a
fixed std, 0.05 by default (the grid's component std). ``likelihood_std=0`` learns a
per-dimension std instead, which can settle in a KL-dominated optimum on the mixtures
(``figures/vae_likelihood_sweep`` shows the fixed stds side by side). ``decode`` returns the
mean, as the ALI paper's figure shows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..core.errors import UserError
from ..nets import NetworkFactory
from .base import Phase, StepOutput, Strategy, member_apply
from .registry import STRATEGIES


@STRATEGIES.register("vae")
class VAE(Strategy):
    name = "vae"
    description = "VAE: Gaussian encoder, reparameterised, ELBO (Gaussian p(x|z), std 0.05)"
    stackable = True

    search_space = {"likelihood_std": ("log", 0.01, 0.5)}
    #: a fixed std lives in each member's own ``log_std``; fixed and learned stds train different groups
    member_options = {"likelihood_std": bool}

    @dataclass
    class Options:
        likelihood_std: float = 0.05  # 0: learned per dimension

        def __post_init__(self) -> None:
            if self.likelihood_std < 0:
                raise UserError(f"likelihood_std must be >= 0, got {self.likelihood_std}")

    def __init__(self, nets: NetworkFactory, options: "VAE.Options | None" = None) -> None:
        super().__init__(nets, options)
        self.encoder = nets.encoder("encoder", out_dim=2 * self.z_dim)
        self.decoder = nets.decoder("decoder")
        fixed = self.options.likelihood_std
        self.log_std = nn.Parameter(torch.full(self.x_shape, math.log(fixed) if fixed else 0.0),
                                    requires_grad=not fixed)

    def phases(self, steps: int) -> list[Phase]:
        trained = ("encoder", "decoder") + (("log_std",) if self.log_std.requires_grad else ())
        return [Phase(self.name, steps, {"elbo": trained})]

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.encoder(x).chunk(2, dim=-1)
        return mean, log_std

    def step(self, phase: str, x: torch.Tensor) -> StepOutput:
        mean, log_std = self.posterior(x)
        z = mean + member_apply(torch.exp, log_std, 2) * self.noise.randn_like(mean)
        x_mean = self.decoder(z)
        likelihood_std = member_apply(torch.exp, self.log_std, len(self.x_shape))
        nll = self.sum_x(0.5 * ((x - x_mean) / likelihood_std).pow(2) + self.log_std + 0.5 * math.log(2 * math.pi))
        kl = 0.5 * (mean.pow(2) + member_apply(torch.exp, 2 * log_std, 2) - 1 - 2 * log_std).sum(-1)
        loss = (nll + kl).mean(-1)
        return StepOutput({"elbo": loss}, {"nll": nll.mean(-1).detach(), "kl": kl.mean(-1).detach()})

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        mean, log_std = self.posterior(x)
        return mean + log_std.exp() * self.noise.randn_like(mean)
