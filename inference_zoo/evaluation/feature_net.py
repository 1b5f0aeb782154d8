"""The fixed feature network that image sample-quality metrics (KID, PRDC) are computed in.

A small convolutional classifier, trained once per dataset on its training split with a fixed
seed and recipe, on one CPU thread (the same weights from any process on a machine), and cached
under the data folder (``--data-root``, default ./data): ``feature_nets/<dataset>-<digest>.pt``,
the digest naming the dataset, its options and the recipe. Its held-out accuracy is stored with
it and reported beside the metrics (``feature_net_acc``): features of a classifier that cannot
tell the classes apart say little about samples. The features are its last hidden layer
(global average of the last convolution, ``WIDTHS[-1]`` numbers per image).

Nothing is downloaded: this is not Inception, and numbers in its space compare only with numbers
in the same space (same dataset, same recipe).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.config import DataConfig
from ..core.errors import UserError
from ..core.fileio import load_torch, save_torch
from ..core.results import safe_name
from ..data import Dataset

#: the training recipe; any change gives a new cache file (it is part of the digest)
#: (steps: ``epochs`` passes over the training images, at most ``max_steps``)
RECIPE = {"version": 1, "widths": [32, 64, 128], "epochs": 40, "max_steps": 1500, "batch_size": 64, "lr": 1e-3,
          "train_images": 60_000, "test_images": 10_000, "seed": 20161}
WIDTHS = RECIPE["widths"]
_loaded: dict[Path, "FeatureNet"] = {}


class FeatureNet(nn.Module):
    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        layers, width = [], channels
        for i, out in enumerate(WIDTHS):
            layers += [nn.Conv2d(width, out, 3, stride=1 if i == 0 else 2, padding=1), nn.ReLU()]
            width = out
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(width, classes)
        self.test_accuracy = float("nan")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor, batch: int = 500) -> torch.Tensor:
        """[n, classes] softmax of images [n, C, H, W] in [0, 1] (computed on the CPU, as trained)."""
        x = x.detach().float().cpu()
        return torch.cat([self(x[i:i + batch]).softmax(1) for i in range(0, len(x), batch)])

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch: int = 500) -> np.ndarray:
        """[n, WIDTHS[-1]] float64 features of images [n, C, H, W] in [0, 1]."""
        x = x.detach().float().cpu()
        return torch.cat([self.body(x[i:i + batch]) for i in range(0, len(x), batch)]).double().numpy()


def cache_path(data: DataConfig, x_shape: tuple[int, ...], classes: int, root: Path) -> Path:
    identity = {"data": data.name, "options": data.options, "shape": list(x_shape), "classes": classes,
                "recipe": RECIPE}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    return root / "feature_nets" / f"{safe_name(data.label())}-{digest}.pt"


def feature_net(dataset: Dataset, data: DataConfig) -> FeatureNet:
    """The dataset's feature network: from this process's memory, the cache file, or trained now."""
    from ..data.images import data_root

    path = cache_path(data, dataset.x_shape, dataset.n_classes, data_root())
    if path not in _loaded:
        if path.is_file():
            net = FeatureNet(dataset.x_shape[0], dataset.n_classes)
            state = load_torch(path)
            try:
                net.load_state_dict(state["model"])
                net.test_accuracy = float(state["test_accuracy"])
            except (KeyError, TypeError, RuntimeError):
                raise UserError(f"{path} is not a feature network of this dataset; delete it to train it again") from None
        else:
            net = _train(dataset)
            save_torch(path, {"model": net.state_dict(), "test_accuracy": net.test_accuracy, "recipe": RECIPE,
                              "data": dataclasses.asdict(data)})
        _loaded[path] = net.eval()
    return _loaded[path]


def _train(dataset: Dataset) -> FeatureNet:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same weights from any process on this machine
    try:
        with torch.random.fork_rng(devices=[]):  # leaves the process's generator as it was
            return _fit(dataset)
    finally:
        torch.set_num_threads(threads)


def _fit(dataset: Dataset) -> FeatureNet:
    g = torch.Generator().manual_seed(RECIPE["seed"])
    torch.manual_seed(RECIPE["seed"])  # the initial weights
    net = FeatureNet(dataset.x_shape[0], dataset.n_classes)
    x, y = dataset.sample(RECIPE["train_images"], g)
    x, y = x.cpu(), y.cpu()
    net.train()
    steps = min(RECIPE["max_steps"], math.ceil(RECIPE["epochs"] * len(x) / RECIPE["batch_size"]))
    fit_classifier(net, net.parameters(), x, y, steps, RECIPE["batch_size"], g, lr=RECIPE["lr"])
    net.eval()
    xt, yt = dataset.held_out(RECIPE["test_images"], g)
    net.test_accuracy = float((predict(net, xt.cpu()) == yt.cpu()).double().mean())
    return net


@torch.enable_grad()  # callers run inside the evaluation, without gradients
def fit_classifier(logits_of, parameters, x: torch.Tensor, y: torch.Tensor, steps: int, batch: int,
                   generator: torch.Generator, **adam) -> None:
    """Adam (``adam``: its settings) on the cross-entropy of ``steps`` minibatches of ``batch``
    examples of (x, y), drawn with replacement by ``generator``; ``logits_of(x)`` gives the logits."""
    opt = torch.optim.Adam(parameters, **adam)
    for _ in range(steps):
        pick = torch.randint(len(y), (batch,), generator=generator).to(x.device)
        loss = nn.functional.cross_entropy(logits_of(x[pick]), y[pick])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


@torch.no_grad()
def predict(logits_of, x: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """The argmax class of each x, ``batch`` at a time."""
    return torch.cat([logits_of(x[i:i + batch]).argmax(-1) for i in range(0, len(x), batch)])


def sample_quality(dataset: Dataset, data: DataConfig, real: torch.Tensor, generated: torch.Tensor,
                   seed: int) -> dict[str, Any]:
    """KID and PRDC of ``generated`` against ``real`` images in the feature network's space."""
    from .. import metrics as M

    net = feature_net(dataset, data)
    fr, fg = net.features(real), net.features(generated)
    kid, _ = M.kid(fr, fg, seed=seed)
    k = min(5, len(fr) - 1, len(fg) - 1)
    return {"kid": kid, **M.prdc(fr, fg, k=k), "feature_net_acc": net.test_accuracy}


__all__ = ["FeatureNet", "RECIPE", "cache_path", "feature_net", "fit_classifier", "predict", "sample_quality"]
