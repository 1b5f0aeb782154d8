"""Matmuls and row sums of stacked members whose results depend neither on K nor on the thread count.

A stacked layer multiplies K members' matrices at once. ``torch.bmm`` hands the K products to the
BLAS as one batched call, and the BLAS is free to pick its kernel, blocking and threading from the
batch count and the thread count: on some CPUs (MKL on an AMD EPYC with AVX-512; on Intel Xeons
for some shapes, such as a 1-D toy's one-feature input) member k's product then differs in its
last bits between a stack of 3 and a stack of 1, or between 1 and 2 threads, and a seed's numbers
would depend on its stack-mates or on how many cores were free.

So every member's result is *defined* as its **canonical** form: its own ``torch.mm`` (``addmm``,
``sum``) on its own 2-D slice, with one thread, on operands at a 64-byte boundary (a slice that is
not is copied first, keeping its strides: some BLAS paths round by address). That call has the
same shape, strides, alignment and thread count whatever K is and however many threads the process
uses, so a member's bits depend on neither, by construction. The batched call is only a faster way to the same bits: the first time a
call signature (operation, shapes, strides, alignment, dtype, device, thread count) is met, both
are computed on the real operands and on random operands of that signature (the real ones alone
can fool it: zeros, or a few exactly representable values, get equal bits from kernels that round
differently) and compared bit for bit; the batched call is used for that signature from then on
only where every member's result was identical, and the canonical form otherwise. Kernel choices
depend on shapes, strides and threads, not on the values, so a signature's verdict holds for every
later call. ``verdicts()`` tells which signatures take which path (the speed benchmark records it)
and ``tests/test_kernel_forms.py`` checks the canonical forms themselves on the
machine it runs on (any K, offset in memory and thread count).
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterator, Sequence

import torch

#: per call signature, whether the batched call gave every member its canonical bits
_verdicts: dict[tuple, bool] = {}


def verdicts() -> dict[tuple, bool]:
    """The call signatures met so far in this process: True where the batched call is used."""
    return dict(_verdicts)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch's intra-op threads set to one inside (restored after)."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


#: the alignment, in bytes, of every operand a canonical form computes on: torch's CPU allocator
#: gives fresh tensors this alignment, so a stack of one's operands have it
ALIGNMENT = 64


def _on_boundary(t: torch.Tensor) -> bool:
    return t.data_ptr() % ALIGNMENT == 0


def _fresh(t: torch.Tensor) -> torch.Tensor:
    """An uninitialised tensor of ``t``'s shape, strides, dtype and device: a fresh allocation, so
    on an ``ALIGNMENT``-byte boundary."""
    return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=t.device)


def aligned(t: torch.Tensor) -> torch.Tensor:
    """``t`` itself where its first element sits on an ``ALIGNMENT``-byte boundary, else a fresh
    copy with the same shape and strides (so the same kernel variant): MKL's small-matrix paths
    (AVX2, seen on an AMD EPYC) round by the operands' address, and member k of a stack sits at an
    offset of k members' sizes, so its own ``mm`` on its slice gave other bits than alone."""
    return t if _on_boundary(t) else _fresh(t).copy_(t)


def _canonical(fn: Callable[..., Any], members: Sequence[tuple[torch.Tensor, ...]], out: torch.Tensor) -> torch.Tensor:
    with torch.no_grad(), one_thread():
        for args, o in zip(members, out.unbind(0)):
            target = o if _on_boundary(o) else _fresh(o)
            fn(*(aligned(a) for a in args), out=target)
            if target is not o:
                o.copy_(target)
    return out


