"""2-D Gaussian mixtures (ALI paper's 25-grid, the 8-ring) and the 1-D identity toy."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.errors import UserError
from .base import DATASETS, Dataset


#: more modes than this would not fit the held-out set's 10,000 points, let alone a figure
MAX_MODES = 10_000

class IsotropicMixture(Dataset):
    """Mixture of isotropic Gaussians with known components: one std or one per component, equal
    weights unless given."""

    def __init__(self, means: np.ndarray, std, weights=None) -> None:
        self.means = np.asarray(means, dtype=np.float64)
        stds = np.broadcast_to(np.asarray(std, dtype=np.float64), (len(self.means),)).copy()
        if not np.all(np.isfinite(stds) & (stds > 0)):
            raise UserError(f"mixture std must be positive, got {std}")
        self.stds = stds
        self.x_dim = self.means.shape[1]
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if not np.all(np.isfinite(weights) & (weights >= 0)) or weights.sum() <= 0:
                raise UserError("mixture weights must be non-negative and not all zero")
            weights = weights / weights.sum()
        self.weights = weights
        self._means_t = torch.as_tensor(self.means, dtype=torch.float32)
        self._stds_t = torch.as_tensor(self.stds, dtype=torch.float32)
        self._weights_t = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        device = generator.device
        if self._weights_t is None:
            labels = torch.randint(len(self.means), (n,), generator=generator, device=device)
        else:
            labels = torch.multinomial(self._weights_t.to(device), n, replacement=True, generator=generator)
        noise = torch.randn(n, self.x_dim, generator=generator, device=device)
        if np.all(self.stds == self.stds[0]):  # the grid's and ring's draw, kept as it was
            return self._means_t.to(device)[labels] + float(self.stds[0]) * noise, labels
        return self._means_t.to(device)[labels] + self._stds_t.to(device)[labels, None] * noise, labels


@DATASETS.register("grid")
class Grid(IsotropicMixture):
    """Square grid of Gaussians; default is the ALI paper's 25 modes on {-4,-2,0,2,4}^2, std 0.05."""

    description = "square grid of Gaussians (default 5x5, spacing 2, std 0.05: ALI paper)"

    @dataclass
    class Options:
        modes: int = 25
        spacing: float = 2.0
        std: float = 0.05

    def __init__(self, options: "Grid.Options") -> None:
        side = math.isqrt(options.modes) if 0 < options.modes <= MAX_MODES else 0
        if side < 1 or side * side != options.modes:
            raise UserError(f"grid modes must be a perfect square from 1 to {MAX_MODES}, got {options.modes}")
        if not options.spacing > 0:
            raise UserError(f"grid spacing must be positive, got {options.spacing}")
        axis = (np.arange(side) - (side - 1) / 2) * options.spacing
        means = np.array([(a, b) for a in axis for b in axis])
        super().__init__(means, options.std)


@DATASETS.register("ring")
class Ring(IsotropicMixture):
    """Gaussians evenly spaced on a circle (endpoint excluded, so no mean is duplicated)."""

    description = "ring of Gaussians (default 8 modes, radius 1, std 0.01)"

    @dataclass
    class Options:
        modes: int = 8
        radius: float = 1.0
        std: float = 0.01

    def __init__(self, options: "Ring.Options") -> None:
        if not 1 <= options.modes <= MAX_MODES:
            raise UserError(f"ring modes must be from 1 to {MAX_MODES}, got {options.modes}")
        if not options.radius > 0:
            raise UserError(f"ring radius must be positive, got {options.radius}")
        angles = np.linspace(0, 2 * np.pi, options.modes, endpoint=False)
        means = options.radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        super().__init__(means, options.std)


@DATASETS.register("identity")
class IdentityToy(Dataset):
    """x ~ N(0, 1) in 1-D: with z ~ N(0, 1), any measure-preserving map fools an ideal D."""

    description = "1-D x ~ N(0,1) with z ~ N(0,1): the non-identifiability toy"

    @dataclass
    class Options:
        pass

    def __init__(self, options: "IdentityToy.Options") -> None:
        self.x_dim = 1

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, 1, generator=generator, device=generator.device)
        return x, torch.zeros(n, dtype=torch.long, device=generator.device)


