"""Seeds derived from (run seed, purpose), so every random stream is independent of the others.

Because a network's initial weights depend only on (seed, network name), ALI's decoder and the
GAN's decoder start from the same weights for the same seed, and a strategy that skips a phase
(by loading a shared GAN) leaves every later random stream unchanged.
"""
from __future__ import annotations

import hashlib

import torch


def derive_seed(seed: int, *purpose: str) -> int:
    text = "/".join([str(seed), *purpose]).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def generator(seed: int, *purpose: str, device: str | torch.device = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, *purpose))
    return g
