"""The ALI paper's 2-D mixture networks (official code, experiments/ali_mixture.py).

Encoder and decoder: Linear (no bias) -> BatchNorm -> ReLU hidden layers, linear output.
Discriminators: maxout layers (200 units x 5 pieces), linear logit. Weights N(0, 0.02), biases 0.
"""
from __future__ import annotations

import torch
from torch import nn

from .noise import GLOBAL, Noise
from .base import ARCHITECTURES, Architecture


class Maxout(nn.Module):
    """Linear layer to units*pieces outputs, max over the pieces."""

    def __init__(self, in_dim: int, units: int, pieces: int) -> None:
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_dim, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # max().values backpropagates through the argmax index; amax() would spread the gradient
        # over ties, paying for an equality mask and a division on every backward pass
        return self.linear(x).view(*x.shape[:-1], self.units, self.pieces).max(-1).values


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, batchnorm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers.append(nn.Linear(in_dim, width, bias=not batchnorm))
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU())
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """x, optionally concatenated with injected noise eps, to an output vector."""

    stack_children = True  # the stacked engine's layer protocol (nets/base.py)
    noise: Noise = GLOBAL  # where eps is drawn (nets/noise.py)

    def __init__(self, x_dim: int, noise_dim: int, hidden: tuple[int, ...], out_dim: int, batchnorm: bool):
        super().__init__()
        self.noise_dim = noise_dim
        self.net = mlp(x_dim + noise_dim, hidden, out_dim, batchnorm)

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        if self.noise_dim:
            if eps is None:
                eps = self.noise.randn(x.shape[-2], self.noise_dim, device=x.device, dtype=x.dtype)
            x = torch.cat([x, eps], dim=-1)
        return self.net(x)


class MaxoutDiscriminator(nn.Module):
    """Maxout MLP over the concatenation of its inputs (x, or x and z), returning logits [n]
    ([n, out_dim] for several outputs)."""

    stack_children = True  # the stacked engine's layer protocol (nets/base.py)
    per_sample = True

    def __init__(self, in_dim: int, hidden: tuple[int, ...], pieces: int, out_dim: int = 1):
        super().__init__()
        layers: list[nn.Module] = []
        for units in hidden:
            layers.append(Maxout(in_dim, units, pieces))
            in_dim = units
        layers.append(nn.Linear(in_dim, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        h = inputs[0] if len(inputs) == 1 else torch.cat(inputs, dim=-1)
        return self.net(h).squeeze(-1)


def init_weights(module: nn.Module, std: float) -> nn.Module:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


@ARCHITECTURES.register("mlp")
class ToyMLP(Architecture):
    """Fully connected networks for low-dimensional data (ALI paper's mixture experiment)."""

    description = "MLPs for 1-D/2-D toys: encoder 2x400, decoder 4x400 (BN+ReLU), maxout 3x200x5 D"

    def encoder(self, out_dim: int, noise_dim: int) -> nn.Module:
        c = self.config
        return init_weights(MLPEncoder(self.x_dim, noise_dim, c.encoder_hidden, out_dim, c.batchnorm), c.init_std)

    def decoder(self) -> nn.Module:
        c = self.config
        return init_weights(mlp(self.z_dim, c.decoder_hidden, self.x_dim, c.batchnorm), c.init_std)

    def discriminator(self) -> nn.Module:
        c = self.config
        return init_weights(MaxoutDiscriminator(self.x_dim, c.discriminator_hidden, c.maxout_pieces), c.init_std)

    def joint_discriminator(self, out_dim: int = 1) -> nn.Module:
        c = self.config
        d = MaxoutDiscriminator(self.x_dim + self.z_dim, c.discriminator_hidden, c.maxout_pieces, out_dim)
        return init_weights(d, c.init_std)
