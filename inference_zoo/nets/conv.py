"""Convolutional networks for images, registered beside the MLPs so every strategy can use them.

``dcgan``: a DCGAN-style family for square images whose side halves down to 4-7 pixels (8, 28,
32, 64, ...): stride-2 4x4 convolutions (BatchNorm, leaky ReLU 0.2) down, transposed ones (BatchNorm,
ReLU) up, sigmoid output (pixels in [0, 1]). ``ali32``: the ALI paper's 32x32 networks (anchors
section 5). Widths come from ``ArchConfig``'s ``encoder_hidden`` / ``decoder_hidden`` /
``discriminator_hidden`` (channel counts here), so ``-a`` sets them as for the MLPs.

An encoder with injected noise (``noise_dim > 0``: ALI, and the GAN-then-encoder strategies) is
the ALI paper's Gaussian one: the network outputs a mean and a log-std and returns
mean + std * eps, eps drawn from the module's ``noise`` (``nets/noise.py``). On CUDA inputs go channels-last.
"""
from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from .noise import GLOBAL, Noise
from ..core.errors import UserError
from .base import ARCHITECTURES, Architecture

ALI_LEAK = 0.02  # slope of the official ALI code's leaky rectifiers (not in anchors: from its source)
DCGAN_LEAK = 0.2


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """NHWC on CUDA, where cuDNN's convolutions (and bf16 tensor cores) are fastest with it."""
    return x.contiguous(memory_format=torch.channels_last) if x.is_cuda and x.dim() == 4 else x


class ConvTrunk(nn.Module):
    """Image [n, C, H, W] -> features [n, F] (flattened last feature map)."""

    def __init__(self, layers: nn.Sequential) -> None:
        super().__init__()
        self.layers = layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(channels_last(x)).flatten(1)


class ImageEncoder(nn.Module):
    """Conv trunk, then a linear head: the output, or a Gaussian sample when noise is injected."""

    noise: Noise = GLOBAL  # where eps is drawn (nets/noise.py)

    def __init__(self, trunk: nn.Module, features: int, out_dim: int, noise_dim: int) -> None:
        super().__init__()
        if noise_dim and noise_dim != out_dim:
            raise ValueError(f"a Gaussian image encoder needs noise_dim == out_dim, got {noise_dim} and {out_dim}")
        self.noise_dim = noise_dim
        self.trunk = trunk
        self.head = nn.Linear(features, 2 * out_dim if noise_dim else out_dim)

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        h = self.head(self.trunk(x))
        if not self.noise_dim:
            return h
        mean, log_std = h.chunk(2, dim=-1)
        if eps is None:
            eps = self.noise.randn(x.shape[0], self.noise_dim, device=x.device, dtype=mean.dtype)
        return mean + log_std.exp() * eps


class ImageDiscriminator(nn.Module):
    """D(x) -> logits [n]."""

    def __init__(self, trunk: nn.Module, features: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = nn.Linear(features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x)).squeeze(-1)


class JointDiscriminator(nn.Module):
    """D(x, z): x through a conv trunk, z through an MLP, the concatenation through a joint MLP;
    logits [n] ([n, out_dim] for several outputs)."""

    def __init__(self, x_trunk: nn.Module, z_branch: nn.Module, joint: nn.Module) -> None:
        super().__init__()
        self.x_trunk, self.z_branch, self.joint = x_trunk, z_branch, joint

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.joint(torch.cat([self.x_trunk(x), self.z_branch(z)], dim=-1)).squeeze(-1)


class ImageDecoder(nn.Module):
    """z [n, z_dim] -> image [n, C, H, W] in [0, 1]."""

    def __init__(self, layers: nn.Sequential) -> None:
        super().__init__()
        self.layers = layers

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(z)


