"""Stacking K copies of a strategy into one model whose every layer runs the K members at once.

Why: a 2-D toy run is far too small to keep a CPU (or GPU) busy, so most of its step time is
per-operation overhead. K runs stacked into batched matmuls pay that overhead once.

Inside a stacked network activations are feature-major, ``[K, features, batch]``: a linear layer
is one ``baddbmm`` with weights ``[K, out, in]``, and BatchNorm of member k's channel c over the
batch is the native ``batch_norm`` on the contiguous view ``[1, K*C, batch]``, so every member
keeps its own batch statistics and running averages. Networks take and return the strategy's
layout, ``[K, batch, features]``.

Every stacked tensor is the members' tensors stacked on a new leading axis (then reshaped, e.g.
a strategy-level parameter of shape s becomes [K, 1, *s] so it broadcasts over the batch axis),
under the member's state-dict key: ``member_state(stacked, k)`` gives member k's state dict,
loadable by the single-run strategy, and optimiser states map the same way.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ...nets.mlp import Maxout
from .matmul import member_linear
from ...strategies import Strategy


class NotStackable(Exception):
    """The strategy uses a module with no stacked form: its runs are trained one by one."""


class StackedLinear(nn.Module):
    """K linear layers: [K, in, n] -> [K, out, n]. ``weight`` [K, out, in], ``bias`` [K, out]."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias) if bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return member_linear(x, self.weight, self.bias)