@DATASETS.register("mixture")
class Mixture(IsotropicMixture):
    """Any isotropic Gaussian mixture: means from a CSV/NPY file or inline, stds and weights too.

    ``means`` is a file (``.csv`` with one row per component, ``.npy`` of shape [k, d]) or inline
    text, components separated by ``;`` and coordinates by spaces (``'0 0;2 2;4 0'``). ``std`` is
    one number, one per component (inline or a file) or empty; ``weights`` likewise (empty: equal).
    A file's numbers are read when the spec is parsed and stored inline in the run's config, so a
    run never depends on the file again (its table label shows a short digest instead).
    """

    description = "Gaussian mixture from a means file or inline list (means=means.csv,std=0.1[,weights=w.csv])"

    @dataclass
    class Options:
        means: str = ""
        std: str = "0.05"
        weights: str = ""

    @classmethod
    def resolve_options(cls, options: "Mixture.Options") -> "Mixture.Options":
        """Read files named by the options into inline text (what the run's config records)."""
        return cls.Options(means=_inline(_numbers(options.means, "means", ndim=2)),
                           std=_inline(_numbers(options.std, "std", ndim=1)),
                           weights=_inline(_numbers(options.weights, "weights", ndim=1)) if options.weights else "")

    def __init__(self, options: "Mixture.Options") -> None:
        means = _numbers(options.means, "means", ndim=2)
        if not 1 <= len(means) <= MAX_MODES:
            raise UserError(f"mixture: from 1 to {MAX_MODES} components, got {len(means)}")
        stds = _numbers(options.std, "std", ndim=1)
        if len(stds) not in (1, len(means)):
            raise UserError(f"mixture: std gives {len(stds)} values for {len(means)} components (give 1 or {len(means)})")
        weights = _numbers(options.weights, "weights", ndim=1) if options.weights else None
        if weights is not None and len(weights) != len(means):
            raise UserError(f"mixture: weights gives {len(weights)} values for {len(means)} components")
        super().__init__(means, stds if len(stds) > 1 else stds[0], weights)


def _numbers(text: str, what: str, ndim: int) -> np.ndarray:
    """Numbers from a ``.csv``/``.npy`` file or inline text (rows by ``;``, columns by spaces)."""
    text = text.strip()
    if not text:
        raise UserError(f"mixture: {what} is required (a .csv/.npy file or inline numbers, e.g. means=0 0;2 2)")
    path = Path(text).expanduser()
    try:
        if path.suffix.lower() in (".csv", ".npy", ".txt"):
            if not path.is_file():
                raise UserError(f"mixture: {what} file {path} does not exist")
            if path.suffix.lower() == ".npy":
                values = np.load(path, allow_pickle=False)
            else:
                values = np.loadtxt(path, delimiter="," if path.suffix.lower() == ".csv" else None, ndmin=2)
        else:
            rows = [r.split() for r in text.split(";") if r.strip()]
            if len({len(row) for row in rows}) > 1:
                raise UserError(f"mixture: the rows of {what} have different lengths: {text!r}")
            values = np.array([[float(v) for v in row] for row in rows])
    except UserError:
        raise
    except (ValueError, OSError) as exc:
        raise UserError(f"mixture: cannot read {what} from {text!r}: {str(exc).splitlines()[0]}") from None
    values = np.asarray(values, dtype=np.float64)
    if ndim == 1:
        values = values.reshape(-1)
    elif values.ndim != 2:  # a file or inline rows of equal length always give a full table
        raise UserError(f"mixture: {what} must be a table, one row per component and one column per dimension")
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise UserError(f"mixture: {what} must be finite numbers, got {text!r}")
    return values


def _inline(values: np.ndarray) -> str:
    """The inverse of ``_numbers`` for inline text; ``repr`` keeps every float exactly."""
    if values.ndim == 1:
        return ";".join(repr(float(v)) for v in values)
    return ";".join(" ".join(repr(float(v)) for v in row) for row in values)
