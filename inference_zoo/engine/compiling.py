"""Optional ``torch.compile`` of a strategy's networks while it trains (``train.compile``).

Why only the networks: they are pure tensor functions, so compiling them needs no graph breaks,
while the strategy code around them draws noise from per-run generators and, in the stacked
engine, runs the discriminator through a custom autograd Function (``stack/backward.py``).
Each outermost ``nn.Sequential`` is compiled in place (``nn.Module.compile``), so state-dict keys,
checkpoints and the stacked engine's member mapping are unchanged. Compiled kernels are fp32 but
fuse and reorder operations, so a run rounds differently: the option is off by default and part of
a run's config. Evaluation runs eagerly (the context restores the networks), so every run's
metrics are computed the same way.

It is meant for GPUs, where per-kernel launch overhead is what compilation removes; what it
does on a CPU is measured in docs/speed.md.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Iterator

import torch
from torch import nn

from ..core.errors import UserError


def outermost_sequentials(module: nn.Module) -> list[nn.Sequential]:
    """The ``nn.Sequential`` submodules not inside another one: each network's layer stack."""
    found: list[nn.Sequential] = []

    def visit(m: nn.Module) -> None:
        for child in m.children():
            if isinstance(child, nn.Sequential):
                found.append(child)
            else:
                visit(child)

    visit(module)
    return found


@contextlib.contextmanager
def compiled_networks(module: nn.Module, enabled: bool, device: torch.device) -> Iterator[None]:
    """Within the context, ``module``'s layer stacks run compiled (when ``enabled``)."""
    if not enabled:
        yield
        return
    check_compile_works(device.type)
    stacks = outermost_sequentials(module)
    for stack in stacks:
        stack.compile()
    try:
        yield
    finally:
        for stack in stacks:
            stack._compiled_call_impl = None  # what nn.Module.compile set: back to eager


@functools.cache
def check_compile_works(device_type: str) -> None:
    """Fail with one line, before training, where torch.compile cannot build kernels here
    (on CPU inductor needs a C++ compiler)."""
    try:
        torch.compile(lambda t: t * 2 + 1)(torch.ones(4, device=device_type))
    except Exception as exc:  # noqa: BLE001 - any backend failure means: not usable here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"train.compile: torch.compile does not work on {device_type} here ({first})") from None