class StackedBatchNorm1d(nn.Module):
    """K BatchNorm1d layers over [K, C, n], each member normalised by its own batch statistics."""

    def __init__(self, members: list[nn.BatchNorm1d]) -> None:
        super().__init__()
        first = members[0]
        if not (first.affine and first.track_running_stats) or first.momentum is None:
            raise NotStackable("BatchNorm1d without affine/running statistics/momentum")
        self.eps, self.momentum = first.eps, first.momentum
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in members]))
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in members]))
        self.register_buffer("running_mean", torch.stack([m.running_mean for m in members]))
        self.register_buffer("running_var", torch.stack([m.running_var for m in members]))
        self.register_buffer("num_batches_tracked", torch.stack([m.num_batches_tracked for m in members]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, c, n = x.shape
        if self.training:
            self.num_batches_tracked.add_(1)
        y = F.batch_norm(x.reshape(1, k * c, n), self.running_mean.view(-1), self.running_var.view(-1),
                         self.weight.view(-1), self.bias.view(-1), self.training, self.momentum, self.eps)
        return y.view(k, c, n)


class StackedMaxout(nn.Module):
    """K maxout layers: [K, in, n] -> [K, units, n] (pieces of a unit are adjacent, as in Maxout)."""

    def __init__(self, members: list[Maxout]) -> None:
        super().__init__()
        self.units, self.pieces = members[0].units, members[0].pieces
        self.linear = _stack_linear([m.linear for m in members])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear(x)
        return h.view(h.shape[0], self.units, self.pieces, h.shape[-1]).max(2).values


class FeatureMajorSequential(nn.Sequential):
    """A stacked nn.Sequential: takes and returns [K, n, features], runs its layers on [K, features, n]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(1, 2)
        for layer in self:
            h = layer(h)
        return h.transpose(1, 2)


def _stack_linear(members: list[nn.Linear]) -> StackedLinear:
    bias = None if members[0].bias is None else torch.stack([m.bias.detach() for m in members])
    return StackedLinear(torch.stack([m.weight.detach() for m in members]), bias)


#: Activations applied to all members at once. Only exactly rounded ones: torch runs a tensor as
#: one flat loop, vector registers then a scalar tail, split between threads at sizes that depend
#: on the whole tensor, and tanh, sigmoid, ELU, GELU or SiLU round differently on the two paths,
#: so a member's values would depend on K and the thread count; networks with those train one
#: run at a time.
ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.Identity)

#: How each layer type inside an nn.Sequential is stacked (feature-major). Extend for new layers.
LAYER_STACKERS: dict[type, Callable[[list[Any]], nn.Module]] = {
    nn.Linear: _stack_linear,
    nn.BatchNorm1d: StackedBatchNorm1d,
    Maxout: StackedMaxout,
    **{t: (lambda members: members[0]) for t in ELEMENTWISE},
}

def _stack_network(members: list[nn.Module]) -> nn.Module:
    first = members[0]
    if any(type(m) is not type(first) for m in members):
        raise NotStackable("members have different network types")
    if type(first) is nn.Sequential:
        layers = []
        for i, layer in enumerate(first):
            stacker = LAYER_STACKERS.get(type(layer))
            if stacker is None:
                raise NotStackable(f"no stacked form of {type(layer).__name__}")
            layers.append(stacker([m[i] for m in members]))
        return FeatureMajorSequential(*layers)
    if getattr(type(first), "stack_children", False):  # the layer protocol (nets/base.py)
        if any(True for _ in first.parameters(recurse=False)) or any(True for _ in first.buffers(recurse=False)):
            raise NotStackable(f"{type(first).__name__} holds its own tensors")
        stacked = copy.copy(first)
        stacked._modules = {name: _stack_network([m._modules[name] for m in members])
                            for name in first._modules}
        return stacked
    raise NotStackable(f"no stacked form of {type(first).__name__}")


def stack_strategies(members: list[Strategy]) -> Strategy:
    """One strategy computing all members at once; its state is ``member_state``-compatible."""
    first = members[0]
    if not type(first).stackable:
        raise NotStackable(f"strategy {first.name} does not declare stackable = True")
    stacked = copy.copy(first)
    stacked._parameters = {
        name: None if p is None else nn.Parameter(torch.stack([m._parameters[name].detach() for m in members]).unsqueeze(1),
                                                  requires_grad=p.requires_grad)
        for name, p in first._parameters.items()}
    stacked._buffers = {name: None if b is None else torch.stack([m._buffers[name] for m in members]).unsqueeze(1)
                        for name, b in first._buffers.items()}
    stacked._modules = {name: _stack_network([m._modules[name] for m in members]) for name in first._modules}
    member_options = getattr(type(first), "member_options", {})  # a bare holder of networks has none
    if member_options:  # each member's value, one per member: [K]
        device = next(first.parameters()).device
        stacked.options = copy.copy(first.options)
        for name in member_options:
            setattr(stacked.options, name, torch.tensor([float(getattr(m.options, name)) for m in members],
                                                        dtype=torch.float32, device=device))
    return stacked


def member_state(stacked_state: dict[str, torch.Tensor], k: int, shapes: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    """Member k's state dict (single-run keys and shapes) from a stacked state dict."""
    return {key: stacked_state[key][k].reshape(shape).clone() for key, shape in shapes.items()}


def stacked_state(member_states: list[dict[str, torch.Tensor]], like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of ``member_state``: stack the members' tensors into the stacked shapes of ``like``."""
    return {key: torch.stack([s[key] for s in member_states]).reshape(ref.shape) for key, ref in like.items()}


def member_optimizer_state(stacked: dict[str, Any], k: int, shapes: list[torch.Size], lr: float,
                           betas: tuple[float, float] | None = None) -> dict[str, Any]:
    """Member k's Adam state dict, with its learning rate ``lr`` (and ``betas``, where given), from
    a stacked one (parameters in the same order)."""
    state = {}
    for index, entry in stacked["state"].items():
        state[index] = {name: (value if name == "step" else value[k].reshape(shapes[index]).clone())
                        for name, value in entry.items()}
    groups = copy.deepcopy(stacked["param_groups"])
    for group in groups:
        group["lr"] = lr
        if betas is not None:
            group["betas"] = tuple(betas)
    return {"state": state, "param_groups": groups}


def stacked_optimizer_state(members: list[dict[str, Any]], params: list[torch.Tensor]) -> dict[str, Any]:
    """Inverse of ``member_optimizer_state``: every member must be at the same Adam step."""
    state = {}
    for index, entry in members[0]["state"].items():
        state[index] = {name: (value if name == "step" else
                               torch.stack([m["state"][index][name] for m in members]).reshape(params[index].shape))
                        for name, value in entry.items()}
    return {"state": state, "param_groups": copy.deepcopy(members[0]["param_groups"])}
