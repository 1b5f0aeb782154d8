"""Adversarial losses shared by ALI, BiGAN, the GAN phase and post-hoc inference.

Convention: ``real`` logits are the discriminator's on data-side pairs (x, E(x)) or x, ``fake``
on generator-side pairs (G(z), z) or G(z). The discriminator minimises
softplus(-real) + softplus(fake). The generator side (decoder and/or encoder) either minimises the
non-saturating, label-swapped loss softplus(real) + softplus(-fake) (ALI paper's V'(D, G), the
default) or the paper's minimax objective, the negated discriminator loss.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..core.errors import UserError, did_you_mean
from .base import member_apply

GENERATOR_LOSSES = ("nonsaturating", "minimax")

@dataclass(frozen=True)
class JointPass:
    """The engine's choice to run both sides through D as one batch (concatenated along
    ``batch_axis``: 1 in a stacked run), with ``both_players(discriminator, inputs)`` giving
    (logits for D's loss, logits for the generator side's loss) in one go where it returns a pair
    (``engine/stack/backward.py``)."""

    batch_axis: int
    both_players: Callable | None = None


def adversarial_game(discriminator: Callable[..., torch.Tensor], real: tuple[torch.Tensor, ...],
                     fake: tuple[torch.Tensor, ...], generator_loss: str, joint: JointPass | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """(D's loss, the generator side's loss, D's logs) from D on the data side's inputs ``real``
    and the generator side's ``fake``: the adversarial half of ALI, BiGAN, the GAN phase and
    post-hoc inference.

    By default two passes through D (the reference loop). Strategies pass their ``joint_pass``
    attribute, which the engine sets: then both sides go through D as one batch, and its
    ``both_players`` function, where it applies, gives each loss its own logits so one backward
    chain serves both (``engine/stack/backward.py``).
    Only valid for discriminators without batch statistics (ours: maxout MLPs), and only if, as
    ``train.update`` does, D's loss is differentiated for D's parameters alone and the generator
    side's loss for the other players' alone.
    """
    if joint is None:
        d_real, d_fake = discriminator(*real), discriminator(*fake)
        g_real, g_fake = d_real, d_fake
    else:
        axis, both_players = joint.batch_axis, joint.both_players
        n = real[0].shape[axis]
        inputs = tuple(torch.cat([r, f], dim=axis) for r, f in zip(real, fake))
        pair = both_players(discriminator, inputs) if both_players is not None else None
        d_logits, g_logits = pair if pair is not None else (discriminator(*inputs),) * 2
        d_real, d_fake = d_logits.split(n, dim=-1)
        g_real, g_fake = g_logits.split(n, dim=-1)
    d_loss, g_loss = adversarial_losses(d_real, d_fake, generator_loss, g_real, g_fake)
    return d_loss, g_loss, discriminator_logs(d_real, d_fake)


def adversarial_losses(real: torch.Tensor, fake: torch.Tensor, generator_loss: str,
                       g_real: torch.Tensor | None = None, g_fake: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (discriminator loss, generator-side loss) from D's logits on both sides.

    Logits are [batch] (one run) or [K, batch] (K stacked runs): losses average the last axis
    only, so a stacked run returns one loss per member. ``g_real``/``g_fake``, where given,
    are the same logits on a separate autograd path for the generator side's loss.
    """
    d_loss = _discriminator_loss(real, fake)
    same_path = g_real is None or g_fake is None or (g_real is real and g_fake is fake)
    if same_path:
        g_real, g_fake = real, fake
    if generator_loss == "nonsaturating":
        g_loss = _softplus(g_real).mean(-1) + _softplus(-g_fake).mean(-1)
    elif generator_loss == "minimax":
        g_loss = -(d_loss if same_path else _discriminator_loss(g_real, g_fake))
    else:
        raise ValueError(f"generator_loss must be one of {GENERATOR_LOSSES}, got {generator_loss!r}")
    return d_loss, g_loss


def _discriminator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return _softplus(-real).mean(-1) + _softplus(fake).mean(-1)


def _softplus(logits: torch.Tensor) -> torch.Tensor:
    """softplus of logits [n] or [K, n], each stacked member's on its own (``member_apply``)."""
    return member_apply(F.softplus, logits, 1)


def check_generator_loss(name: str) -> None:
    """Called by strategies' Options so a typo fails before training, not after the GAN phase."""
    if name not in GENERATOR_LOSSES:
        raise UserError(f"generator_loss must be one of {', '.join(GENERATOR_LOSSES)}; got {name!r}"
                        f"{did_you_mean(name, GENERATOR_LOSSES)}")


def discriminator_logs(real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
    """D's mean probability on each side: the first thing to read when a GAN misbehaves."""
    return {"d_real": member_apply(torch.sigmoid, real.detach(), 1).mean(-1),
            "d_fake": member_apply(torch.sigmoid, fake.detach(), 1).mean(-1)}
