"""What every part of the toolkit shares: configs, registries, seeding, file io, the tidy tables, threads. No training code."""
