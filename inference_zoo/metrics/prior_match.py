"""Distances between sample sets and a target distribution (usually the prior).

Why: an inference mechanism should map data to codes distributed like the
prior p(z) (and a generator should match p(x)). We measure this with an
unbiased multi-bandwidth RBF MMD^2 between two sample sets, and with
Kolmogorov-Smirnov statistics against N(0, 1) for the standard-normal prior.

Pure functions of array-likes; computation in float64; Python floats returned.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .coverage import _as_2d


def _as_samples(x, name: str) -> np.ndarray:
    """[n] -> [n, 1]; [n, d] unchanged; validated float64."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    return _as_2d(arr, name)


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances [n, m] via the Gram expansion, clipped at 0."""
    d2 = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d2, 0.0)


def _kernel(d2: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    k = np.zeros_like(d2)
    for h in bandwidths:
        k += np.exp(-d2 / (2.0 * h * h))
    return k


def mmd2_rbf(a, b, bandwidths=(0.2, 0.5, 1.0, 2.0)) -> float:
    """Unbiased estimate of squared MMD with a sum of RBF kernels.

    Definition: kernel ``k(u, v) = sum_h exp(-||u - v||^2 / (2 h^2))`` over
    ``bandwidths``, and for a [n, d], b [m, d] (n, m >= 2)::

        MMD^2_u = 1/(n(n-1)) sum_{i != j} k(a_i, a_j)
                + 1/(m(m-1)) sum_{i != j} k(b_i, b_j)
                - 2/(n m)    sum_{i, j}   k(a_i, b_j)

    Being unbiased it can be slightly negative when the distributions match.
    1-D inputs [n] are treated as [n, 1].
    """
    x = _as_samples(a, "a")
    y = _as_samples(b, "b")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"a and b must have the same dimension, got {x.shape[1]} and {y.shape[1]}")
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"unbiased MMD needs at least 2 samples in each set, got {n} and {m}")
    h = np.atleast_1d(np.asarray(bandwidths, dtype=np.float64))
    if h.ndim != 1 or h.size == 0 or not np.all(np.isfinite(h) & (h > 0)):
        raise ValueError("bandwidths must be a non-empty sequence of positive finite numbers")

    kxx = _kernel(_sq_dists(x, x), h)
    kyy = _kernel(_sq_dists(y, y), h)
    kxy = _kernel(_sq_dists(x, y), h)
    np.fill_diagonal(kxx, 0.0)
    np.fill_diagonal(kyy, 0.0)
    return float(kxx.sum() / (n * (n - 1)) + kyy.sum() / (m * (m - 1)) - 2.0 * kxy.mean())


def max_ks_to_standard_normal(samples) -> float:
    """Largest per-dimension one-sample KS statistic against N(0, 1).

    Definition: ``max_j sup_t |F_n^{(j)}(t) - Phi(t)|`` where F_n^{(j)} is the
    empirical CDF of column j of samples [n, d] (or [n]), i.e. the max over
    dimensions of ``scipy.stats.kstest(samples[:, j], 'norm').statistic``.
    """
    x = _as_samples(samples, "samples")
    return float(max(stats.kstest(x[:, j], "norm").statistic for j in range(x.shape[1])))


def ks_to_standard_normal(samples) -> tuple[float, float]:
    """One-sample KS test of 1-D samples ([n] or [n, 1]) against N(0, 1).

    Definition: ``(statistic, p-value)`` of ``scipy.stats.kstest(samples, 'norm')``
    (two-sided; statistic = sup_t |F_n(t) - Phi(t)|).
    """
    x = _as_samples(samples, "samples")
    if x.shape[1] != 1:
        raise ValueError(f"ks_to_standard_normal needs 1-D samples [n] or [n, 1], got {np.shape(samples)}")
    res = stats.kstest(x[:, 0], "norm")
    return float(res.statistic), float(res.pvalue)
