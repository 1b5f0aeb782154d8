"""Adversarial losses shared by ALI, BiGAN, the GAN phase and post-hoc inference.

Convention: ``real`` logits are the discriminator's on data-side pairs (x, E(x)) or x, ``fake``
on generator-side pairs (G(z), z) or G(z). The discriminator minimises
softplus(-real) + softplus(fake). The generator side (decoder and/or encoder) either minimises the
non-saturating, label-swapped loss softplus(real) + softplus(-fake) (ALI paper's V'(D, G), the
default) or the paper's minimax objective, the negated discriminator loss.
"""
from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from ..errors import UserError

GENERATOR_LOSSES = ("nonsaturating", "minimax")

_joint_pass_batch_axis: ContextVar[int | None] = ContextVar("izoo_joint_pass_batch_axis", default=None)


def real_and_fake_logits(discriminator: Callable[..., torch.Tensor], real: tuple[torch.Tensor, ...],
                         fake: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """D's logits on the data side's inputs and on the generator side's.

    By default two passes (the reference loop). Under ``one_discriminator_pass`` both sides go
    through D as one batch: the same maths with half as many, twice as large matmuls, but weight
    gradients summed in another order, so numerics differ in the last bits. Only valid for
    discriminators without batch statistics (ours: maxout MLPs).
    """
    axis = _joint_pass_batch_axis.get()
    if axis is None:
        return discriminator(*real), discriminator(*fake)
    n = real[0].shape[axis]
    logits = discriminator(*(torch.cat([r, f], dim=axis) for r, f in zip(real, fake)))
    return logits.split(n, dim=-1)


@contextlib.contextmanager
def one_discriminator_pass(batch_axis: int) -> Iterator[None]:
    """Let ``real_and_fake_logits`` concatenate both sides along ``batch_axis`` (1 in a stacked run)."""
    token = _joint_pass_batch_axis.set(batch_axis)
    try:
        yield
    finally:
        _joint_pass_batch_axis.reset(token)


def adversarial_losses(real: torch.Tensor, fake: torch.Tensor, generator_loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (discriminator loss, generator-side loss) from one discriminator forward pass.

    Logits are [batch] (one run) or [K, batch] (K vectorised runs): losses average the last axis
    only, so a vectorised run returns one loss per member.
    """
    d_loss = F.softplus(-real).mean(-1) + F.softplus(fake).mean(-1)
    if generator_loss == "nonsaturating":
        g_loss = F.softplus(real).mean(-1) + F.softplus(-fake).mean(-1)
    elif generator_loss == "minimax":
        g_loss = -d_loss
    else:
        raise ValueError(f"generator_loss must be one of {GENERATOR_LOSSES}, got {generator_loss!r}")
    return d_loss, g_loss


def check_generator_loss(name: str) -> None:
    """Called by strategies' Options so a typo fails before training, not after the GAN phase."""
    if name not in GENERATOR_LOSSES:
        raise UserError(f"generator_loss must be one of {', '.join(GENERATOR_LOSSES)}; got {name!r}")


def discriminator_logs(real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
    """D's mean probability on each side: the first thing to read when a GAN misbehaves."""
    return {"d_real": torch.sigmoid(real.detach()).mean(-1), "d_fake": torch.sigmoid(fake.detach()).mean(-1)}
