"""What every part of the toolkit shares: configs, registries, seeding, file io, the tidy tables, threads. No training code."""

__version__ = "0.1.0"  # the one place: pyproject.toml reads it, runs record it
