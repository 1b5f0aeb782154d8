"""Image metrics: how good encoder features are for classification, and how interpolations behave.

Why: the BiGAN and ALI papers judge an encoder on images by what a simple classifier can read off
its features: a linear classifier (BiGAN's tables; ALI's L2-SVM) and nearest-neighbour accuracy.
Features are fitted on labelled training images and scored on the held-out ones. Interpolations
(the ALI paper's figure) are summarised by how far the decoded path wanders in pixel space and
whether its midpoints look like real images.

Pure functions of array-likes; computation in float64; Python floats returned.
"""
from __future__ import annotations

import numpy as np


def _features(f, name: str) -> np.ndarray:
    arr = np.asarray(f, dtype=np.float64)
    arr = arr.reshape(len(arr), -1) if arr.ndim != 2 else arr
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values")
    return arr


def _check(train_f, train_y, test_f, test_y) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    a, b = _features(train_f, "train features"), _features(test_f, "test features")
    ya, yb = np.asarray(train_y).reshape(-1), np.asarray(test_y).reshape(-1)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"train and test features differ in width: {a.shape[1]} and {b.shape[1]}")
    if len(ya) != len(a) or len(yb) != len(b):
        raise ValueError("one label per feature row is required")
    return a, ya, b, yb


def nearest_neighbour_accuracy(train_f, train_y, test_f, test_y) -> float:
    """Fraction of test points whose nearest training point (Euclidean; ties: lowest index) has
    the same label."""
    a, ya, b, yb = _check(train_f, train_y, test_f, test_y)
    hits = 0
    a_sq = (a * a).sum(1)
    for start in range(0, len(b), 1024):  # chunks keep the distance matrix small
        q = b[start:start + 1024]
        d = a_sq[None, :] - 2.0 * q @ a.T  # |q|^2 is the same for every candidate
        hits += int(np.sum(ya[np.argmin(d, axis=1)] == yb[start:start + 1024]))
    return hits / len(b)


def linear_probe_accuracy(train_f, train_y, test_f, test_y, max_iter: int = 2000) -> float:
    """Test accuracy of a multinomial logistic regression (L2, C = 1, lbfgs) fitted on the
    training features, standardised with the training mean and std. NaN with one class only."""
    return linear_classifier_accuracies(train_f, train_y, [(test_f, test_y)], max_iter)[0]


def linear_classifier_accuracies(train_f, train_y, tests, max_iter: int = 2000) -> list[float]:
    """``linear_probe_accuracy`` of one classifier on several test sets [(features, labels), ...]:
    e.g. a classifier fitted on training images, scored on held-out images (its own accuracy)
    and on their reconstructions (whether G(E(x)) keeps x's class: ``recon_same_class``)."""
    from sklearn.linear_model import LogisticRegression

    checked = [_check(train_f, train_y, f, y) for f, y in tests]
    a, ya = checked[0][0], checked[0][1]
    if len(np.unique(ya)) < 2:
        return [float("nan")] * len(tests)
    mean, std = a.mean(0), a.std(0)
    std[std == 0] = 1.0
    model = LogisticRegression(max_iter=max_iter)
    model.fit((a - mean) / std, ya)
    return [float(np.mean(model.predict((b - mean) / std) == yb)) for _, _, b, yb in checked]


def interpolation_path_ratio(frames) -> float:
    """Mean over paths of (summed pixel distance between consecutive frames) / (distance between
    the end frames): 1 for a straight cross-fade, larger when the path passes through other images.

    ``frames`` [paths, steps, ...]; paths whose end frames coincide are left out (NaN if all are).
    """
    f = np.asarray(frames, dtype=np.float64)
    if f.ndim < 2 or f.shape[1] < 2:
        raise ValueError(f"frames must be [paths, steps >= 2, ...], got {f.shape}")
    f = f.reshape(f.shape[0], f.shape[1], -1)
    length = np.linalg.norm(np.diff(f, axis=1), axis=2).sum(1)
    direct = np.linalg.norm(f[:, -1] - f[:, 0], axis=1)
    keep = direct > 0
    return float(np.mean(length[keep] / direct[keep])) if keep.any() else float("nan")


def nearest_distance_mse(queries, reference) -> float:
    """Mean over queries of the per-pixel MSE to the closest reference image: how far generated
    images (e.g. interpolation midpoints) are from the nearest real one."""
    q, r = _features(queries, "queries"), _features(reference, "reference")
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries and reference differ in size: {q.shape[1]} and {r.shape[1]}")
    r_sq = (r * r).sum(1)
    best = [np.maximum(np.min(r_sq[None, :] - 2.0 * c @ r.T, axis=1) + (c * c).sum(1), 0.0)
            for c in (q[i:i + 1024] for i in range(0, len(q), 1024))]
    return float(np.concatenate(best).mean() / q.shape[1])
