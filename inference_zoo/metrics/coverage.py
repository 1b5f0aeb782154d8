"""Mode-coverage metrics for samples from a model of an isotropic Gaussian mixture.

Why: papers comparing GAN/inference mechanisms on 2-D mixtures report how many
mixture modes a model's samples capture. Two incompatible definitions are in use,
so both are implemented here with their exact definitions in the docstrings:

* the "3-sigma" definition of Unrolled GAN / VEEGAN / PacGAN
  (``three_sigma_coverage``), and
* the ALI paper's "responsibility" definition (``responsibility_coverage``).

All functions are pure functions of array-likes (numpy arrays, CPU torch
tensors, lists), compute in float64 and return Python scalars or numpy arrays.
"""

from __future__ import annotations

import numpy as np


# ----------------------------------------------------------------------------
# validation helpers (shared with the other metric modules)
# ----------------------------------------------------------------------------


def _as_2d(x, name: str) -> np.ndarray:
    """Return ``x`` as a finite, non-empty float64 array of shape [n, d]."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [n, d], got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (nan or inf)")
    return arr


def _check_same_dim(samples: np.ndarray, means: np.ndarray) -> None:
    if samples.shape[1] != means.shape[1]:
        raise ValueError(
            f"samples have dimension {samples.shape[1]} but means have dimension "
            f"{means.shape[1]}"
        )


def _as_stds(stds, k: int) -> np.ndarray:
    """Return per-component stds of shape [k] from a scalar or a [k] array."""
    arr = np.asarray(stds, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(k, float(arr))
    elif arr.shape != (k,):
        raise ValueError(f"stds must be a scalar or have shape ({k},), got shape {arr.shape}")
    if not np.all(np.isfinite(arr) & (arr > 0)):
        raise ValueError("stds must be finite and strictly positive")
    return arr


def _as_weights(weights, k: int) -> np.ndarray:
    """Return normalised mixture weights of shape [k] (uniform when ``None``)."""
    if weights is None:
        return np.full(k, 1.0 / k)
    arr = np.asarray(weights, dtype=np.float64)
    if arr.shape != (k,):
        raise ValueError(f"weights must have shape ({k},), got shape {arr.shape}")
    if not np.all(np.isfinite(arr) & (arr >= 0)) or arr.sum() <= 0:
        raise ValueError("weights must be finite, non-negative and not all zero")
    return arr / arr.sum()


def _squared_distances(samples: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Exact squared Euclidean distances [n, k] (one column per mean, O(n*k) memory)."""
    d2 = np.empty((samples.shape[0], means.shape[0]))
    for j, mu in enumerate(means):
        d2[:, j] = np.sum((samples - mu) ** 2, axis=1)
    return d2


# ----------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------


def nearest_mode(samples, means) -> tuple[np.ndarray, np.ndarray]:
    """Nearest mixture mean of each sample.

    Definition: ``idx[i] = argmin_j ||x_i - mu_j||_2`` and ``dist[i] = ||x_i - mu_idx[i]||_2``
    (Euclidean). Ties go to the lowest index.

    Args:
        samples: [n, d] samples.
        means: [k, d] mixture means.

    Returns:
        ``(idx, dist)``: int64 array [n] and float64 array [n].
    """
    x = _as_2d(samples, "samples")
    mu = _as_2d(means, "means")
    _check_same_dim(x, mu)
    d2 = _squared_distances(x, mu)
    idx = np.argmin(d2, axis=1).astype(np.int64)
    dist = np.sqrt(d2[np.arange(x.shape[0]), idx])
    return idx, dist


def three_sigma_coverage(samples, means, stds, weights=None) -> dict:
    """3-sigma mode coverage (Unrolled GAN / VEEGAN / PacGAN definition).

    Definition: each sample x is assigned to its Euclidean-nearest mean j
    (even when components have different stds, as in those papers' code).
    x is *high quality* (HQ) when ``||x - mu_j|| / std_j < 3`` (strict).
    A mode is captured when at least one HQ sample is nearest to it.

    * ``modes``: number of captured modes (int).
    * ``hq_fraction``: #HQ / n (float).
    * ``reverse_kl``: KL(p || w) where p is the normalised histogram of HQ
      samples over modes and w the mixture weights (uniform by default:
      ``sum_{i: p_i > 0} p_i * log(p_i * k)``, natural log). With uniform
      weights it is 0 when HQ samples are spread evenly over all modes and
      log(k) when they all sit on one mode. It is ``float('nan')`` when there
      are no HQ samples, and ``inf`` when HQ samples sit on a zero-weight mode.

    Args:
        samples: [n, d] samples.
        means: [k, d] mixture means.
        stds: scalar or [k] per-component isotropic stds.
        weights: optional [k] non-negative mixture weights (normalised here).
    """
    mu = _as_2d(means, "means")
    k = mu.shape[0]
    sigma = _as_stds(stds, k)
    w = None if weights is None else _as_weights(weights, k)
    idx, dist = nearest_mode(samples, mu)
    n = idx.shape[0]

    hq = dist / sigma[idx] < 3.0
    counts = np.bincount(idx[hq], minlength=k)
    n_hq = int(counts.sum())

    if n_hq == 0:
        reverse_kl = float("nan")
    else:
        p = counts / n_hq
        nz = counts > 0
        if w is None:
            # p_i * k computed as an integer ratio so the uniform case is exactly 1.
            ratio = counts * k / n_hq
        else:
            with np.errstate(divide="ignore"):
                ratio = p / w
        reverse_kl = float(np.sum(p[nz] * np.log(ratio[nz])))

    return {
        "modes": int(np.count_nonzero(counts)),
        "hq_fraction": n_hq / n,
        "reverse_kl": reverse_kl,
    }


def responsibility_assign(samples, means, stds, weights=None) -> np.ndarray:
    """Component with the highest posterior responsibility for each sample.

    Definition: under the isotropic mixture ``sum_j w_j N(mu_j, std_j^2 I)``,
    ``idx[i] = argmax_j [log w_j - d*log(std_j) - ||x_i - mu_j||^2 / (2 std_j^2)]``
    (log domain; ties go to the lowest index). Weights default to uniform.
    With equal stds and weights this equals ``nearest_mode``.

    Args:
        samples: [n, d] samples.
        means: [k, d] mixture means.
        stds: scalar or [k] per-component isotropic stds.
        weights: optional [k] non-negative mixture weights (normalised here).

    Returns:
        int64 array [n] of component indices.
    """
    x = _as_2d(samples, "samples")
    mu = _as_2d(means, "means")
    _check_same_dim(x, mu)
    k, d = mu.shape
    sigma = _as_stds(stds, k)
    w = _as_weights(weights, k)

    d2 = _squared_distances(x, mu)
    with np.errstate(divide="ignore"):  # zero weight -> log w = -inf, never chosen
        log_w = np.log(w)
    logits = log_w - d * np.log(sigma) - d2 / (2.0 * sigma**2)
    return np.argmax(logits, axis=1).astype(np.int64)


def responsibility_coverage(samples, means, stds, weights=None) -> int:
    """Number of covered modes, ALI paper definition.

    Definition: each sample is assigned to the component with highest posterior
    responsibility (``responsibility_assign``); a mode is dropped when no sample
    is assigned to it. Returns the number of components with >= 1 assigned sample.
    """
    idx = responsibility_assign(samples, means, stds, weights)
    return int(np.unique(idx).size)
