"""Semi-supervised ALI (the ALI paper, section 4.4; after Salimans et al. 2016): a joint
discriminator with a class output.

D(x, z) gives K logits l_1..l_K; the (K+1)-th class, "generated", has its logit fixed at 0, so
D's probability that a pair is data is sigmoid(logsumexp_k l_k). The discriminator learns
- ALI's game on that probability: unlabelled data pairs (x, E(x)) are "one of the K classes",
  generated pairs (G(z), z) are class K+1 (``adversarial_game`` on the logsumexp);
- plus ``label_weight`` times the cross-entropy of the labelled data pairs (x_l, E(x_l)) to their
  class, over the K classes. The labelled examples are ``labels`` training examples balanced over
  the classes and fixed by the seed (``data.labelled_subset``); the engine attaches them.
The encoder and decoder play ALI's game against D as in ``ali``. The classifier at test time is
argmax_k l_k(x, E(x)), its logits averaged over ``CLASSIFY_DRAWS`` encoder draws.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..core.errors import UserError
from ..nets import NetworkFactory
from .adversarial import adversarial_game, check_generator_loss
from .base import Phase, StepOutput, Strategy
from .registry import STRATEGIES

CLASSIFY_DRAWS = 8


@STRATEGIES.register("ssali")
class SemiSupervisedALI(Strategy):
    name = "ssali"
    description = "semi-supervised ALI: D(x, z) with K class logits (+ 'generated'), trained on `labels` labelled examples"
    stackable = False

    @dataclass
    class Options:
        generator_loss: str = "nonsaturating"
        labels: int = 100  # labelled training examples, balanced over the classes
        label_weight: float = 1.0
        label_batch: int = 100  # labelled pairs per step (drawn with replacement from the labelled set)

        def __post_init__(self) -> None:
            check_generator_loss(self.generator_loss)
            if self.labels < 1 or self.label_batch < 1 or not self.label_weight >= 0:
                raise UserError("ssali: labels and label_batch must be >= 1 and label_weight >= 0")

    def __init__(self, nets: NetworkFactory, options: "SemiSupervisedALI.Options | None" = None) -> None:
        super().__init__(nets, options)
        self.n_classes = nets.n_classes
        if self.n_classes < 2:
            raise UserError("ssali needs labelled data with at least two classes (e.g. --data digits)")
        self.encoder = nets.encoder("encoder", out_dim=self.z_dim, noise_dim=self.z_dim)
        self.decoder = nets.decoder("decoder")
        self.discriminator = nets.joint_discriminator("joint_discriminator", out_dim=self.n_classes)
        # the labelled subset, kept with the weights so that a resumed run trains on the same one
        self.labelled_examples = self.options.labels
        self.register_buffer("labelled_x", torch.zeros(self.options.labels, *self.x_shape))
        self.register_buffer("labelled_y", torch.zeros(self.options.labels, dtype=torch.long))

    def attach_labelled(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.labelled_x.copy_(x.reshape(self.labelled_x.shape))
        self.labelled_y.copy_(y)

    def data_logit(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log D / (1 - D): logsumexp of the class logits against the generated class's 0."""
        return torch.logsumexp(self.discriminator(x, z), dim=-1)

    def phases(self, steps: int) -> list[Phase]:
        groups = {"discriminator": ("discriminator",), "generator": ("encoder", "decoder")}
        return [Phase(self.name, steps, groups)]

    def step(self, phase: str, x: torch.Tensor) -> StepOutput:
        z = self.prior(self.batch_size(x))
        d_loss, g_loss, logs = adversarial_game(self.data_logit, (x, self.encoder(x)), (self.decoder(z), z),
                                                self.options.generator_loss)
        pick = torch.randint(len(self.labelled_y), (self.options.label_batch,), device=self.labelled_y.device)
        x_l, y_l = self.labelled_x[pick], self.labelled_y[pick]
        logits = self.discriminator(x_l, self.encoder(x_l))
        supervised = F.cross_entropy(logits, y_l)
        logs["label_loss"] = supervised.detach()
        logs["label_acc"] = (logits.argmax(-1) == y_l).float().mean().detach()
        # the engine differentiates each loss for its own player only: the cross-entropy trains D
        return StepOutput({"discriminator": d_loss + self.options.label_weight * supervised, "generator": g_loss}, logs)

    @torch.no_grad()
    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """The class of each x: argmax over the K class logits of D(x, E(x)), averaged over draws."""
        logits = sum(self.discriminator(x, self.encoder(x)) for _ in range(CLASSIFY_DRAWS))
        return logits.argmax(-1)
