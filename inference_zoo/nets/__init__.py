"""Architectures by name; every strategy builds its networks through one of these."""
from .base import ARCHITECTURES, ArchConfig, Architecture, NetworkFactory
from . import conv, mlp  # noqa: F401  (register "mlp", "dcgan", "ali32")

__all__ = ["ARCHITECTURES", "ArchConfig", "Architecture", "NetworkFactory"]
