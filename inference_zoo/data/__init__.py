"""Datasets with ground truth: 2-D Gaussian mixtures (with component labels) and the identity toy."""
from .base import DATASETS, Dataset, DataConfig, build_dataset, parse_data_spec
from . import mixtures  # noqa: F401  (registers grid, ring, identity)

__all__ = ["DATASETS", "Dataset", "DataConfig", "build_dataset", "parse_data_spec"]
