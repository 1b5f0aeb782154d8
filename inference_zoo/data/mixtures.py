"""2-D Gaussian mixtures (ALI paper's 25-grid, the 8-ring) and the 1-D identity toy."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..core.errors import UserError
from .base import DATASETS, Dataset


#: more modes than this would not fit the held-out set's 10,000 points, let alone a figure
MAX_MODES = 10_000

class IsotropicMixture(Dataset):
    """Equal-weight mixture of isotropic Gaussians with known components."""

    def __init__(self, means: np.ndarray, std: float) -> None:
        if not std > 0:
            raise UserError(f"std must be positive, got {std}")
        self.means = np.asarray(means, dtype=np.float64)
        self.stds = np.full(len(self.means), float(std))
        self.x_dim = self.means.shape[1]
        self._means_t = torch.as_tensor(self.means, dtype=torch.float32)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        device = generator.device
        labels = torch.randint(len(self.means), (n,), generator=generator, device=device)
        noise = torch.randn(n, self.x_dim, generator=generator, device=device)
        return self._means_t.to(device)[labels] + float(self.stds[0]) * noise, labels


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
