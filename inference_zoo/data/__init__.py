"""Datasets with ground truth: 2-D Gaussian mixtures (with component labels), the identity toy, and
labelled images (scikit-learn digits, torchvision sets, ImageFolder, FakeData)."""
from .base import DATASETS, Dataset, DataConfig, build_dataset, labelled_subset, parse_data_spec
from . import images, mixtures  # noqa: F401  (registers grid, ring, identity and the image sets)
from ..core import config

__all__ = ["DATASETS", "Dataset", "DataConfig", "build_dataset", "labelled_subset", "parse_data_spec"]


def _defaults(name: str) -> dict:
    import dataclasses

    return dataclasses.asdict(DATASETS.get(name).Options())


config.dataset_defaults = _defaults  # DataConfig.label names options that differ from these
