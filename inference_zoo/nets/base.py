"""The architecture contract and the seeded factory strategies use to build networks.

A strategy asks the factory for ``encoder``/``decoder``/``discriminator`` networks by role and
name; it never picks layer sizes itself, so every strategy compared on a dataset shares the same
architectures, and a network's initial weights depend only on (seed, name).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..registry import Registry
from ..seeding import derive_seed


@dataclass
class ArchConfig:
    """Sizes of the shared networks. Defaults are the ALI paper's 2-D mixture networks."""

    name: str = "mlp"
    z_dim: int = 0  # 0: same as the data dimension (the paper's toys)
    encoder_hidden: tuple[int, ...] = (400, 400)
    decoder_hidden: tuple[int, ...] = (400, 400, 400, 400)
    discriminator_hidden: tuple[int, ...] = (200, 200, 200)
    maxout_pieces: int = 5
    batchnorm: bool = True
    init_std: float = 0.02


class Architecture:
    """Builds the four kinds of network every strategy is made of."""

    description: ClassVar[str] = ""

    def __init__(self, config: ArchConfig, x_dim: int) -> None:
        self.config = config
        self.x_dim = x_dim
        self.x_shape: tuple[int, ...] = (x_dim,)  # image architectures: (channels, height, width)
        self.z_dim = config.z_dim or x_dim

    def encoder(self, out_dim: int, noise_dim: int) -> nn.Module:
        """x [n, x_dim] (and eps [n, noise_dim] when noise_dim > 0) -> [n, out_dim]."""
        raise NotImplementedError

    def decoder(self) -> nn.Module:
        """z [n, z_dim] -> x [n, x_dim]."""
        raise NotImplementedError

    def discriminator(self) -> nn.Module:
        """x -> logit [n]."""
        raise NotImplementedError

    def joint_discriminator(self) -> nn.Module:
        """(x, z) -> logit [n]."""
        raise NotImplementedError


ARCHITECTURES: Registry[type[Architecture]] = Registry("architecture")


class NetworkFactory:
    """Builds named networks with seeded, device-independent initial weights."""

    def __init__(self, architecture: Architecture, seed: int) -> None:
        self.arch = architecture
        self.seed = seed
        self.x_dim = architecture.x_dim
        self.x_shape = architecture.x_shape
        self.z_dim = architecture.z_dim

    def _seeded(self, name: str, build) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.seed, "init", name))
            return build()

    def encoder(self, name: str, out_dim: int, noise_dim: int = 0) -> nn.Module:
        return self._seeded(name, lambda: self.arch.encoder(out_dim, noise_dim))

    def decoder(self, name: str = "decoder") -> nn.Module:
        return self._seeded(name, self.arch.decoder)

    def discriminator(self, name: str) -> nn.Module:
        return self._seeded(name, self.arch.discriminator)

    def joint_discriminator(self, name: str) -> nn.Module:
        return self._seeded(name, self.arch.joint_discriminator)
