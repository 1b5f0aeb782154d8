"""Pure numpy/scipy metrics for comparing inference mechanisms.

coverage: mode coverage on Gaussian mixtures (3-sigma and ALI responsibility definitions).
reconstruction: how well x -> z -> x' preserves x.
prior_match: how well sample sets match each other / N(0, 1).
features: encoder features for classification (linear probe, 1-NN); interpolation paths.
sample_quality: images in a fixed network's feature space (KID; precision/recall/density/coverage).
"""

from .coverage import (
    nearest_mode,
    responsibility_assign,
    responsibility_coverage,
    three_sigma_coverage,
)
from .features import (
    interpolation_path_ratio,
    linear_classifier_accuracies,
    linear_probe_accuracy,
    nearest_distance_mse,
    nearest_neighbour_accuracy,
)
from .prior_match import ks_to_standard_normal, max_ks_to_standard_normal, mmd2_rbf
from .reconstruction import mse, pearson_corr, same_mode_rate
from .sample_quality import kid, polynomial_mmd2_unbiased, prdc

__all__ = [
    "interpolation_path_ratio",
    "linear_classifier_accuracies",
    "linear_probe_accuracy",
    "nearest_distance_mse",
    "nearest_neighbour_accuracy",
    "nearest_mode",
    "three_sigma_coverage",
    "responsibility_assign",
    "responsibility_coverage",
    "mse",
    "same_mode_rate",
    "pearson_corr",
    "mmd2_rbf",
    "max_ks_to_standard_normal",
    "ks_to_standard_normal",
    "kid",
    "polynomial_mmd2_unbiased",
    "prdc",
]
