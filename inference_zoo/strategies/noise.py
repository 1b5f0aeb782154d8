"""Where strategies and networks draw their noise (z ~ p(z), encoder noise, reparameterisation).

A single run draws from torch's global generator, which the trainer seeds per phase. A stacked
run of K members (``inference_zoo.engine.stacked``) installs one generator per member, seeded as that
member's single run would seed the global one; every draw then stacks K per-member draws, so each
member sees exactly the noise of the run it replaces. Strategies that draw noise only through
this module (and declare ``stackable = True``) can be trained stacked.
"""
from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Iterator, Sequence

import torch

_member_generators: ContextVar[tuple[torch.Generator, ...] | None] = ContextVar("izoo_member_generators", default=None)


def randn(*shape: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """N(0, I) noise of one run's ``shape``; [K, *shape] while K member generators are installed."""
    generators = _member_generators.get()
    if generators is None:
        return torch.randn(shape, device=device, dtype=dtype)
    return torch.stack([torch.randn(shape, generator=g, device=device, dtype=dtype) for g in generators])


def randn_like(t: torch.Tensor) -> torch.Tensor:
    """N(0, I) noise shaped like ``t`` (whose leading axis is the member axis in a stacked run)."""
    if _member_generators.get() is None:
        return torch.randn_like(t)
    return randn(*t.shape[1:], device=t.device, dtype=t.dtype)


@contextlib.contextmanager
def member_generators(generators: Sequence[torch.Generator]) -> Iterator[None]:
    """Route every draw through these per-member generators (one per stacked run)."""
    token = _member_generators.set(tuple(generators))
    try:
        yield
    finally:
        _member_generators.reset(token)


@contextlib.contextmanager
def one_run() -> Iterator[None]:
    """Draw from torch's global generator again inside a stacked run (evaluating one member)."""
    token = _member_generators.set(None)
    try:
        yield
    finally:
        _member_generators.reset(token)
