"""Adam for stacked parameters: each member steps as its run alone would, with its own learning
rate (and its schedule's factor) and its own betas.

Every stacked tensor holds K members along its first axis. torch's Adam over the whole tensor
would run each member through one flat kernel loop, and which of a member's values fall in the
loop's scalar tail (the last few, past the vector registers) would then depend on K: the fused
kernel rounds those differently, so a seed's weights would depend on its stack-mates. This
optimiser hands torch's own Adam (fused where the engine asks for it) each member's slice as a
tensor of its own, so every member takes the loop its run alone takes, and it groups the slices
by their step's settings (rate, beta1, beta2), so a sweep or a tuning's trials train as one stack
with each member at its own.

On the CPU, with the fused kernel, an fp32 contiguous tensor whose every member has a multiple of
``VECTOR_BLOCK`` values takes one call over each run of consecutive members at one rate instead of
one per member: torch's CPU kernel splits a tensor into one range per thread at multiples of 16
values (a 64-byte cache line) and ends each range's vector loop with a scalar tail of its last
size % (vector width) values; when the tensor, and so each of its member slices, is a multiple of
16 values long, every range is too, whatever the thread count, so every value takes the vector
path in one call or member by member, and the result is the per-member step's bit for bit
(``tests/test_stacked.py`` checks it against the per-member step at 1, 2 and 3 threads).
That removes most of the per-slice calls and their bookkeeping. Since that rests on how torch's
kernel splits its work, ``merged_step_is_exact`` checks it at first use in a process (per thread
count) on probe tensors against the per-member step; on any difference every tensor is stepped
member by member and one warning says so.

Its state has torch Adam's keys and shapes over the stacked tensors, so a member's slice
(``stacking.member_optimizer_state``) resumes in a single run's Adam.
"""
from __future__ import annotations

import warnings
from typing import Any, Iterable, Sequence

import torch
from torch.optim.adam import adam

#: torch's fused CPU Adam cuts an fp32 tensor into per-thread ranges at multiples of this many values
#: (a 64-byte cache line), and its vector loop takes 16 (AVX-512) or 8 values at a time
VECTOR_BLOCK = 16
#: torch's fused Adam operator, which torch's own ``Adam(fused=True)`` calls (private: where a torch
#: build lacks it, every member takes the per-member step through torch's public Adam)
_FUSED_ADAM = getattr(torch, "_fused_adam_", None)


#: per thread count, whether the merged step gave the per-member step's bits on the probe
_merge_exact: dict[int, bool] = {}


def merged_step_is_exact() -> bool:
    """Whether, at this thread count, one fused call over a run of members gives each member the
    bits of its own call: checked once per process and thread count on probe tensors (members of
    16, 48 and 4,800 values, the last large enough to be split between threads; three rates over
    four members; three steps). A failed check is said once, as a warning."""
    threads = torch.get_num_threads()
    if threads not in _merge_exact:
        exact = _FUSED_ADAM is not None and _probe_merged_step()
        _merge_exact[threads] = exact
        if not exact and _FUSED_ADAM is not None:
            warnings.warn(f"izoo: torch {torch.__version__}'s fused Adam at {threads} threads does not give a member "
                          "the same bits in one call over several members as in its own call; the stacked engine "
                          "steps every member in a call of its own (slower, same numbers)", RuntimeWarning, stacklevel=3)
    return _merge_exact[threads]


def _probe_merged_step() -> bool:
    generator = torch.Generator().manual_seed(0)
    lrs = [1e-3, 1e-3, 3e-3, 1e-3]
    shapes = [(4, 16), (4, 3, 16), (4, 4800)]
    tensors = [torch.randn(s, generator=generator) for s in shapes]
    grads = [[torch.randn(s, generator=generator) for s in shapes] for _ in range(3)]
    params = {merged: [torch.nn.Parameter(t.clone()) for t in tensors] for merged in (True, False)}
    for merged, ps in params.items():
        opt = MemberAdam(ps, lrs, (0.5, 0.999), kernel={"fused": True}, merge_aligned=merged)
        for step_grads in grads:
            for p, g in zip(ps, step_grads):
                p.grad = g.clone()
            opt.step(checked=True)
    return all(torch.equal(a, b) for a, b in zip(params[True], params[False]))


Settings = tuple[float, float, float]  # a member's step: (learning rate, beta1, beta2)


