"""Does a stacked member get the same bits from each kernel form the engine uses, whatever its
stack and thread count? A scan of this machine's kernels.

Run: ``python -m inference_zoo.engine.stack.kernel_forms [--threads 1,2]``

For each form the stacked engine computes a member's numbers with (its matmuls, row sums,
BatchNorm, the transcendental functions through ``member_apply``, Adam's merged step) and for each shape of
a grid of odd and round sizes, member 1 of a stack of 3 (at an offset in memory, beside other
members) is compared bit for bit with the same member computed in a stack of its own (a fresh
allocation), at every thread count asked for, and with itself at one thread. The engine's forms
must differ on no shape (``tests/test_kernel_forms.py`` asserts it on the machine the suite runs
on); the plain batched ``bmm`` forms are scanned beside them for information: on many CPUs they
differ on some shapes, which is why the engine does not rely on them unchecked
(``matmul.py``).
"""
from __future__ import annotations

import argparse
import itertools
from typing import Callable

import torch

from ...strategies.base import member_apply
from .adam import MemberAdam
from .matmul import member_addmm, member_mm, member_row_sums
from .layers import StackedBatchNorm1d

WIDTHS = (1, 2, 3, 7, 13, 16, 130, 400)
BATCHES = (1, 21, 100)
MEMBERS = 3

Form = Callable[[list[torch.Tensor]], list[torch.Tensor]]


def _linear_operands(k: int, i: int, o: int, n: int, g: torch.Generator) -> list[torch.Tensor]:
    """weight [k, o, i], bias [k, o], feature-major input [k, i, n], output gradient [k, o, n]."""
    return [torch.randn(k, o, i, generator=g), torch.randn(k, o, generator=g),
            torch.randn(k, n, i, generator=g).transpose(1, 2), torch.randn(k, o, n, generator=g)]


def _batch_norm(t: list[torch.Tensor]) -> list[torch.Tensor]:
    """BatchNorm of [K, C, n] (the output gradient's shape), training mode, and its backward."""
    x = (t[3] * 0.5 + 1.0).requires_grad_()
    bn = StackedBatchNorm1d([torch.nn.BatchNorm1d(x.shape[1]) for _ in range(x.shape[0])])
    y = bn(x)
    return [y.detach(), *torch.autograd.grad(y, [x, bn.weight, bn.bias], t[3]), bn.running_mean, bn.running_var]


def _adam(t: list[torch.Tensor]) -> list[torch.Tensor]:
    p = torch.nn.Parameter(t[0].clone())
    opt = MemberAdam([p], [1e-3] * p.shape[0], (0.5, 0.999), kernel={"fused": True})
    for _ in range(2):
        p.grad = t[0] * 0.1 + 0.01
        opt.step()
    return [p.detach()]


#: the forms the stacked engine uses: each maps the operands of ``_linear_operands`` to results
#: whose leading axis is the member
ENGINE_FORMS: dict[str, Form] = {
    "linear forward (addmm per member)": lambda t: [member_addmm(t[1], t[0], t[2])],
    "linear forward, no bias (mm per member)": lambda t: [member_mm(t[0], t[2])],
    "input gradient (mm per member)": lambda t: [member_mm(t[0].transpose(1, 2), t[3])],
    "weight gradient (mm per member)": lambda t: [member_mm(t[3], t[2].transpose(1, 2))],
    "bias gradient (row sums per member)": lambda t: [member_row_sums(t[3])],
    "BatchNorm over [1, K*C, n], forward and backward": _batch_norm,
    "softplus, sigmoid, exp, log (member_apply)": lambda t: [
        member_apply(torch.nn.functional.softplus, t[3], 2), member_apply(torch.sigmoid, t[3], 2),
        member_apply(torch.exp, t[3], 2), member_apply(torch.log, t[3].abs() + 0.1, 2)],
    "Adam, merged step (MemberAdam)": _adam,
}

#: plain batched forms, scanned for information only
BATCHED_FORMS: dict[str, Form] = {
    "bmm: linear forward": lambda t: [torch.baddbmm(t[1].unsqueeze(-1), t[0], t[2])],
    "bmm: weight gradient": lambda t: [torch.bmm(t[3], t[2].transpose(1, 2))],
    "bmm: input gradient": lambda t: [torch.bmm(t[0].transpose(1, 2), t[3])],
}


def _alone(t: list[torch.Tensor], member: int) -> list[torch.Tensor]:
    """Member ``member``'s operands as a stack of one, freshly allocated (with the same strides)."""
    out = []
    for x in t:
        piece = x[member:member + 1]
        out.append(piece.transpose(1, 2).contiguous().transpose(1, 2) if x.dim() == 3 and x.stride(1) == 1
                   and x.shape[1] > 1 else piece.clone())
    return out


def _same(a: list[torch.Tensor], b: list[torch.Tensor], member: int | None) -> bool:
    return all(torch.equal(x[member] if member is not None else x, y[0] if member is not None else y)
               for x, y in zip(a, b))


def scan(forms: dict[str, Form], threads: tuple[int, ...] = (1, 2), widths: tuple[int, ...] = WIDTHS,
         batches: tuple[int, ...] = BATCHES) -> dict[str, tuple[list[tuple[int, int, int, int, str]], int]]:
    """Per form, the (threads, batch, in, out, what) cases that differ, and how many were tried.

    ``what`` is "stack" (member 1 of 3 against itself alone) or "threads" (alone at that thread
    count against alone at one thread)."""
    saved = torch.get_num_threads()
    results: dict[str, tuple[list, int]] = {name: ([], 0) for name in forms}
    try:
        g = torch.Generator().manual_seed(0)
        for n, i, o in itertools.product(batches, widths, widths):
            t = _linear_operands(MEMBERS, i, o, n, g)
            alone = _alone(t, 1)
            for name, form in forms.items():
                if name.startswith("BatchNorm") and n < 2:
                    continue
                bad, total = results[name]
                torch.set_num_threads(1)
                reference = form(alone)
                for count in threads:
                    torch.set_num_threads(count)
                    total += 1
                    if not _same(form(t), form(alone), 1):
                        bad.append((count, n, i, o, "stack"))
                    if count != 1 and not _same(form(alone), reference, None):
                        bad.append((count, n, i, o, "threads"))
                results[name] = (bad, total)
    finally:
        torch.set_num_threads(saved)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="thread counts to compare (comma list)")
    args = parser.parse_args()
    threads = tuple(int(t) for t in args.threads.split(","))
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"threads {','.join(map(str, threads))}; member 1 of {MEMBERS} against itself alone")
    for title, forms in (("the engine's forms", ENGINE_FORMS), ("plain batched forms (not used unchecked)",
                                                                  BATCHED_FORMS)):
        print(title)
        for name, (bad, total) in scan(forms, threads).items():
            print(f"  {name}: {len(bad)} of {total} cases differ")


if __name__ == "__main__":
    main()
