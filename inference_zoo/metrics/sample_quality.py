"""Sample quality of images in a feature space: KID and precision / recall / density / coverage.

Why: FID needs Inception weights that this toolkit never downloads (and on 8x8 digits Inception
features would mean little). These metrics are computed on the features of any fixed network;
the experiment layer uses a small classifier trained once on the dataset's training split
(``evaluation/feature_net.py``). Their values are comparable between runs scored with the same
feature network only: never with published FID/KID numbers, which use Inception features.

* ``kid``: Kernel Inception Distance (Binkowski et al. 2018), the unbiased estimate of the
  squared MMD with the cubic polynomial kernel ``k(a, b) = (a . b / d + 1)^3``, averaged over
  random subsets.
* ``prdc``: precision, recall, density and coverage (Naeem et al. 2020) from k-nearest-neighbour
  balls around real and generated features.

Pure functions of array-likes; computation in float64; Python floats returned.
"""
from __future__ import annotations

import numpy as np


def _features(f, name: str) -> np.ndarray:
    arr = np.asarray(f, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty [n, d] array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values")
    return arr


def _pair(real, fake) -> tuple[np.ndarray, np.ndarray]:
    x, y = _features(real, "real features"), _features(fake, "generated features")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"real and generated features differ in width: {x.shape[1]} and {y.shape[1]}")
    return x, y


def polynomial_mmd2_unbiased(real, fake) -> float:
    """Unbiased squared MMD with ``k(a, b) = (a . b / d + 1)^3``:

    ``sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
    - 2 sum_{i, j} k(x_i, y_j) / (m n)``; needs at least two points on each side. Can be negative.
    """
    x, y = _pair(real, fake)
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError("the unbiased MMD needs at least two real and two generated points")
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.mean())


def kid(real, fake, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID: the mean and standard deviation of ``polynomial_mmd2_unbiased`` over ``subsets``
    random subsets of ``min(subset_size, m, n)`` real and generated points (drawn without
    replacement within a subset; NumPy generator seeded with ``seed``). When the subset size is
    both sets' size every subset is the whole set and the deviation is 0."""
    x, y = _pair(real, fake)
    size = min(subset_size, len(x), len(y))
    if subsets < 1 or size < 2:
        raise ValueError("KID needs subsets >= 1 and at least two points on each side")
    if size == len(x) == len(y):
        return polynomial_mmd2_unbiased(x, y), 0.0
    rng = np.random.default_rng(seed)
    values = [polynomial_mmd2_unbiased(x[rng.choice(len(x), size, replace=False)],
                                       y[rng.choice(len(y), size, replace=False)]) for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def _knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest other point of the same set."""
    d = _distances(x, x)
    np.fill_diagonal(d, np.inf)
    return np.partition(d, k - 1, axis=1)[:, k - 1]


def prdc(real, fake, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage (Naeem et al. 2020), Euclidean, strict ``<`` as in
    the authors' code. ``r_i``: distance from real ``x_i`` to its k-th nearest other real point;
    ``s_j`` likewise for generated ``y_j`` among the generated.

    * precision = share of generated points inside some real ball: ``||y_j - x_i|| < r_i``;
    * recall = share of real points inside some generated ball: ``||x_i - y_j|| < s_j``;
    * density = ``sum_j #{i : ||y_j - x_i|| < r_i} / (k M)`` (1 on average for matching sets; can exceed 1);
    * coverage = share of real points whose ball holds a generated point.
    """
    x, y = _pair(real, fake)
    if not 1 <= k < min(len(x), len(y)):
        raise ValueError(f"k must be from 1 to one less than each set's size, got k={k} for {len(x)} and {len(y)}")
    r, s = _knn_radii(x, k), _knn_radii(y, k)
    d = _distances(x, y)  # [real, generated]
    inside_real = d < r[:, None]
    return {
        "precision": float(inside_real.any(axis=0).mean()),
        "recall": float((d < s[None, :]).any(axis=1).mean()),
        "density": float(inside_real.sum() / (k * len(y))),
        "coverage": float(inside_real.any(axis=1).mean()),
    }


__all__ = ["kid", "polynomial_mmd2_unbiased", "prdc"]
