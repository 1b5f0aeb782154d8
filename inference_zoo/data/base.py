"""The dataset contract and the ``name:key=value,...`` spec that selects one from the CLI."""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import torch

from ..core.config import DataConfig, coerce_value
from ..core.errors import UserError, did_you_mean
from ..core.registry import Registry, check_plugin_class


class Dataset:
    """A distribution we can sample with labels; mixtures also expose their components.

    ``means``/``stds`` are None for datasets without modes; metrics that need modes are skipped.
    """

    Options: ClassVar[type]
    description: ClassVar[str] = ""
    #: the preset ``izoo compare`` uses for this dataset when none is given
    default_preset: ClassVar[str] = "quick"
    x_dim: int
    means: np.ndarray | None = None
    stds: np.ndarray | None = None
    #: mixture weights (summing to 1); None = equal
    weights: np.ndarray | None = None

    @classmethod
    def resolve_options(cls, options: Any) -> Any:
        """The options a run records, from the ones a spec gave (e.g. a file read into numbers)."""
        return options

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (x [n, *x_shape] float32, labels [n] int64) on the generator's device."""
        raise NotImplementedError

    def held_out(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The evaluation set: fresh samples here; image datasets return their fixed test split."""
        return self.sample(n, generator)

    @property
    def x_shape(self) -> tuple[int, ...]:
        """One sample's shape; ``(x_dim,)`` for vector data, ``(C, H, W)`` for images."""
        return (self.x_dim,)

    @property
    def n_classes(self) -> int:
        """How many distinct labels ``sample`` returns (mixture components; 1 for the identity toy)."""
        return max(1, self.n_modes)

    @property
    def n_modes(self) -> int:
        return 0 if self.means is None else len(self.means)

    def plot_limit(self) -> float:
        """Half-width of x-space axes: the ALI paper's [-6, 6] for the 25-grid, scaled for others."""
        return 1.5 * float(np.abs(self.means).max()) if self.means is not None else 4.0


#: built-ins register by decorator; plugins through the entry-point group (a Dataset subclass with
#: a dataclass ``Options`` and ``sample``)
DATASETS: Registry[type[Dataset]] = Registry("dataset", entry_point_group="inference_zoo.datasets",
                                             check=check_plugin_class(Dataset, ("sample",)))


def parse_data_spec(spec: str, n_train: int = 100_000, n_test: int = 10_000) -> DataConfig:
    """Parse ``grid``, ``ring:modes=12,std=0.02`` or ``identity`` into a validated DataConfig."""
    name, _, rest = spec.strip().partition(":")
    cls = DATASETS.get(name)
    fields = {f.name: f for f in dataclasses.fields(cls.Options)}
    given: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not value:
            raise UserError(f"data spec {spec!r}: expected key=value, got {part!r}")
        if key not in fields:
            raise UserError(f"data spec {spec!r}: unknown option {key!r} for {name}{did_you_mean(key, fields)}; "
                            f"valid: {', '.join(fields) or 'none'}")
        given[key] = coerce_value(value, getattr(cls.Options(), key), f"data spec {spec!r}: {key}")
    options = dataclasses.asdict(cls.resolve_options(cls.Options(**given)))
    config = DataConfig(name=name, options=options, n_train=n_train, n_test=n_test)
    build_dataset(config)  # validates option values now, not halfway through a study
    return config


#: the training examples a labelled subset is chosen from (image sets: their whole train split)
LABEL_POOL = 60_000


def labelled_subset(dataset: Dataset, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` labelled training examples, ``n / classes`` of each class, chosen by the seed alone
    (the same for every method run with that seed): the semi-supervised strategies' labels."""
    from ..core.seeding import generator

    classes = dataset.n_classes
    if n < classes or n % classes:
        raise UserError(f"labels must be a positive multiple of the {classes} classes (balanced per class), got {n}")
    g = generator(seed, "data", "labelled")
    x, y = dataset.sample(LABEL_POOL, g)
    order = torch.randperm(len(y), generator=g)
    chosen = [order[y[order] == k][: n // classes] for k in range(classes)]
    short = [k for k, c in enumerate(chosen) if len(c) < n // classes]
    if short:
        raise UserError(f"labels: the training data hold fewer than {n // classes} examples of class {short[0]}")
    index = torch.stack(chosen, 1).reshape(-1)  # class 0, 1, ..., K-1, 0, 1, ...
    return x[index].contiguous(), y[index].contiguous()


def build_dataset(config: DataConfig) -> Dataset:
    if config.n_train < 1 or config.n_test < 1:
        raise UserError("n_train and n_test must be positive")
    cls = DATASETS.get(config.name)
    try:
        options = cls.Options(**config.options)
    except TypeError as exc:
        raise UserError(f"dataset {config.name}: {exc}") from None
    return cls(options)
