"""Conditional ALI: encoder E(x, y) -> z, decoder G(z, y) -> x, discriminator D(x, z, y).

The label enters every network the same way, whatever the architecture: as one-hot channels
appended to x (constant planes for images, extra coordinates for vectors) and as one-hot
coordinates appended to z. The networks come from the shared factory with those wider inputs, so
conditional ALI is compared with the same architectures as everyone else. The generated side uses
the minibatch's own labels, so D sees the same label marginal on both sides.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..nets import NetworkFactory
from .adversarial import adversarial_losses, check_generator_loss, discriminator_logs
from .base import Phase, StepOutput, Strategy
from .registry import STRATEGIES


@STRATEGIES.register("cali")
class ConditionalALI(Strategy):
    name = "cali"
    description = "conditional ALI: E(x, y) -> z, G(z, y) -> x, D(x, z, y) (labels as one-hot inputs)"
    uses_labels = True

    @dataclass
    class Options:
        generator_loss: str = "nonsaturating"  # or "minimax"

        def __post_init__(self) -> None:
            check_generator_loss(self.generator_loss)

    def __init__(self, nets: NetworkFactory, options: ConditionalALI.Options | None = None) -> None:
        super().__init__(nets, options)
        self.n_classes = k = nets.n_classes
        x_with_y = (self.x_shape[0] + k, *self.x_shape[1:])
        self.encoder = nets.reshaped(x_shape=x_with_y).encoder("encoder", out_dim=self.z_dim, noise_dim=self.z_dim)
        self.decoder = nets.reshaped(z_dim=self.z_dim + k).decoder("decoder")
        self.discriminator = nets.reshaped(x_shape=x_with_y, z_dim=self.z_dim + k).joint_discriminator("joint_discriminator")

    def phases(self, steps: int) -> list[Phase]:
        return [Phase(self.name, steps, {"discriminator": ("discriminator",), "generator": ("encoder", "decoder")})]

    # --- labels as inputs ---------------------------------------------------------------------
    def onehot(self, y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.one_hot(y.long(), self.n_classes).to(like.dtype)

    def x_and_y(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x with one-hot label channels on its first data axis: [n, C + K, H, W] or [n, D + K]."""
        axis = x.dim() - len(self.x_shape)
        planes = self.onehot(y, x).reshape(*y.shape, self.n_classes, *([1] * (len(self.x_shape) - 1)))
        return torch.cat([x, planes.expand(*x.shape[:axis], self.n_classes, *x.shape[axis + 1:])], dim=axis)

    def z_and_y(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, self.onehot(y, z)], dim=-1)

    def step(self, phase: str, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        z = self.prior(self.batch_size(x))
        x_y = self.x_and_y(x, y)
        real = self.discriminator(x_y, self.z_and_y(self.encoder(x_y), y))
        fake = self.discriminator(self.x_and_y(self.decoder(self.z_and_y(z, y)), y), self.z_and_y(z, y))
        d_loss, g_loss = adversarial_losses(real, fake, self.options.generator_loss)
        return StepOutput({"discriminator": d_loss, "generator": g_loss}, discriminator_logs(real, fake))

    # --- inference API: labels are required ------------------------------------------------------
    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            raise ValueError("conditional ALI encodes (x, y): pass the labels")
        return self.encoder(self.x_and_y(x, y))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            raise ValueError("conditional ALI decodes (z, y): pass the labels")
        return self.decoder(self.z_and_y(z, y))
