"""The baselines semi-supervised ALI is judged against, on the same labelled examples.

- ``label_probe_errors``: for an unsupervised encoder, a logistic regression (the feature probe's:
  standardised codes, L2, C = 1) fitted on the codes E(x) of the seed's labelled subset of each
  size (``data.labelled_subset``), scored on the held-out images: ``label_probe_error_<n>``.
- ``supervised_error``: a network of the same size as semi-supervised ALI's discriminator (the
  same architecture and initial weights, fed z = 0) trained with cross-entropy on the labelled
  pixels alone, scored on the held-out images.
"""
from __future__ import annotations

import numpy as np
import torch

from ..core.config import RunConfig
from ..core.seeding import derive_seed, generator
from ..data import Dataset, labelled_subset
from .feature_net import fit_classifier, predict

#: the supervised baseline's optimiser steps and minibatch (Adam at the run's rate and betas)
SUPERVISED_STEPS, SUPERVISED_BATCH = 1_000, 64


def label_probe_errors(strategy, dataset: Dataset, config: RunConfig, x_test: torch.Tensor,
                       y_test: torch.Tensor) -> dict[str, float]:
    from .. import metrics as M

    out = {}
    device = strategy.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(derive_seed(config.seed, "eval", "labels"))
        test_codes = strategy.encode(x_test.to(device)).cpu().numpy()
        for n in config.eval.label_counts:
            x, y = labelled_subset(dataset, n, config.seed)
            codes = strategy.encode(x.to(device)).cpu().numpy()
            accuracy = M.linear_probe_accuracy(codes, y.numpy(), test_codes, y_test.cpu().numpy())
            out[f"label_probe_error_{n}"] = 1.0 - accuracy
    return out


def supervised_error(strategy, config: RunConfig, x_test: torch.Tensor, y_test: torch.Tensor) -> float:
    """Held-out error of ``strategy``'s discriminator architecture, freshly initialised as the run's
    was, trained on the run's labelled examples (pixels, z = 0) alone."""
    from ..engine.train import build_strategy

    device = strategy.device
    net = build_strategy(config, shapes={"x_shape": list(strategy.x_shape), "n_classes": strategy.n_classes}
                         ).discriminator.to(device).train()
    x_l, y_l = strategy.labelled_x, strategy.labelled_y

    def logits_of(x: torch.Tensor) -> torch.Tensor:  # D(x, 0): a classifier of pixels alone
        return net(x, torch.zeros(len(x), strategy.z_dim, device=device))

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(derive_seed(config.seed, "eval", "supervised"))
        fit_classifier(logits_of, net.parameters(), x_l, y_l, SUPERVISED_STEPS, min(SUPERVISED_BATCH, len(y_l)),
                       generator(config.seed, "eval", "supervised"), lr=config.train.lr,
                       betas=(config.train.beta1, config.train.beta2))
        net.eval()
        predicted = predict(logits_of, x_test.to(device))
    return float(np.mean(predicted.cpu().numpy() != y_test.cpu().numpy()))


__all__ = ["label_probe_errors", "supervised_error"]
