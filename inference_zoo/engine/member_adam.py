"""Adam for stacked parameters: each member steps as its run alone would, with its own learning rate.

Every stacked tensor holds K members along its first axis. torch's Adam over the whole tensor
would run each member through one flat kernel loop, and which of a member's values fall in the
loop's scalar tail (the last few, past the vector registers) would then depend on K: the fused
kernel rounds those differently, so a seed's weights would depend on its stack-mates. This
optimiser hands torch's own Adam (fused where the engine asks for it) each member's slice as a
tensor of its own, so every member takes the loop its run alone takes, and it groups the slices
by learning rate, so a learning-rate sweep trains as one stack with each member at its own rate.

Its state has torch Adam's keys and shapes over the stacked tensors, so a member's slice
(``stacking.member_optimizer_state``) resumes in a single run's Adam.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import torch
from torch.optim.adam import adam


class MemberAdam(torch.optim.Adam):
    """Adam over stacked parameters ``[K, ...]``, member k at learning rate ``lrs[k]``.

    ``kernel``: the Adam options that pick torch's implementation, ``{"fused": True}`` or
    ``{"foreach": True}`` (default: torch's choice).
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lrs: Sequence[float],
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 kernel: dict[str, Any] | None = None) -> None:
        # group "lr" is member 0's, for a member checkpoint's sake; the steps use ``lrs``
        super().__init__(params, lr=lrs[0], betas=betas, eps=eps, **(kernel or {}))
        self.lrs = list(lrs)
        self.scale = 1.0  # every member's rate is multiplied by it (a learning-rate schedule sets it)
        self._members_by_lr: dict[float, list[int]] = {}
        for k, lr in enumerate(self.lrs):
            self._members_by_lr.setdefault(lr, []).append(k)

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
            raise ValueError("MemberAdam takes no closure")
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            states = [self._state(p, bool(group["fused"] or group["capturable"])) for p in params]
            slices = [(p.unbind(0), p.grad.unbind(0), s["exp_avg"].unbind(0), s["exp_avg_sq"].unbind(0))
                      for p, s in zip(params, states)]
            beta1, beta2 = group["betas"]
            for lr, members in self._members_by_lr.items():
                # torch's Adam adds 1 to each step tensor it is given: one per slice, then the shared one
                steps = [s["step"].clone() for s in states for _ in members]
                adam([w[k] for w, _, _, _ in slices for k in members],
                     [g[k] for _, g, _, _ in slices for k in members],
                     [m[k] for _, _, m, _ in slices for k in members],
                     [v[k] for _, _, _, v in slices for k in members], [], steps,
                     foreach=group["foreach"], fused=group["fused"], capturable=group["capturable"],
                     amsgrad=False, beta1=beta1, beta2=beta2, lr=lr * self.scale, weight_decay=0.0, eps=group["eps"],
                     maximize=False)
            for s in states:
                s["step"] += 1
        return None