def init_conv(module: nn.Module, std: float) -> nn.Module:
    """Weights N(0, std) (DCGAN, ALI), biases 0; BatchNorm keeps PyTorch's (1, 0)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def _image_shape(arch: Architecture) -> tuple[int, int, int]:
    if len(arch.x_shape) != 3 or arch.x_shape[1] != arch.x_shape[2]:
        raise UserError(f"architecture {arch.config.name!r} needs square images [C, H, H]; the data is {list(arch.x_shape)} "
                        "(use --preset quick for MLPs)")
    return arch.x_shape  # type: ignore[return-value]


def _mlp(dims: list[int], leak: float, dropout: float) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for a, b in pairwise(dims):
        layers += [nn.Linear(a, b), nn.LeakyReLU(leak)] + ([nn.Dropout(dropout)] if dropout else [])
    return layers


# --- DCGAN family --------------------------------------------------------------------------
def halvings(side: int) -> tuple[int, int]:
    """(number of stride-2 layers, side of the smallest feature map): halve while even and > 4."""
    n = 0
    while side % 2 == 0 and side > 4:
        side //= 2
        n += 1
    return n, side


@ARCHITECTURES.register("dcgan")
class DCGAN(Architecture):
    """DCGAN-style conv nets for square images (28 -> 7, 32 -> 4, 64 -> 4, 8 -> 4 pixels)."""

    description = ("DCGAN-style conv nets for square images (8/28/32/64 px); widths = channels per "
                   "stride-2 layer (encoder/D use the first ones, the decoder the last ones)")
    image_native = True

    def _plan(self, widths: tuple[int, ...], role: str) -> tuple[int, int, int, tuple[int, ...]]:
        channels, side, _ = _image_shape(self)
        n, small = halvings(side)
        if n < 1:
            raise UserError(f"dcgan: image side {side} cannot be halved (needs an even side > 4)")
        if len(widths) < n:
            raise UserError(f"dcgan: {side}x{side} images need {n} {role} widths, got {len(widths)} ({list(widths)})")
        return channels, n, small, widths

    def _down(self, widths: tuple[int, ...], role: str, first_bn: bool) -> tuple[nn.Module, int, int]:
        """(trunk, flat feature size, channels of its last layer)."""
        channels, n, small, widths = self._plan(widths, role)
        layers: list[nn.Module] = []
        c = channels
        for i, w in enumerate(widths[:n]):
            bn = self.config.batchnorm and (first_bn or i > 0)
            layers += [nn.Conv2d(c, w, 4, 2, 1, bias=not bn)] + ([nn.BatchNorm2d(w)] if bn else [])
            layers.append(nn.LeakyReLU(DCGAN_LEAK))
            c = w
        return ConvTrunk(nn.Sequential(*layers)), c * small * small, c

    def encoder(self, out_dim: int, noise_dim: int) -> nn.Module:
        trunk, features, _ = self._down(self.config.encoder_hidden, "encoder", first_bn=True)
        return init_conv(ImageEncoder(trunk, features, out_dim, noise_dim), self.config.init_std)

    def decoder(self) -> nn.Module:
        channels, n, small, widths = self._plan(self.config.decoder_hidden, "decoder")
        widths = widths[len(widths) - n:]
        bn = self.config.batchnorm
        layers: list[nn.Module] = [nn.Linear(self.z_dim, widths[0] * small * small, bias=not bn),
                                   nn.Unflatten(1, (widths[0], small, small))]
        layers += [nn.BatchNorm2d(widths[0])] if bn else []
        layers.append(nn.ReLU())
        for c, w in pairwise(widths):
            layers += [nn.ConvTranspose2d(c, w, 4, 2, 1, bias=not bn)] + ([nn.BatchNorm2d(w)] if bn else [])
            layers.append(nn.ReLU())
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Sigmoid()]
        return init_conv(ImageDecoder(nn.Sequential(*layers)), self.config.init_std)

    def discriminator(self) -> nn.Module:
        trunk, features, _ = self._down(self.config.discriminator_hidden, "discriminator", first_bn=False)
        return init_conv(ImageDiscriminator(trunk, features), self.config.init_std)

    def joint_discriminator(self, out_dim: int = 1) -> nn.Module:
        trunk, features, last = self._down(self.config.discriminator_hidden, "discriminator", first_bn=False)
        width = 2 * last  # z branch and joint layer (BiGAN-style: D(x) features joined with an MLP of z)
        z_branch = nn.Sequential(*_mlp([self.z_dim, width], DCGAN_LEAK, 0.0))
        joint = nn.Sequential(*_mlp([features + width, width], DCGAN_LEAK, 0.0), nn.Linear(width, out_dim))
        return init_conv(JointDiscriminator(trunk, z_branch, joint), self.config.init_std)


# --- the ALI paper's 32x32 networks -----------------------------------------------------------
ALI_ENCODER = ((5, 1), (4, 2), (4, 1), (4, 2), (4, 1), (1, 1))  # then a 1x1 conv to 2|z|
ALI_DECODER = ((4, 1), (4, 2), (4, 1), (4, 2), (5, 1), (1, 1))  # transposed, then a 1x1 conv to C
ALI_D_X = ((5, 1), (4, 2), (4, 1), (4, 2), (4, 1))
ALI_DROPOUT = 0.2


@ARCHITECTURES.register("ali32")
class ALI32(Architecture):
    """The ALI paper's 32x32 encoder, decoder and D(x, z) (CIFAR-10 / SVHN, anchors section 5)."""

    description = ("ALI paper's 32x32 conv nets: encoder 6 widths, decoder 6, D 7 "
                   "(5 for x, 1 for z's two 1x1 layers, 1 for the joint 1x1 layers)")
    image_native = True

    def _check(self, widths: tuple[int, ...], n: int, role: str) -> tuple[int, ...]:
        _, side, _ = _image_shape(self)
        if side != 32:
            raise UserError(f"ali32 is for 32x32 images; the data is {side}x{side} (use --preset dcgan)")
        if len(widths) != n:
            raise UserError(f"ali32 needs {n} {role} widths, got {len(widths)} ({list(widths)})")
        return widths

    def _x_trunk(self) -> ConvTrunk:
        widths = self._check(self.config.discriminator_hidden, 7, "discriminator")
        layers: list[nn.Module] = []
        c = self.x_shape[0]
        for (k, s), w in zip(ALI_D_X, widths):
            layers += [nn.Dropout(ALI_DROPOUT), nn.Conv2d(c, w, k, s), nn.LeakyReLU(ALI_LEAK)]
            c = w
        return ConvTrunk(nn.Sequential(*layers))

    def encoder(self, out_dim: int, noise_dim: int) -> nn.Module:
        widths = self._check(self.config.encoder_hidden, 6, "encoder")
        layers: list[nn.Module] = []
        c = self.x_shape[0]
        for (k, s), w in zip(ALI_ENCODER, widths):
            layers += [nn.Conv2d(c, w, k, s, bias=False), nn.BatchNorm2d(w), nn.LeakyReLU(ALI_LEAK)]
            c = w
        # the paper's last 1x1 conv on the 1x1 map is the linear head of ImageEncoder
        return init_conv(ImageEncoder(ConvTrunk(nn.Sequential(*layers)), c, out_dim, noise_dim), self.config.init_std)

    def decoder(self) -> nn.Module:
        widths = self._check(self.config.decoder_hidden, 6, "decoder")
        layers: list[nn.Module] = [nn.Unflatten(1, (self.z_dim, 1, 1))]
        c = self.z_dim
        for (k, s), w in zip(ALI_DECODER, widths):
            conv = nn.ConvTranspose2d(c, w, k, s, bias=False) if k > 1 else nn.Conv2d(c, w, 1, bias=False)
            layers += [conv, nn.BatchNorm2d(w), nn.LeakyReLU(ALI_LEAK)]
            c = w
        layers += [nn.Conv2d(c, self.x_shape[0], 1), nn.Sigmoid()]
        return init_conv(ImageDecoder(nn.Sequential(*layers)), self.config.init_std)

    def discriminator(self) -> nn.Module:
        widths = self.config.discriminator_hidden
        return init_conv(ImageDiscriminator(self._x_trunk(), widths[4]), self.config.init_std)

    def joint_discriminator(self, out_dim: int = 1) -> nn.Module:
        trunk = self._x_trunk()
        x_features, z_width, joint_width = self.config.discriminator_hidden[4:]
        z_branch = nn.Sequential(*_mlp([self.z_dim, z_width, z_width], ALI_LEAK, ALI_DROPOUT))
        joint = nn.Sequential(*_mlp([x_features + z_width, joint_width, joint_width], ALI_LEAK, ALI_DROPOUT),
                              nn.Linear(joint_width, out_dim))
        return init_conv(JointDiscriminator(trunk, z_branch, joint), self.config.init_std)
