"""The architecture contract and the seeded factory strategies use to build networks.

A strategy asks the factory for ``encoder``/``decoder``/``discriminator`` networks by role and
name; it never picks layer sizes itself, so every strategy compared on a dataset shares the same
architectures, and a network's initial weights depend only on (seed, name).
"""
from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from ..core.config import ArchConfig
from ..core.errors import UserError
from ..core.registry import Registry, check_plugin_class
from ..core.seeding import derive_seed


# What the stacked engine (engine/stack/layers.py, engine/stack/backward.py) asks of a network,
# as class attributes, so that it never needs to know an architecture's classes:
# - ``stack_children = True``: the module's own forward works unchanged with a leading member
#   axis (it concatenates on the last axis and reads the batch size as ``x.shape[-2]``) and it
#   holds no tensors of its own, so its stacked form is itself with its children stacked.
#   ``nn.Sequential`` of the layers stacking.LAYER_STACKERS knows is stacked as is.
# - ``per_sample = True`` (discriminators): logit i depends on input i alone (no batch
#   statistics), and the forward is ``self.net(inputs concatenated on the last axis)``, so one
#   backward chain through ``net`` can serve both players.


class Architecture:
    """Builds the four kinds of network every strategy is made of.

    ``x_shape`` is one sample's shape: ``(x_dim,)`` for vectors, ``(channels, height, width)`` for
    images; ``x_dim`` is always the flat size. Architectures with ``image_native = False`` (the
    MLPs) see images flattened: the factory wraps them, so they need no image code of their own.
    """

    description: ClassVar[str] = ""
    image_native: ClassVar[bool] = False

    def __init__(self, config: ArchConfig, x_dim: int, x_shape: tuple[int, ...] | None = None,
                 n_classes: int = 1) -> None:
        self.config = config
        self.x_shape: tuple[int, ...] = tuple(x_shape) if x_shape else (x_dim,)
        self.x_dim = math.prod(self.x_shape)
        self.n_classes = n_classes  # labels a conditional strategy may condition on
        self.z_dim = config.z_dim or self.x_dim

    def reshaped(self, x_shape: tuple[int, ...], z_dim: int) -> Architecture:
        """The same architecture for other input shapes (conditional models append label channels)."""
        arch = type(self)(self.config, math.prod(x_shape), x_shape, self.n_classes)
        arch.z_dim = z_dim
        return arch

    def encoder(self, out_dim: int, noise_dim: int) -> nn.Module:
        """x [n, x_dim] (and eps [n, noise_dim] when noise_dim > 0) -> [n, out_dim]."""
        raise NotImplementedError

    def decoder(self) -> nn.Module:
        """z [n, z_dim] -> x [n, x_dim]."""
        raise NotImplementedError

    def discriminator(self) -> nn.Module:
        """x -> logit [n]."""
        raise NotImplementedError

    def joint_discriminator(self, out_dim: int = 1) -> nn.Module:
        """(x, z) -> logit [n]; with ``out_dim`` > 1, logits [n, out_dim] (semi-supervised ALI's
        class logits). Architectures that take no ``out_dim`` serve every strategy but that one."""
        raise NotImplementedError


#: built-ins register by decorator; plugins through the entry-point group (an Architecture
#: subclass building the encoder, decoder and both discriminators)
ARCHITECTURES: Registry[type[Architecture]] = Registry(
    "architecture", entry_point_group="inference_zoo.architectures",
    check=check_plugin_class(Architecture, ("encoder", "decoder", "discriminator", "joint_discriminator"), options=False))


class NetworkFactory:
    """Builds named networks with seeded, device-independent initial weights."""

    def __init__(self, architecture: Architecture, seed: int) -> None:
        self.arch = architecture
        self.seed = seed
        self.x_dim = architecture.x_dim
        self.x_shape = architecture.x_shape
        self.z_dim = architecture.z_dim
        self.n_classes = architecture.n_classes

    def reshaped(self, x_shape: tuple[int, ...] | None = None, z_dim: int | None = None) -> NetworkFactory:
        """A factory (same seed) whose networks take inputs of another shape or latent size."""
        arch = self.arch.reshaped(tuple(x_shape or self.x_shape), z_dim or self.z_dim)
        return NetworkFactory(arch, self.seed)

    def _seeded(self, name: str, build, outputs_x: bool = False) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.seed, "init", name))
            module = build()
        if len(self.x_shape) > 1 and not self.arch.image_native:
            module = Flattened(module, self.x_shape, outputs_x)
        return module

    def encoder(self, name: str, out_dim: int, noise_dim: int = 0) -> nn.Module:
        return self._seeded(name, lambda: self.arch.encoder(out_dim, noise_dim))

    def decoder(self, name: str = "decoder") -> nn.Module:
        return self._seeded(name, self.arch.decoder, outputs_x=True)

    def discriminator(self, name: str) -> nn.Module:
        return self._seeded(name, self.arch.discriminator)

    def joint_discriminator(self, name: str, out_dim: int = 1) -> nn.Module:
        if out_dim == 1:
            return self._seeded(name, self.arch.joint_discriminator)
        try:
            return self._seeded(name, lambda: self.arch.joint_discriminator(out_dim))
        except TypeError:
            raise UserError(f"architecture {type(self.arch).__name__} cannot build a joint discriminator "
                            f"with {out_dim} outputs (its joint_discriminator takes no out_dim)") from None


class Flattened(nn.Module):
    """A vector network on image data: flattens x arguments, unflattens an image-sized output.

    Only tensors whose trailing dims are ``x_shape`` are flattened, so z and noise pass through;
    a decoder's (``outputs_x``) flat output is given the image shape back.
    """

    def __init__(self, net: nn.Module, x_shape: tuple[int, ...], outputs_x: bool) -> None:
        super().__init__()
        self.net = net
        self.x_shape = tuple(x_shape)
        self.outputs_x = outputs_x

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        k = len(self.x_shape)
        flat = [t.flatten(t.dim() - k) if t.dim() > k and tuple(t.shape[t.dim() - k:]) == self.x_shape else t
                for t in inputs]
        out = self.net(*flat)
        return out.unflatten(-1, self.x_shape) if self.outputs_x else out
