"""Adam with one learning rate per stacked member, so a learning-rate sweep trains as one stack.

Why: every stacked tensor holds K members along its first axis, and torch's Adam takes one
learning rate per parameter group. Adam's learning rate only scales its step, so this runs torch's
own Adam kernel (fused where the engine's Adam is) with a unit learning rate into a scratch tensor,
then adds that step times member k's rate to member k's slice: one kernel pass and one
scaled add, not the chain of elementwise passes an Adam written out in Python takes. Its state
has torch Adam's keys and shapes, so a member's slice (``stacking.member_optimizer_state``)
resumes in a single run's Adam. The stacked engine uses it only when the members' learning
rates differ; otherwise it keeps plain fused Adam.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import torch
from torch.optim.adam import adam


class MemberLrAdam(torch.optim.Adam):
    """Adam over stacked parameters ``[K, ...]`` with member k's learning rate ``lrs[k]``.

    ``kernel``: the Adam options that pick torch's implementation, ``{"fused": True}`` or
    ``{"foreach": True}`` (default: torch's choice).
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lrs: Sequence[float],
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 kernel: dict[str, Any] | None = None) -> None:
        # group "lr" is member 0's, for a member checkpoint's sake; the steps use ``lrs``
        super().__init__(params, lr=lrs[0], betas=betas, eps=eps, **(kernel or {}))
        self.lrs = list(lrs)
        self._lr_tensors: dict[tuple[torch.device, torch.dtype, int], torch.Tensor] = {}
        self._steps: dict[torch.Tensor, torch.Tensor] = {}  # scratch: each parameter's unit-rate step

    def _member_lr(self, p: torch.Tensor) -> torch.Tensor:
        """The learning rates as a [K, 1, ...] tensor that broadcasts over ``p``."""
        key = (p.device, p.dtype, p.dim())
        if key not in self._lr_tensors:
            self._lr_tensors[key] = torch.tensor(self.lrs, device=p.device, dtype=p.dtype).view(-1, *[1] * (p.dim() - 1))
        return self._lr_tensors[key]

    def _state(self, p: torch.Tensor, on_device: bool) -> dict[str, torch.Tensor]:
        state = self.state[p]
        if not state:  # as torch's Adam initialises it
            state["step"] = (torch.zeros((), dtype=torch.float32, device=p.device) if on_device
                             else torch.tensor(0.0, dtype=torch.float32))
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 - torch's signature
        if closure is not None:
            raise ValueError("MemberLrAdam takes no closure")
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            states = [self._state(p, bool(group["fused"] or group["capturable"])) for p in params]
            steps = [self._steps.setdefault(p, torch.empty_like(p)).zero_() for p in params]
            beta1, beta2 = group["betas"]
            # from zero, a unit-rate Adam step leaves -(bias-corrected m / (sqrt(v) + eps)) behind
            adam(steps, [p.grad for p in params], [s["exp_avg"] for s in states],
                 [s["exp_avg_sq"] for s in states], [], [s["step"] for s in states],
                 foreach=group["foreach"], fused=group["fused"], capturable=group["capturable"],
                 amsgrad=False, beta1=beta1, beta2=beta2, lr=1.0, weight_decay=0.0, eps=group["eps"],
                 maximize=False)
            for p, unit_step in zip(params, steps):
                p.addcmul_(unit_step, self._member_lr(p))
        return None
