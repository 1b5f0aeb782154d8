"""Reconstruction metrics for inference mechanisms (x -> z -> x').

Why: an inference network is only useful if encoding then decoding gives back
something related to the input. On the 2-D mixtures we ask whether x' lands in
the same mode as x (``same_mode_rate``); on the 1-D identity toy we measure the
error and correlation of the coupling (``mse``, ``pearson_corr``), whose values
for the trivial couplings are known in closed form (see ``mse``).

Pure functions of array-likes; computation in float64; Python floats returned.
"""

from __future__ import annotations

import numpy as np

from .coverage import _as_2d, responsibility_assign


def mse(a, b) -> float:
    """Mean squared error ``mean((a - b)**2)`` over all elements (same shape required).

    Calibration on the 1-D identity toy (x ~ N(0,1)): the identity
    reconstruction gives 0, an independent coupling (x' ~ N(0,1) independent of
    x) gives E[(x - x')^2] = 2, and the sign flip x' = -x gives E[(2x)^2] = 4.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"mse needs arrays of the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("mse needs non-empty arrays")
    return float(np.mean((a - b) ** 2))


def same_mode_rate(x, x_reconstructed, labels, means, stds, weights=None) -> float:
    """Fraction of points reconstructed into their own mixture component.

    Definition: ``mean_i [responsibility_assign(x'_i) == labels_i]`` where the
    assignment uses the isotropic mixture (means, stds, weights: uniform by default) and
    ``labels`` [n] are the true components that generated x [n, d].
    ``x`` itself is only used to check shapes.
    """
    x = _as_2d(x, "x")
    xr = _as_2d(x_reconstructed, "x_reconstructed")
    if x.shape != xr.shape:
        raise ValueError(
            f"x and x_reconstructed must have the same shape, got {x.shape} and {xr.shape}"
        )
    mu = _as_2d(means, "means")
    lab = np.asarray(labels)
    if lab.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},), got {lab.shape}")
    if not np.issubdtype(lab.dtype, np.integer):
        labf = lab.astype(np.float64)
        if not np.all(labf == np.round(labf)):
            raise ValueError("labels must be integer component indices")
        lab = labf.astype(np.int64)
    if np.any(lab < 0) or np.any(lab >= mu.shape[0]):
        raise ValueError(f"labels must lie in [0, {mu.shape[0]}), the number of means")
    assigned = responsibility_assign(xr, mu, stds, weights)
    return float(np.mean(assigned == lab))


def pearson_corr(a, b) -> float:
    """Pearson correlation of two 1-D samples ([n] or [n, 1], n >= 2).

    Definition: ``sum((a - mean a)(b - mean b)) / sqrt(sum((a - mean a)^2) * sum((b - mean b)^2))``.
    Returns ``float('nan')`` (without warnings) if either input is constant.
    """
    a = _as_1d(a, "a")
    b = _as_1d(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"pearson_corr needs equal lengths, got {a.size} and {b.size}")
    if a.size < 2:
        raise ValueError("pearson_corr needs at least 2 points")
    if np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    ac = a - a.mean()
    bc = b - b.mean()
    r = np.sum(ac * bc) / np.sqrt(np.sum(ac * ac) * np.sum(bc * bc))
    return float(np.clip(r, -1.0, 1.0))


def _as_1d(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape [n] or [n, 1], got {np.shape(x)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (nan or inf)")
    return arr
