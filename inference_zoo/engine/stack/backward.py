"""One backward chain through a stacked maxout discriminator, shared by both players.

Why: in an adversarial step, D's loss needs D's weight gradients and the generator side's loss
needs the gradient of D's logits with respect to D's inputs. Autograd runs one backward chain
through D per loss. But our maxout discriminators treat samples independently (no batch
statistics), so logit i depends on input i alone and both losses' chains are the same per-sample
Jacobian d logit_i / d activations_i, scaled by each loss's d loss / d logit_i. One chain with a
unit upstream gradient serves both: each layer's weight gradient scales its inputs by D's
upstream, and the input gradient is the chain's end scaled by the generator side's upstream.
That saves a quarter of D's training FLOPs and one maxout backward per layer (docs/speed.md
measures what it buys). The maths is autograd's; only rounding differs (sums in another order), and
a tie between maxout pieces (measure zero for continuous inputs) would pass the gradient to each
tied piece where autograd picks one.

Used by the stacked engine through ``adversarial.JointPass(both_players=...)``;
the single engine keeps autograd's two chains, so its runs stay bit-identical to published ones.
"""
from __future__ import annotations

from typing import Any

import torch

from .matmul import member_addmm, member_mm, member_row_sums
from .layers import FeatureMajorSequential, StackedLinear, StackedMaxout


def both_players_logits(discriminator: torch.nn.Module,
                        inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(logits for D's loss, logits for the generator side's loss), or None where not applicable.

    Both are D's logits [K, n] on ``inputs`` ([K, n, features] each), for a ``per_sample``
    discriminator (the layer protocol, nets/base.py) whose stacked ``net`` is maxout layers
    and a linear logit. The first carries gradients to D's weights only, the second to the
    inputs only, which is all ``train.update`` asks of each loss. None (use autograd) for any
    other network, under autocast, or with a layer without bias.
    """
    if not getattr(type(discriminator), "per_sample", False) or not isinstance(getattr(discriminator, "net", None),
                                                                               FeatureMajorSequential):
        return None
    *maxouts, head = discriminator.net
    if (not all(isinstance(m, StackedMaxout) and m.linear.bias is not None for m in maxouts)
            or not isinstance(head, StackedLinear) or head.bias is None or head.weight.shape[1] != 1):
        return None
    h = inputs[0] if len(inputs) == 1 else torch.cat(inputs, dim=-1)
    if torch.is_autocast_enabled(h.device.type):
        return None
    layout = tuple((m.units, m.pieces) for m in maxouts)
    params = [t for m in maxouts for t in (m.linear.weight, m.linear.bias)] + [head.weight, head.bias]
    return _SharedChain.apply(layout, h, *params)


class _SharedChain(torch.autograd.Function):
    """Forward: maxout layers then a linear logit, feature-major ([K, features, n]) inside.

    Backward is called once per loss (``train.update`` asks each group's gradient separately):
    the unit-upstream chain is built by whichever call comes first and kept for the other.
    Maxout is ``amax`` plus a 0/1 mask of the winning pieces (on this strided layout ``max``
    with indices costs several times as much); the mask is built in the pre-activations' memory and turned
    into the chain in place, since each is used once.
    """

    @staticmethod
    def forward(ctx: Any, layout: tuple[tuple[int, int], ...], h: torch.Tensor, *params: torch.Tensor):
        ctx.set_materialize_grads(False)
        a = h.transpose(1, 2)
        layer_inputs, masks = [], []
        for (units, pieces), weight, bias in zip(layout, params[0::2], params[1::2]):
            pre = member_addmm(bias, weight, a).view(a.shape[0], units, pieces, a.shape[-1])
            layer_inputs.append(a)
            a = pre.amax(2)
            masks.append(pre.eq_(a.unsqueeze(2)))
        logits = member_addmm(params[-1], params[-2], a).squeeze(1)
        layer_inputs.append(a)
        ctx.save_for_backward(*layer_inputs, *params)
        ctx.masks, ctx.chain = masks, None  # intermediates used once: kept off autograd's version checks
        return logits, logits.clone()

    @staticmethod
    def _chain(ctx: Any, params: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        """Per maxout layer, d logit / d pre-activations [K, units*pieces, n] (unit upstream)."""
        if ctx.chain is None:
            n = ctx.masks[0].shape[-1]
            grad = params[-2].transpose(1, 2).expand(-1, -1, n)  # d logit / d last hidden layer
            chain = []
            for i in reversed(range(len(ctx.masks))):
                pre_grad = ctx.masks[i].mul_(grad.unsqueeze(2)).flatten(1, 2)
                chain.insert(0, pre_grad)
                if i:
                    grad = member_mm(params[2 * i].transpose(1, 2), pre_grad)
            ctx.masks, ctx.chain = None, chain
        return ctx.chain

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, d_upstream: torch.Tensor | None, g_upstream: torch.Tensor | None):
        saved = ctx.saved_tensors
        layers = len(saved) // 3 - 1  # saved: layers + 1 inputs, then 2 * (layers + 1) parameters
        layer_inputs, params = saved[:layers + 1], saved[layers + 1:]
        needs = ctx.needs_input_grad
        grad_h = None
        grads: list[torch.Tensor | None] = [None] * len(params)
        if g_upstream is not None and needs[1]:
            end = member_mm(params[0].transpose(1, 2), _SharedChain._chain(ctx, params)[0])  # d logit / d input
            grad_h = (end * g_upstream.unsqueeze(1)).transpose(1, 2)
        if d_upstream is not None:
            chain = _SharedChain._chain(ctx, params)
            row = d_upstream.unsqueeze(1)  # [K, 1, n]
            for i in range(layers):
                if needs[2 + 2 * i]:
                    grads[2 * i] = member_mm(chain[i], (layer_inputs[i] * row).transpose(1, 2))
                if needs[3 + 2 * i]:
                    grads[2 * i + 1] = member_mm(row, chain[i].transpose(1, 2)).squeeze(1)
            if needs[-2]:
                grads[-2] = member_mm(row, layer_inputs[-1].transpose(1, 2))
            if needs[-1]:
                grads[-1] = member_row_sums(d_upstream.unsqueeze(1))
        return (None, grad_h, *grads)
