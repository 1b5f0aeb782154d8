"""Architectures by name; every strategy builds its networks through one of these."""
from .base import ARCHITECTURES, ArchConfig, Architecture, NetworkFactory
from . import mlp  # noqa: F401  (registers "mlp")

__all__ = ["ARCHITECTURES", "ArchConfig", "Architecture", "NetworkFactory"]
