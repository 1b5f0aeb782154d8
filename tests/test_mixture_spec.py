"""The ``mixture`` dataset: means from a file or inline, per-component stds and weights, and the
coverage metrics that use them."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from inference_zoo import metrics as M
from inference_zoo.cli import main
from inference_zoo.core.errors import UserError
from inference_zoo.data import build_dataset, parse_data_spec
from inference_zoo.experiment.runs import run_one

from conftest import tiny_config

MEANS = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0], [-3.0, -3.0]])


@pytest.fixture
def means_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.savetxt("means.csv", MEANS, delimiter=",")
    np.save("means.npy", MEANS)
    return tmp_path


def test_csv_npy_and_inline_give_one_config(means_files):
    inline = "0 0;3 0;0 3;-3 -3"
    configs = [parse_data_spec(f"mixture:means={m},std=0.1") for m in ("means.csv", "means.npy", inline)]
    assert configs[0] == configs[1] == configs[2]
    assert configs[0].options["means"] == "0.0 0.0;3.0 0.0;0.0 3.0;-3.0 -3.0"
    # the label names long inline means by a digest, the short options as given
    assert configs[0].label().startswith("mixture:means=#") and configs[0].label().endswith(",std=0.1")
    (means_files / "means.csv").unlink()  # a run's config never needs the file again
    ds = build_dataset(configs[0])
    np.testing.assert_array_equal(ds.means, MEANS)
    np.testing.assert_array_equal(ds.stds, [0.1] * 4)
    assert ds.weights is None and ds.n_modes == 4


def test_per_component_std_and_weights_are_sampled(means_files):
    ds = build_dataset(parse_data_spec("mixture:means=means.csv,std=0.1;0.2;0.3;0.4,weights=1;1;1;5"))
    np.testing.assert_allclose(ds.weights, [0.125, 0.125, 0.125, 0.625])
    x, y = ds.sample(40_000, torch.Generator().manual_seed(0))
    share = torch.bincount(y, minlength=4).double() / len(y)
    np.testing.assert_allclose(share.numpy(), ds.weights, atol=0.01)
    for k, std in enumerate([0.1, 0.2, 0.3, 0.4]):
        spread = (x[y == k] - torch.as_tensor(MEANS[k], dtype=torch.float32)).std().item()
        assert spread == pytest.approx(std, rel=0.05)


def test_equal_stds_keep_the_grids_draw():
    """The per-component path is only taken for unequal stds: grid and ring draw what they drew."""
    grid = build_dataset(parse_data_spec("grid"))
    same = build_dataset(parse_data_spec("mixture:means=" + ";".join(f"{a} {b}" for a, b in grid.means) + ",std=0.05"))
    a = grid.sample(64, torch.Generator().manual_seed(3))
    b = same.sample(64, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("spec, message", [
    ("mixture", "means is required"),
    ("mixture:means=missing.csv", "does not exist"),
    ("mixture:means=0 0;1", "different lengths"),
    ("mixture:means=a b", "cannot read means"),
    ("mixture:means=0 0;1 1,std=0.1;0.2;0.3", "std gives 3 values for 2 components"),
    ("mixture:means=0 0;1 1,std=-1", "std must be positive"),
    ("mixture:means=0 0;1 1,weights=1", "weights gives 1 values"),
    ("mixture:means=0 0;1 1,weights=0;0", "not all zero"),
])
def test_bad_mixture_specs_are_one_line(means_files, spec, message):
    with pytest.raises(UserError, match=message):
        parse_data_spec(spec)


def test_bad_mixture_spec_exits_2_on_the_command_line(means_files, capsys):
    assert main(["compare", "--data", "mixture:means=missing.csv", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err


def test_three_sigma_uses_each_components_std():
    means = [[0.0, 0.0], [10.0, 0.0]]
    samples = [[0.25, 0.0], [10.25, 0.0]]
    # distance 0.25 is 2.5 std for std 0.1 (HQ) and 0.25 / 0.05 = 5 std for std 0.05 (not HQ)
    out = M.three_sigma_coverage(samples, means, [0.1, 0.05])
    assert out["modes"] == 1 and out["hq_fraction"] == 0.5


def test_reverse_kl_against_the_weights_hand():
    means = [[0.0, 0.0], [10.0, 0.0]]
    samples = [[0.0, 0.0]] * 3 + [[10.0, 0.0]]  # p = (3/4, 1/4)
    out = M.three_sigma_coverage(samples, means, 0.1, weights=[3, 1])
    assert out["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
    out = M.three_sigma_coverage(samples, means, 0.1, weights=[1, 3])
    expected = 0.75 * math.log(0.75 / 0.25) + 0.25 * math.log(0.25 / 0.75)
    assert out["reverse_kl"] == pytest.approx(expected)
    # uniform weights: the PacGAN definition, sum p log(p k)
    out = M.three_sigma_coverage(samples, means, 0.1)
    assert out["reverse_kl"] == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    assert math.isinf(M.three_sigma_coverage(samples, means, 0.1, weights=[1, 0])["reverse_kl"])


def test_same_mode_rate_uses_the_weights_hand():
    # a point half way between two equal-std components goes to the heavier one
    means = [[0.0, 0.0], [2.0, 0.0]]
    x = [[0.0, 0.0], [2.0, 0.0]]
    midway = [[1.0, 0.0], [1.0, 0.0]]
    assert M.same_mode_rate(x, midway, [0, 1], means, 1.0, weights=[1, 3]) == 0.5
    assert M.same_mode_rate(x, midway, [0, 1], means, 1.0, weights=[3, 1]) == 0.5
    assert M.same_mode_rate(x, midway, [1, 1], means, 1.0, weights=[1, 3]) == 1.0


def test_a_mixture_from_a_file_trains_and_is_scored(means_files):
    config = tiny_config("ali", data="mixture:means=means.npy,std=0.1;0.2;0.3;0.4", steps=10)
    rows = {r["metric"]: r["value"] for r in run_one(config, means_files / "run")}
    assert {"modes_3sigma", "hq_fraction", "reverse_kl", "recon_same_mode"} <= set(rows)
    assert 0 <= rows["modes_3sigma"] <= 4
