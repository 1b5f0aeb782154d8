"""One backward chain through a stacked maxout D serves both players: same gradients as autograd."""
from __future__ import annotations

import pytest
import torch

from inference_zoo.nets.mlp import MaxoutDiscriminator, init_weights
from inference_zoo.engine.stack.backward import both_players_logits
from inference_zoo.engine.stack.layers import stack_strategies
from inference_zoo.strategies.adversarial import JointPass, adversarial_game


class _Holder(torch.nn.Module):
    """stack_strategies stacks a strategy's networks; a bare module holding D is enough here."""
    stackable = True

    def __init__(self, d):
        super().__init__()
        self.d = d


def stacked_discriminator(k: int, in_dims: int, seed: int = 0):
    torch.manual_seed(seed)
    members = [_Holder(init_weights(MaxoutDiscriminator(in_dims, (6, 5), pieces=3), 0.5)) for _ in range(k)]
    return stack_strategies(members).d


def gradients(d, real, fake, generator_loss, both_players):
    """Each loss's gradient of its own group, as train.update asks for them: D's loss -> D's
    parameters, the generator side's loss -> the inputs."""
    params = list(d.parameters())
    d_loss, g_loss, logs = adversarial_game(d, real, fake, generator_loss, JointPass(1, both_players))
    d_grads = torch.autograd.grad(d_loss.sum(), params, retain_graph=True)
    inputs = [t for t in (*real, *fake) if t.requires_grad]
    g_grads = torch.autograd.grad(g_loss.sum(), inputs)
    return d_loss, g_loss, logs, d_grads, g_grads


@pytest.mark.parametrize("generator_loss", ["nonsaturating", "minimax"])
@pytest.mark.parametrize("joint", [True, False])
def test_shared_chain_gives_autograds_gradients(generator_loss, joint):
    k, n = 3, 7
    d = stacked_discriminator(k, in_dims=4 if joint else 2)
    g = torch.Generator().manual_seed(1)
    x, x_fake = torch.randn(k, n, 2, generator=g), torch.randn(k, n, 2, generator=g).requires_grad_()
    if joint:  # ALI: (x, E(x)) vs (G(z), z)
        real = (x, torch.randn(k, n, 2, generator=g).requires_grad_())
        fake = (x_fake, torch.randn(k, n, 2, generator=g))
    else:  # GAN phase: x vs G(z)
        real, fake = (x,), (x_fake,)
    expected = gradients(d, real, fake, generator_loss, both_players=None)
    shared = gradients(d, real, fake, generator_loss, both_players=both_players_logits)
    for e, s in zip(expected[:2], shared[:2]):
        torch.testing.assert_close(s, e, rtol=1e-5, atol=1e-6)
    for key in expected[2]:
        torch.testing.assert_close(shared[2][key], expected[2][key])
    for e, s in zip(expected[3] + expected[4], shared[3] + shared[4]):
        assert s.shape == e.shape
        torch.testing.assert_close(s, e, rtol=1e-4, atol=1e-6)


def test_either_loss_may_be_differentiated_first():
    k, n = 2, 5
    d = stacked_discriminator(k, in_dims=4)
    real = (torch.randn(k, n, 2), torch.randn(k, n, 2, requires_grad=True))
    fake = (torch.randn(k, n, 2, requires_grad=True), torch.randn(k, n, 2))
    expected = gradients(d, real, fake, "nonsaturating", both_players=None)
    d_loss, g_loss, _ = adversarial_game(d, real, fake, "nonsaturating", JointPass(1, both_players_logits))
    g_grads = torch.autograd.grad(g_loss.sum(), [real[1], fake[0]], retain_graph=True)
    d_grads = torch.autograd.grad(d_loss.sum(), list(d.parameters()))
    for e, s in zip(expected[3] + expected[4], d_grads + g_grads):
        torch.testing.assert_close(s, e, rtol=1e-4, atol=1e-6)


def test_other_networks_and_autocast_fall_back_to_autograd():
    d = stacked_discriminator(2, in_dims=2)
    x = torch.randn(2, 4, 2)
    assert both_players_logits(torch.nn.Linear(2, 1), (x,)) is None
    assert both_players_logits(d, (x,)) is not None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert both_players_logits(d, (x,)) is None


def test_shared_chain_does_three_quarters_of_autograds_discriminator_flops():
    """Autograd: forward, D loss's weight + input chains, generator loss's input chain (8F for
    F = one side's forward). Shared: forward, weight gradients, one input chain (6F). The
    benchmark's FLOP count (``benchmarks/train_speed.py``) rests on this ratio."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    d = stack_strategies([_Holder(init_weights(MaxoutDiscriminator(4, (200, 200, 200), 5), 0.02))]).d
    real = (torch.randn(1, 50, 2), torch.randn(1, 50, 2, requires_grad=True))
    fake = (torch.randn(1, 50, 2, requires_grad=True), torch.randn(1, 50, 2))
    counted = {}
    for name, both_players in [("autograd", None), ("shared", both_players_logits)]:
        # the first call of each matmul signature also runs its canonical form (engine/stack/matmul.py)
        gradients(d, real, fake, "nonsaturating", both_players)
        with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
            gradients(d, real, fake, "nonsaturating", both_players)
        counted[name] = sum(e.flops for e in prof.key_averages() if e.flops)
    assert counted["shared"] / counted["autograd"] == pytest.approx(6 / 8, rel=0.02)