class MemberAdam(torch.optim.Adam):
    """Adam over stacked parameters ``[K, ...]``, member k at learning rate ``lrs[k]`` times
    ``scales[k]`` (its schedule's factor, set before each step) with betas ``betas[k]`` (or one
    pair for every member).

    ``kernel``: the Adam options that pick torch's implementation, ``{"fused": True}`` or
    ``{"foreach": True}`` (default: torch's choice). ``merge_aligned=False`` steps every tensor
    member by member even where one call would do (the reference the merged step is tested and
    timed against).
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lrs: Sequence[float],
                 betas: tuple[float, float] | Sequence[tuple[float, float]] = (0.9, 0.999), eps: float = 1e-8,
                 kernel: dict[str, Any] | None = None, merge_aligned: bool = True) -> None:
        per_member = [tuple(b) for b in betas] if isinstance(betas[0], (tuple, list)) else [tuple(betas)] * len(lrs)
        if len(per_member) != len(lrs):
            raise ValueError(f"MemberAdam: {len(lrs)} learning rates but {len(per_member)} pairs of betas")
        # the group's "lr" and "betas" are member 0's, for a member checkpoint's sake; steps use the members'
        super().__init__(params, lr=lrs[0], betas=per_member[0], eps=eps, **(kernel or {}))
        self.lrs = list(lrs)
        self.betas = per_member
        self.merge_aligned = merge_aligned
        self.scales = [1.0] * len(self.lrs)  # each member's schedule factor (``train.lr_schedule``)
        self._runs_at: tuple[tuple[float, ...], dict[Settings, list[tuple[int, int]]]] | None = None

    def _runs(self) -> dict[Settings, list[tuple[int, int]]]:
        """Per step settings, its members as runs of consecutive members [start, stop); found
        again only when the schedule factors changed since the last step."""
        scales = tuple(self.scales)
        if self._runs_at is None or self._runs_at[0] != scales:
            found: dict[Settings, list[tuple[int, int]]] = {}
            for k, (lr, scale, (beta1, beta2)) in enumerate(zip(self.lrs, scales, self.betas)):
                runs = found.setdefault((lr * scale, beta1, beta2), [])
                if runs and runs[-1][1] == k:
                    runs[-1] = (runs[-1][0], k + 1)
                else:
                    runs.append((k, k + 1))
            self._runs_at = (scales, found)
        return self._runs_at[1]

    def _state(self, p: torch.Tensor, on_device: bool) -> dict[str, torch.Tensor]:
        state = self.state[p]
        if not state:  # as torch's Adam initialises it
            state["step"] = (torch.zeros((), dtype=torch.float32, device=p.device) if on_device
                             else torch.tensor(0.0, dtype=torch.float32))
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    @torch.no_grad()
    def step(self, closure=None, checked: bool = False):  # noqa: ANN001 - torch's signature
        """``checked``: skip the merged step's check (the check's own steps)."""
        if closure is not None:
            raise ValueError("MemberAdam takes no closure")
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:  # torch's fused CPU Adam reads a non-contiguous gradient in the wrong order
                if not p.grad.is_contiguous():
                    p.grad = p.grad.contiguous()
            states = [self._state(p, bool(group["fused"] or group["capturable"])) for p in params]
            if (self.merge_aligned and group["fused"] and _FUSED_ADAM is not None
                    and all(p.device.type == "cpu" for p in params) and (checked or merged_step_is_exact())):
                self._fused_cpu_step(group, params, states)
            else:
                self._per_member_step(group, params, states)
            for s in states:
                s["step"] += 1
        return None

    def _per_member_step(self, group: dict[str, Any], params: list[torch.Tensor],
                         states: list[dict[str, torch.Tensor]]) -> None:
        """torch's Adam on every member's slice as a tensor of its own, one call per rate."""
        slices = [(p.unbind(0), p.grad.unbind(0), s["exp_avg"].unbind(0), s["exp_avg_sq"].unbind(0))
                  for p, s in zip(params, states)]
        for (lr, beta1, beta2), runs in self._runs().items():
            members = [k for start, stop in runs for k in range(start, stop)]
            # torch's Adam adds 1 to each step tensor it is given: one per slice, then the shared one
            steps = [s["step"].clone() for s in states for _ in members]
            adam([w[k] for w, _, _, _ in slices for k in members],
                 [g[k] for _, g, _, _ in slices for k in members],
                 [m[k] for _, _, m, _ in slices for k in members],
                 [v[k] for _, _, _, v in slices for k in members], [], steps,
                 foreach=group["foreach"], fused=group["fused"], capturable=group["capturable"],
                 amsgrad=False, beta1=beta1, beta2=beta2, lr=lr, weight_decay=0.0, eps=group["eps"],
                 maximize=False)

    @staticmethod
    def in_one_call(params: list[torch.Tensor]) -> list[bool]:
        """For each stacked tensor, whether the fused CPU step takes it as one tensor (per run of
        members at one rate) rather than member by member: fp32 and contiguous, with its gradient, and
        a multiple of ``VECTOR_BLOCK`` values per member (at any thread count)."""
        return [p.dtype == torch.float32 and p.is_contiguous() and (p.grad is None or p.grad.is_contiguous())
                and p[0].numel() % VECTOR_BLOCK == 0 for p in params]

    def _fused_cpu_step(self, group: dict[str, Any], params: list[torch.Tensor],
                        states: list[dict[str, torch.Tensor]]) -> None:
        """The same kernel calls' arithmetic with fewer calls: see the module's docstring."""
        whole = self.in_one_call(params)
        tensors = [(p, p.grad, s["exp_avg"], s["exp_avg_sq"], s["step"] + 1) for p, s in zip(params, states)]
        for (lr, beta1, beta2), runs in self._runs().items():
            lists: tuple[list[torch.Tensor], ...] = ([], [], [], [], [])
            for in_one, (p, g, m, v, step) in zip(whole, tensors):
                for start, stop in runs:
                    pieces = [(start, stop)] if in_one else [(k, k + 1) for k in range(start, stop)]
                    for a, b in pieces:
                        for out, t in zip(lists, (p, g, m, v)):
                            out.append(t[a:b])
                        lists[4].append(step)
            _FUSED_ADAM(*lists[:4], [], lists[4], amsgrad=False, lr=lr, beta1=beta1, beta2=beta2,
                        weight_decay=0.0, eps=group["eps"], maximize=False, grad_scale=None, found_inf=None)
