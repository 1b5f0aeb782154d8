"""Tests for inference_zoo.metrics: hand-computed cases, properties, errors."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference_zoo.metrics import (
    ks_to_standard_normal,
    max_ks_to_standard_normal,
    mmd2_rbf,
    mse,
    nearest_mode,
    pearson_corr,
    responsibility_assign,
    responsibility_coverage,
    same_mode_rate,
    three_sigma_coverage,
)

PROPS = settings(max_examples=50, deadline=None)

# 3 modes used by several hand-computed cases.
MEANS3 = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])


def _phi(t):
    return 0.5 * (1.0 + math.erf(t / math.sqrt(2.0)))


# --------------------------------------------------------------------------- coverage


def test_nearest_mode_hand():
    samples = np.array([[0.0, -1.5], [2.55, 0.0], [4.0, 0.1], [3.0, 4.0]])
    idx, dist = nearest_mode(samples, MEANS3)
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(idx, [0, 1, 1, 2])
    np.testing.assert_allclose(dist, [1.5, 1.45, 0.1, 3.0])


def test_nearest_mode_large_shapes():
    grid = np.array([[a, b] for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)], float)
    samples = np.random.default_rng(0).normal(size=(10000, 2)) * 3
    idx, dist = nearest_mode(samples, grid)
    assert idx.shape == dist.shape == (10000,)
    brute = np.linalg.norm(samples[:, None, :] - grid[None], axis=-1)
    np.testing.assert_array_equal(idx, brute.argmin(1))
    np.testing.assert_allclose(dist, brute.min(1))


def test_three_sigma_hand():
    samples = np.array(
        [
            [0.0, -1.5],  # mode 0 at exactly 3 std -> not HQ (strict)
            [2.55, 0.0],  # mode 1 at 2.9 std -> HQ
            [4.0, 0.1],  # mode 1, HQ
            [0.1, 4.0],  # mode 2, HQ
        ]
    )
    res = three_sigma_coverage(samples, MEANS3, 0.5)
    assert res["modes"] == 2
    assert isinstance(res["modes"], int)
    assert res["hq_fraction"] == 0.75
    # HQ histogram [0, 2, 1] -> p = [0, 2/3, 1/3], k = 3
    expected = (2 / 3) * math.log((2 / 3) * 3) + (1 / 3) * math.log((1 / 3) * 3)
    assert res["reverse_kl"] == pytest.approx(expected, abs=1e-12)


def test_three_sigma_per_component_std():
    samples = np.array([[2.55, 0.0], [0.1, 4.0]])
    res = three_sigma_coverage(samples, MEANS3, [0.5, 0.4, 1.0])
    # 1.45 / 0.4 = 3.625 -> not HQ; 0.1 / 1.0 -> HQ
    assert res["modes"] == 1
    assert res["hq_fraction"] == 0.5
    assert res["reverse_kl"] == pytest.approx(math.log(3))


def test_three_sigma_nearest_is_euclidean_and_nan_without_hq():
    # [2.1, 0] is Euclidean-nearest to mode 1 (1.9 vs 2.1); it would be within
    # 3 std of mode 0 (std 1.0) but is judged against mode 1 (std 0.5): not HQ.
    res = three_sigma_coverage([[2.1, 0.0]], MEANS3, [1.0, 0.5, 0.5])
    assert res["modes"] == 0
    assert res["hq_fraction"] == 0.0
    assert math.isnan(res["reverse_kl"])


def test_reverse_kl_histogram_2_1_1_over_4_modes():
    means = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0]])
    samples = np.array([[0.0, 0.0], [0.01, 0.0], [4.0, 0.0], [0.0, 4.0]])
    res = three_sigma_coverage(samples, means, 0.05)
    p = np.array([2, 1, 1]) / 4
    assert res["modes"] == 3
    assert res["hq_fraction"] == 1.0
    assert res["reverse_kl"] == pytest.approx(float(np.sum(p * np.log(p * 4))), abs=1e-12)
    assert res["reverse_kl"] == pytest.approx(0.5 * math.log(2), abs=1e-12)


def test_responsibility_assign_hand():
    means = np.array([[0.0], [3.0]])
    stds = np.array([0.5, 2.0])
    samples = np.array([[0.1], [1.2]])
    # x = 1.2: logit_0 = -log 0.5 - 1.44/(2*0.25), logit_1 = -log 2 - 3.24/(2*4)
    l0 = -math.log(0.5) - 1.2**2 / (2 * 0.25)
    l1 = -math.log(2.0) - 1.8**2 / (2 * 4.0)
    assert l1 > l0  # the wide component wins although mode 0 is nearer
    np.testing.assert_array_equal(responsibility_assign(samples, means, stds), [0, 1])
    np.testing.assert_array_equal(nearest_mode(samples, means)[0], [0, 0])
    # weights: log 0.99 + l0 > log 0.01 + l1
    assert math.log(0.99) + l0 > math.log(0.01) + l1
    np.testing.assert_array_equal(
        responsibility_assign(samples, means, stds, weights=[0.99, 0.01]), [0, 0]
    )
    # zero weight component is never chosen
    np.testing.assert_array_equal(
        responsibility_assign([[3.0]], means, stds, weights=[1.0, 0.0]), [0]
    )


def test_responsibility_coverage_hand():
    means = np.array([[0.0], [3.0]])
    stds = [0.5, 2.0]
    assert responsibility_coverage([[0.1], [0.2]], means, stds) == 1
    assert responsibility_coverage([[0.1], [1.2]], means, stds) == 2
    assert isinstance(responsibility_coverage([[0.1]], means, stds), int)
    # 25-mode grid: samples at 24 of 25 means -> 24 modes
    grid = np.array([[a, b] for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)], float)
    assert responsibility_coverage(grid[:24], grid, 0.05) == 24


# --------------------------------------------------------------------------- reconstruction


def test_mse_hand():
    assert mse([[1.0, 2.0], [3.0, 4.0]], [[1.0, 0.0], [0.0, 4.0]]) == 3.25
    assert isinstance(mse([1.0], [2.0]), float)


def test_identity_toy_calibration():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100_000, 1))
    y = rng.normal(size=(100_000, 1))
    assert mse(x, x) == 0.0
    assert pearson_corr(x, x) == pytest.approx(1.0, abs=1e-12)
    assert pearson_corr(x, -x) == pytest.approx(-1.0, abs=1e-12)
    assert mse(x, -x) == pytest.approx(4.0, abs=0.1)
    assert mse(x, y) == pytest.approx(2.0, abs=0.05)
    assert abs(pearson_corr(x, y)) < 0.02


def test_same_mode_rate_hand():
    x = MEANS3[[0, 1, 2, 0]]
    labels = np.array([0, 1, 2, 0])
    x_rec = np.array([[0.1, 0.0], [3.9, 0.1], [0.0, 4.2], [3.5, 0.0]])  # last one wrong
    assert same_mode_rate(x, x_rec, labels, MEANS3, 0.05) == 0.75
    assert same_mode_rate(x, x, labels.astype(float), MEANS3, 0.05) == 1.0


def test_pearson_hand_and_constant():
    r = pearson_corr([1.0, 2.0, 3.0], [[2.0], [4.0], [7.0]])
    # a - mean = [-1, 0, 1], b - mean = [-7/3, -1/3, 8/3]: r = 5 / sqrt(2 * 114/9)
    assert r == pytest.approx(5 / math.sqrt(2 * 114 / 9), abs=1e-12)
    assert r == pytest.approx(np.corrcoef([1, 2, 3], [2, 4, 7])[0, 1], abs=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(pearson_corr([0.1, 0.1, 0.1], [1.0, 2.0, 3.0]))
        assert math.isnan(pearson_corr([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]))


# --------------------------------------------------------------------------- prior match


def test_mmd_tiny_hand():
    a = np.array([[0.0], [1.0]])
    b = np.array([[0.0], [2.0]])
    # h = 1: k(u, v) = exp(-(u - v)^2 / 2)
    kxx = math.exp(-0.5)  # mean over the off-diagonal pair (0,1),(1,0)
    kyy = math.exp(-2.0)
    kxy = (1.0 + math.exp(-2.0) + math.exp(-0.5) + math.exp(-0.5)) / 4
    expected = kxx + kyy - 2 * kxy
    assert expected < 0  # the unbiased estimate can be negative
    assert mmd2_rbf(a, b, bandwidths=(1.0,)) == pytest.approx(expected, abs=1e-12)
    # 1-D input treated as [n, 1]; sum of two equal bandwidths doubles the value
    assert mmd2_rbf([0.0, 1.0], [0.0, 2.0], bandwidths=(1.0, 1.0)) == pytest.approx(2 * expected)


def test_mmd_large_samples():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(1000, 2))
    b = rng.normal(size=(1000, 2))
    same = mmd2_rbf(a, b)
    shifted = mmd2_rbf(a, b + np.array([1.0, 0.0]))
    assert abs(same) < 0.01
    assert shifted > 0.2
    assert shifted > 20 * abs(same)


def test_ks_hand():
    # n = 1 at 0: D = max(1 - Phi(0), Phi(0)) = 0.5, exact p-value 2(1 - D) = 1
    stat, p = ks_to_standard_normal([0.0])
    assert stat == pytest.approx(0.5)
    assert p == pytest.approx(1.0)
    # n = 2 at -1, 1: D = Phi(1) - 1/2
    stat, _ = ks_to_standard_normal([[-1.0], [1.0]])
    assert stat == pytest.approx(_phi(1.0) - 0.5, abs=1e-12)
    assert max_ks_to_standard_normal([-1.0, 1.0]) == pytest.approx(_phi(1.0) - 0.5, abs=1e-12)
    # per-dimension max: column 0 gives Phi(1) - 1/2, column 1 (shifted by 10) ~ 1
    two_d = np.array([[-1.0, 9.0], [1.0, 11.0]])
    assert max_ks_to_standard_normal(two_d) == pytest.approx(1.0, abs=1e-12)


def test_ks_calibration():
    z = np.random.default_rng(2).normal(size=(5000, 3))
    assert max_ks_to_standard_normal(z) < 0.03
    assert max_ks_to_standard_normal(z + 0.5) > 0.15
    stat, p = ks_to_standard_normal(z[:, 0])
    assert stat < 0.03 and p > 1e-3


class _ArrayLike:
    """Stand-in for a CPU torch tensor: exposes only __array__ (what np.asarray uses)."""

    def __init__(self, arr):
        self._arr = np.asarray(arr, dtype=np.float32)

    def __array__(self, dtype=None, copy=None):
        return self._arr if dtype is None else self._arr.astype(dtype)


def test_accepts_array_likes():
    x = _ArrayLike(np.random.default_rng(3).normal(size=(50, 2)))
    assert three_sigma_coverage(x, MEANS3, 0.5)["modes"] >= 0
    assert mse(x, x) == 0.0
    assert mmd2_rbf(x, _ArrayLike(np.asarray(x) + 1)) > 0
    assert pearson_corr(_ArrayLike([1.0, 2.0, 3.0]), [1.0, 2.0, 3.0]) == pytest.approx(1.0)


# --------------------------------------------------------------------------- properties


def _grid_points(n_min, n_max, d, unique=False):
    """Lists of d-dim points with coordinates in multiples of 0.25 (exact in float)."""
    point = st.tuples(*[st.integers(-16, 16)] * d)
    return st.lists(point, min_size=n_min, max_size=n_max, unique=unique).map(
        lambda pts: np.array(pts, dtype=np.float64) * 0.25
    )


@st.composite
def mixture_and_samples(draw):
    d = draw(st.integers(1, 3))
    means = draw(_grid_points(1, 6, d, unique=True))
    samples = draw(_grid_points(1, 30, d))
    k = means.shape[0]
    stds = draw(
        st.one_of(
            st.floats(0.05, 5.0),
            st.lists(st.floats(0.05, 5.0), min_size=k, max_size=k).map(np.array),
        )
    )
    perm = np.array(draw(st.permutations(range(samples.shape[0]))))
    return samples, means, stds, perm


@PROPS
@given(mixture_and_samples())
def test_coverage_invariant_to_sample_order(case):
    samples, means, stds, perm = case
    r1 = three_sigma_coverage(samples, means, stds)
    r2 = three_sigma_coverage(samples[perm], means, stds)
    assert r1["modes"] == r2["modes"]
    assert r1["hq_fraction"] == r2["hq_fraction"]
    assert r1["reverse_kl"] == r2["reverse_kl"] or (
        math.isnan(r1["reverse_kl"]) and math.isnan(r2["reverse_kl"])
    )
    assert responsibility_coverage(samples, means, stds) == responsibility_coverage(
        samples[perm], means, stds
    )


@PROPS
@given(mixture_and_samples(), st.data())
def test_mse_invariant_to_sample_order(case, data):
    samples, _, _, perm = case
    other = data.draw(_grid_points(len(samples), len(samples), samples.shape[1]))
    assert mse(samples[perm], other[perm]) == pytest.approx(mse(samples, other), rel=1e-12)


@PROPS
@given(_grid_points(1, 8, 2, unique=True), st.integers(1, 4), st.floats(0.01, 3.0))
def test_samples_at_every_mean_give_full_coverage(means, reps, std):
    k = means.shape[0]
    samples = np.repeat(means, reps, axis=0)
    res = three_sigma_coverage(samples, means, std)
    assert res["modes"] == k
    assert res["hq_fraction"] == 1.0
    assert res["reverse_kl"] == 0.0
    assert responsibility_coverage(samples, means, std) == k


@PROPS
@given(_grid_points(1, 8, 2, unique=True), st.integers(1, 20), st.floats(0.01, 3.0), st.data())
def test_samples_at_one_mean_give_one_mode(means, n, std, data):
    k = means.shape[0]
    j = data.draw(st.integers(0, k - 1))
    samples = np.repeat(means[j : j + 1], n, axis=0)
    res = three_sigma_coverage(samples, means, std)
    assert res["modes"] == 1
    assert res["hq_fraction"] == 1.0
    assert res["reverse_kl"] == math.log(k)
    assert responsibility_coverage(samples, means, std) == 1


@PROPS
@given(mixture_and_samples(), st.floats(0.01, 10.0))
def test_responsibility_with_equal_stds_is_nearest_mode(case, std):
    samples, means, _, _ = case
    np.testing.assert_array_equal(
        responsibility_assign(samples, means, std), nearest_mode(samples, means)[0]
    )
    np.testing.assert_array_equal(
        responsibility_assign(samples, means, np.full(len(means), std), np.ones(len(means))),
        nearest_mode(samples, means)[0],
    )


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call",
    [
        lambda: nearest_mode(np.zeros((3, 2)), np.zeros((2, 3))),  # dim mismatch
        lambda: nearest_mode(np.zeros((0, 2)), MEANS3),  # empty samples
        lambda: nearest_mode(np.zeros(3), MEANS3),  # not 2-D
        lambda: nearest_mode([[np.nan, 0.0]], MEANS3),  # non-finite
        lambda: three_sigma_coverage(np.zeros((3, 2)), MEANS3, [0.1, 0.1]),  # stds shape
        lambda: three_sigma_coverage(np.zeros((3, 2)), MEANS3, 0.0),  # std not positive
        lambda: three_sigma_coverage(np.zeros((3, 2)), np.zeros((0, 2)), 0.1),  # no means
        lambda: responsibility_assign(np.zeros((3, 2)), MEANS3, 0.1, weights=[1.0, 1.0]),
        lambda: responsibility_assign(np.zeros((3, 2)), MEANS3, 0.1, weights=[0.0, 0.0, 0.0]),
        lambda: responsibility_coverage(np.zeros((3, 1)), MEANS3, 0.1),
        lambda: mse(np.zeros(3), np.zeros(4)),
        lambda: mse(np.zeros(0), np.zeros(0)),
        lambda: same_mode_rate(np.zeros((2, 2)), np.zeros((3, 2)), [0, 0], MEANS3, 0.1),
        lambda: same_mode_rate(np.zeros((2, 2)), np.zeros((2, 2)), [0, 3], MEANS3, 0.1),
        lambda: same_mode_rate(np.zeros((2, 2)), np.zeros((2, 2)), [0], MEANS3, 0.1),
        lambda: same_mode_rate(np.zeros((2, 2)), np.zeros((2, 2)), [0, 0.5], MEANS3, 0.1),
        lambda: pearson_corr([1.0, 2.0], [1.0, 2.0, 3.0]),
        lambda: pearson_corr(np.zeros((3, 2)), np.zeros((3, 2))),
        lambda: pearson_corr([1.0], [2.0]),
        lambda: mmd2_rbf(np.zeros((1, 2)), np.zeros((5, 2))),  # n < 2
        lambda: mmd2_rbf(np.zeros((5, 2)), np.zeros((5, 3))),  # dim mismatch
        lambda: mmd2_rbf(np.zeros((5, 2)), np.zeros((5, 2)), bandwidths=(1.0, 0.0)),
        lambda: mmd2_rbf(np.zeros((5, 2)), np.zeros((5, 2)), bandwidths=()),
        lambda: max_ks_to_standard_normal(np.zeros((0, 2))),
        lambda: ks_to_standard_normal(np.zeros((5, 2))),
        lambda: ks_to_standard_normal([]),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_every_headline_metric_says_which_way_it_improves():
    from inference_zoo.core.results import BETTER, HEADLINE_METRICS, better

    assert set(BETTER) == set(HEADLINE_METRICS)
    assert (better("modes_3sigma"), better("fid"), better("interp_mid_nn_mse")) == ("higher", "lower", "lower")
    assert better("corr_x_encoding") is None and better("label_probe_error_100") == "lower"
