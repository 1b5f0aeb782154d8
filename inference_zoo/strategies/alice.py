"""ALICE (Li et al. 2017, arXiv:1709.01215): ALI plus a cycle-consistency term that makes the
encoder-decoder pair invertible, the non-identifiability ALI's identity toy shows.

The generator side (encoder and decoder) adds ``cycle_weight`` times one of
- ``l2`` / ``l1``: the explicit cycle loss, the mean over points of ||x - G(E(x))||^2 (or |.|);
- ``adversarial``: a second discriminator D_xx learns to tell (x, x) from (x, G(E(x))), and the
  generator side learns to fool it (ALICE's adversarial cycle, for when a pixel-wise loss is the
  wrong measure).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.errors import UserError, did_you_mean
from ..nets import NetworkFactory
from .adversarial import adversarial_game, check_generator_loss
from .ali import ALI
from .base import Phase, StepOutput
from .registry import STRATEGIES

CYCLES = ("l2", "l1", "adversarial")


@STRATEGIES.register("alice")
class ALICE(ALI):
    name = "alice"
    description = "ALICE: ALI + cycle_weight x cycle consistency on x (l2, l1, or adversarial D(x, x'))"
    stackable = True

    search_space = {"cycle_weight": ("log", 0.1, 10.0)}
    member_options = {"cycle_weight": None}  # a weight on each member's loss: any values stack

    @dataclass
    class Options:
        generator_loss: str = "nonsaturating"
        cycle: str = "l2"  # l2 | l1 | adversarial
        cycle_weight: float = 1.0

        def __post_init__(self) -> None:
            check_generator_loss(self.generator_loss)
            if self.cycle not in CYCLES:
                raise UserError(f"cycle must be one of {', '.join(CYCLES)}; got {self.cycle!r}"
                                f"{did_you_mean(self.cycle, CYCLES)}")
            if not self.cycle_weight >= 0:
                raise UserError(f"cycle_weight must be >= 0, got {self.cycle_weight}")

    def __init__(self, nets: NetworkFactory, options: "ALICE.Options | None" = None) -> None:
        super().__init__(nets, options)
        if self.options.cycle == "adversarial":
            if nets.arch.image_native:
                raise UserError("alice: cycle=adversarial needs vector networks (a pair discriminator "
                                "D(x, x') over images is not built here); use cycle=l2 or l1")
            # D(x, x'): the joint discriminator's architecture with a code the size of x
            self.cycle_discriminator = nets.reshaped(z_dim=nets.x_dim).joint_discriminator("cycle_discriminator")

    def phases(self, steps: int) -> list[Phase]:
        discriminators = ("discriminator", "cycle_discriminator") if self.options.cycle == "adversarial" else ("discriminator",)
        return [Phase(self.name, steps, {"discriminator": discriminators, "generator": ("encoder", "decoder")})]

    def step(self, phase: str, x: torch.Tensor) -> StepOutput:
        z = self.prior(self.batch_size(x))
        z_hat = self.encoder(x)
        d_loss, g_loss, logs = adversarial_game(self.discriminator, (x, z_hat), (self.decoder(z), z),
                                                self.options.generator_loss, self.joint_pass)
        x_cycle = self.decoder(z_hat)
        if self.options.cycle == "adversarial":
            d_cycle, g_cycle, cycle_logs = adversarial_game(self.cycle_discriminator, (x, x), (x, x_cycle),
                                                            self.options.generator_loss, self.joint_pass)
            d_loss = d_loss + d_cycle  # disjoint parameters: each discriminator gets its own gradient
            logs = {**logs, **{f"cycle_{k}": v for k, v in cycle_logs.items()}}
        else:
            error = x - x_cycle
            per_point = error.pow(2) if self.options.cycle == "l2" else error.abs()
            g_cycle = self.sum_x(per_point).mean(-1)
        logs["cycle"] = g_cycle.detach()
        return StepOutput({"discriminator": d_loss, "generator": g_loss + self.options.cycle_weight * g_cycle}, logs)