def _probe(t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random values in a fresh tensor of ``t``'s shape, strides, dtype, device and alignment."""
    itemsize = t.element_size()
    span = 1 + sum((n - 1) * st for n, st in zip(t.shape, t.stride()) if n > 0)
    buffer = torch.randn(span + 64 // itemsize, generator=g).to(dtype=t.dtype, device=t.device)
    shift = (t.data_ptr() - buffer.data_ptr()) % 64
    return buffer.as_strided(t.shape, t.stride(), shift // itemsize if shift % itemsize == 0 else 0)


def _members(operands: tuple[torch.Tensor, ...]) -> list[tuple[torch.Tensor, ...]]:
    return list(zip(*(t.unbind(0) for t in operands)))


def _either(name: str, operands: tuple[torch.Tensor, ...], batched: Callable[..., torch.Tensor],
            fn: Callable[..., Any], out_shape: tuple[int, ...]) -> torch.Tensor:
    """The canonical result, through the batched call where it was found to give the same bits."""
    # with each operand's alignment (address mod 64 bytes): a BLAS may pick its path by that too
    key = (name, torch.get_num_threads(),
           *((t.shape, t.stride(), t.dtype, t.device.type, t.data_ptr() % 64) for t in operands))
    verdict = _verdicts.get(key)
    with torch.no_grad():
        if verdict:
            return batched(*operands)
        out = _canonical(fn, _members(operands), operands[0].new_empty(out_shape))
        if verdict is None:
            _verdicts[key] = torch.equal(batched(*operands), out) and _agree_on_probes(operands, batched, fn, out_shape)
    return out


#: outputs compared on random operands before a batched call is trusted (small products are probed
#: repeatedly: two kernels that round differently agree on a few values quite often)
PROBE_VALUES = 4096


def _agree_on_probes(operands: tuple[torch.Tensor, ...], batched: Callable[..., torch.Tensor],
                     fn: Callable[..., Any], out_shape: tuple[int, ...]) -> bool:
    g = torch.Generator().manual_seed(0)
    size = max(1, math.prod(out_shape))
    for _ in range(min(64, -(-PROBE_VALUES // size))):
        probes = tuple(_probe(t, g) for t in operands)
        if not torch.equal(batched(*probes), _canonical(fn, _members(probes), probes[0].new_empty(out_shape))):
            return False
    return True


def member_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[K, m, q] x [K, q, p] -> [K, m, p]``: member k's product as its own one-thread ``mm``."""
    return _either("mm", (a, b), torch.bmm, torch.mm, (a.shape[0], a.shape[1], b.shape[2]))


def member_addmm(bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``bias[K, m] + a[K, m, q] x b[K, q, p] -> [K, m, p]`` (bias along the columns), member k's as
    its own one-thread ``addmm``."""
    column = bias.unsqueeze(-1)
    return _either("addmm", (column, a, b), torch.baddbmm, torch.addmm, (a.shape[0], a.shape[1], b.shape[2]))


def member_row_sums(t: torch.Tensor) -> torch.Tensor:
    """``[K, m, p] -> [K, m]``, sums along the last axis, member k's as its own one-thread sum (a
    reduction's threading depends on its whole size)."""
    return _either("sum", (t,), lambda t: t.sum(-1), _row_sum, tuple(t.shape[:2]))


def _row_sum(t: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    return torch.sum(t, -1, out=out)


def _engine_skips_probe() -> bool:
    """Whether torch tells, inside a backward pass, which nodes it will not execute (a private
    call, ``torch._C._will_engine_execute_node``, checked here on a small graph before it is used:
    where it is missing or answers wrongly, every input gradient a layer could give is computed)."""
    will_execute = getattr(torch._C, "_will_engine_execute_node", None)
    if will_execute is None:
        return False
    seen: dict[str, bool] = {}

    class Probe(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            ctx.nodes = a.grad_fn, b.grad_fn
            return a * b

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor):
            seen["a"], seen["b"] = (will_execute(node) for node in ctx.nodes)
            return grad, grad

    try:
        a, b = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
        torch.autograd.grad(Probe.apply(a * 1.0, b * 1.0).sum(), [a])
        wanted = seen == {"a": True, "b": False}
        seen.clear()
        torch.autograd.grad(Probe.apply(a * 1.0, b * 1.0).sum(), [a, b])
        return wanted and seen == {"a": True, "b": True}
    except (RuntimeError, TypeError, AttributeError):
        return False


_SKIPS: bool | None = None


def _will_need(node: Any) -> bool:
    """Whether the running backward pass needs the gradient flowing into ``node``, the ``grad_fn``
    of an input that requires one (None for a leaf, whose node cannot be asked about during
    ``autograd.grad``: its gradient is computed)."""
    return node is None or not _SKIPS or bool(torch._C._will_engine_execute_node(node))


def member_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """K linear layers on feature-major inputs: ``weight[K, out, in] x x[K, in, n] (+ bias[K, out])``,
    forward and backward through the member forms above.

    Two autograd nodes, as torch's own linear layer has in effect: one gives the weights'
    gradients, the other passes the output's gradient through and gives the input's, so a loss
    that asks for D's weights only, or (through D) for the generator side's only, runs only the
    matmuls it needs.
    """
    global _SKIPS
    if _SKIPS is None:  # probed once per process, outside any backward pass
        with torch.enable_grad():
            _SKIPS = _engine_skips_probe()
    device = x.device.type
    if torch.is_autocast_enabled(device):  # as autocast runs a matmul: in its dtype, cast differentiably
        dtype = torch.get_autocast_dtype(device)
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
        with torch.autocast(device, enabled=False):
            return member_linear(x, weight, bias)
    y = _WeightGradients.apply(x.detach(), weight, bias)
    return _InputGradient.apply(y, x, weight.detach()) if x.requires_grad else y


class _WeightGradients(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x)
        return member_mm(weight, x) if bias is None else member_addmm(bias, weight, x)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        needs = ctx.needs_input_grad
        return (None, member_mm(grad, x.transpose(1, 2)) if needs[1] else None,
                member_row_sums(grad) if needs[2] else None)


class _InputGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, y: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(weight)
        ctx.x_node = x.grad_fn
        return y.view_as(y)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor):
        (weight,) = ctx.saved_tensors
        grad_x = None
        if ctx.needs_input_grad[1] and _will_need(ctx.x_node):
            grad_x = member_mm(weight.transpose(1, 2), grad)
        return grad, grad_x, None
