"""KID and precision / recall / density / coverage on hand-computed cases; the feature network
they are computed in; their rows in an image comparison."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from inference_zoo import metrics as M
from inference_zoo.cli import main
from inference_zoo.data import build_dataset, parse_data_spec
from inference_zoo.evaluation import feature_net as F


def test_polynomial_mmd_hand():
    # k(a, b) = (a b + 1)^3 in 1-D. real {1, 0}: k(1, 0) = 1, twice over 2 ordered pairs -> 1;
    # generated {2, 2}: k(2, 2) = 125 -> 125; cross: k(1, 2) = 27 twice, k(0, 2) = 1 twice -> 2 * 56 / 4 = 28
    assert M.polynomial_mmd2_unbiased([[1.0], [0.0]], [[2.0], [2.0]]) == pytest.approx(1 + 125 - 28)
    # the kernel divides the dot product by the width: two copies of each coordinate change nothing
    assert M.polynomial_mmd2_unbiased([[1.0, 1.0], [0.0, 0.0]], [[2.0, 2.0], [2.0, 2.0]]) == pytest.approx(98)


def test_kid_over_whole_sets_is_the_mmd_and_over_subsets_is_seeded():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 3)), rng.normal(1.0, size=(50, 3))
    assert M.kid(x, y) == (M.polynomial_mmd2_unbiased(x, y), 0.0)
    a, b = M.kid(x, y, subsets=20, subset_size=10, seed=3), M.kid(x, y, subsets=20, subset_size=10, seed=3)
    assert a == b and a[1] > 0
    assert M.kid(x, y, subsets=20, subset_size=10, seed=4) != a


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, (6, 2), elements=st.floats(-3, 3)), arrays(np.float64, (5, 2), elements=st.floats(-3, 3)))
def test_mmd_is_symmetric(x, y):
    assert M.polynomial_mmd2_unbiased(x, y) == pytest.approx(M.polynomial_mmd2_unbiased(y, x), rel=1e-9, abs=1e-6)


def test_prdc_hand():
    # real {0, 1, 3}, k = 1: radii 1, 1, 2. generated {0.5, 2.5, 10}: radii 2, 2, 7.5.
    # precision: 0.5 (in the balls of 0 and 1), 2.5 (in the ball of 3), 10 (in none) -> 2/3
    # recall: 0, 1 and 3 are all within 2 of 0.5 or 2.5 -> 1
    # density: 0.5 in 2 balls, 2.5 in 1, 10 in 0 -> 3 / (1 * 3) = 1
    # coverage: each real ball holds a generated point -> 1
    out = M.prdc([[0.0], [1.0], [3.0]], [[0.5], [2.5], [10.0]], k=1)
    assert out == pytest.approx({"precision": 2 / 3, "recall": 1.0, "density": 1.0, "coverage": 1.0})
    # strict "<" as in the authors' code: a generated point exactly on a ball's edge is outside
    assert M.prdc([[0.0], [1.0]], [[2.0], [5.0]], k=1)["precision"] == 0.0


def test_prdc_of_a_collapsed_generator():
    # real 0..9, k = 2: interior radii 1 (two neighbours at 1), the ends 2. All samples at 4: only
    # the ball of 4 holds them (3 and 5 are at distance 1, not < 1); generated radii are 0
    real = np.arange(10.0).reshape(-1, 1)
    out = M.prdc(real, np.full((10, 1), 4.0), k=2)
    assert out == pytest.approx({"precision": 1.0, "recall": 0.0, "density": 10 / (2 * 10), "coverage": 0.1})


@pytest.mark.parametrize("call", [
    lambda: M.prdc([[0.0], [1.0]], [[0.0], [1.0]], k=2),
    lambda: M.prdc([[0.0, 1.0]] * 3, [[0.0]] * 3, k=1),
    lambda: M.kid([[0.0]], [[1.0]]),
    lambda: M.polynomial_mmd2_unbiased([[np.nan], [0.0]], [[1.0], [2.0]]),
])
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


@pytest.fixture
def tiny_images(tmp_path, monkeypatch):
    """A tiny labelled image set whose feature network is cached under a fresh data folder."""
    from inference_zoo.data.images import set_data_location

    set_data_location(tmp_path)
    monkeypatch.setattr(F, "_loaded", {})
    config = parse_data_spec("fake:side=8,channels=1,train_size=40,test_size=20,classes=2")
    dataset = build_dataset(config)
    yield config, dataset, F.cache_path(config, dataset.x_shape, dataset.n_classes, tmp_path)
    set_data_location(None)


def test_the_feature_network_is_trained_once_and_cached(tiny_images, monkeypatch):
    config, dataset, path = tiny_images
    net = F.feature_net(dataset, config)
    assert path.is_file() and 0 <= net.test_accuracy <= 1
    x, _ = dataset.held_out(20, torch.Generator())
    monkeypatch.setattr(F, "_loaded", {})  # a new process: read from the file, not trained again
    monkeypatch.setattr(F, "_train", lambda *a: pytest.fail("trained again"))
    again = F.feature_net(dataset, config)
    assert np.array_equal(net.features(x), again.features(x)) and again.test_accuracy == net.test_accuracy
    assert net.features(x).shape == (20, F.WIDTHS[-1])
    trained_again = F._fit(dataset)  # seeded: the same weights when trained anew
    assert np.array_equal(trained_again.features(x), net.features(x))


def test_an_image_comparison_reports_sample_quality_with_the_feature_networks_accuracy(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--methods", "vae", "--data", "digits", "--steps", "3", "--batch-size", "16",
                 "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
    assert "kid" in capsys.readouterr().out
    with open(out / "results.csv") as f:
        values = {r["metric"]: float(r["value"]) for r in csv.DictReader(f)}
    assert math.isfinite(values["kid"])
    for metric in ("precision", "recall", "coverage"):
        assert 0 <= values[metric] <= 1
    assert values["density"] >= 0
    assert values["feature_net_acc"] > 0.9  # the recipe reaches 98.6 % on the 360 held-out digits


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    """Randomly initialised InceptionV3 weights in torch-fidelity's format: the plumbing of
    --fid-weights without the real file (which would have to be downloaded)."""
    inception = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    original_url, original_load = inception.load_state_dict_from_url, inception.FeatureExtractorInceptionV3.load_state_dict
    inception.load_state_dict_from_url = lambda *a, **k: None
    inception.FeatureExtractorInceptionV3.load_state_dict = lambda self, state: None
    try:
        torch.manual_seed(0)
        net = inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    finally:
        inception.load_state_dict_from_url, inception.FeatureExtractorInceptionV3.load_state_dict = original_url, original_load
    path = tmp_path_factory.mktemp("inception") / "weights.pth"
    torch.save(net.state_dict(), path)
    return path


def test_fid_with_the_users_inception_weights(inception_weights, tmp_path, capsys):
    from inference_zoo.evaluation.fid import inception_fid

    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert inception_fid(str(inception_weights), x, x) == pytest.approx(0.0, abs=1e-3)
    out = tmp_path / "cmp"
    assert main(["compare", "--methods", "vae", "--data", "fake:side=16,train_size=24,test_size=12,classes=2",
                 "--steps", "2", "--batch-size", "8", "--device", "cpu", "--no-progress", "--out", str(out),
                 "--fid-weights", str(inception_weights)]) == 0
    with open(out / "results.csv") as f:
        values = {r["metric"]: float(r["value"]) for r in csv.DictReader(f)}
    assert math.isfinite(values["fid"]) and values["fid"] > 0
    assert str(inception_weights) in (out / "runs").rglob("config.json").__next__().read_text()


def test_fid_weights_that_are_missing_or_wrong_are_one_line(tmp_path, capsys):
    assert main(["compare", "--data", "digits", "--steps", "1", "--out", str(tmp_path / "a"),
                 "--fid-weights", str(tmp_path / "none.pth")]) == 2
    assert "no such file" in capsys.readouterr().err
    pytest.importorskip("torch_fidelity")
    junk = tmp_path / "junk.pth"
    torch.save({"weight": torch.zeros(2)}, junk)
    assert main(["compare", "--methods", "vae", "--data", "fake:side=16,train_size=24,test_size=12,classes=2",
                 "--steps", "1", "--batch-size", "8", "--no-progress", "--out", str(tmp_path / "b"),
                 "--fid-weights", str(junk)]) == 2
    assert "not InceptionV3 weights" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()  # refused before anything was trained or written


def test_a_damaged_feature_network_file_is_one_line(tiny_images):
    from inference_zoo.core.errors import UserError

    config, dataset, path = tiny_images
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="feature_nets"):
        F.feature_net(dataset, config)
    torch.save({"model": {"nothing": torch.zeros(1)}, "test_accuracy": 1.0}, path)
    with pytest.raises(UserError, match="delete it to train it again"):
        F.feature_net(dataset, config)
