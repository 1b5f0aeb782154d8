"""ALI in one page of plain PyTorch: what izoo's engine computes for `izoo compare --methods ali
--preset paper`, without the engine (no stacking, checkpoints, curves or run folders).

    python examples/ali_loop.py --steps 2000

The paper's toy networks (Dumoulin et al. 2016, appendix: encoder 2x400 and decoder 4x400 with
BatchNorm and ReLU, a maxout discriminator 3x200x5 on the pair (x, z)), the 25-Gaussian grid, the
non-saturating losses, and one Adam step for each player from the same minibatch and forward pass.
`tests/test_examples.py` runs `ali_step` beside izoo's ALI and the engine's update, from the same
weights, minibatches and noise, and checks that both give the same weights step after step.
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn


def mlp(dims: list[int]) -> nn.Sequential:
    """Linear (no bias) -> BatchNorm -> ReLU per hidden layer, then a linear output."""
    layers: list[nn.Module] = []
    for i, o in zip(dims[:-2], dims[1:-1]):
        layers += [nn.Linear(i, o, bias=False), nn.BatchNorm1d(o), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(dims[-2], dims[-1]))


class Maxout(nn.Module):
    def __init__(self, i: int, units: int, pieces: int) -> None:
        super().__init__()
        self.units, self.pieces, self.linear = units, pieces, nn.Linear(i, units * pieces)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(h).view(h.shape[0], self.units, self.pieces).max(-1).values


def networks(x_dim: int = 2, z_dim: int = 2) -> tuple[nn.Module, nn.Module, nn.Module]:
    """Encoder q(z | x, eps), decoder p(x | z), discriminator D(x, z); weights N(0, 0.02), biases 0."""
    encoder = mlp([x_dim + z_dim, 400, 400, z_dim])  # x with noise eps concatenated: a stochastic encoder
    decoder = mlp([z_dim, 400, 400, 400, 400, x_dim])
    discriminator = nn.Sequential(Maxout(x_dim + z_dim, 200, 5), Maxout(200, 200, 5), Maxout(200, 200, 5),
                                  nn.Linear(200, 1))
    for net in (encoder, decoder, discriminator):
        for m in net.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    return encoder, decoder, discriminator


def ali_step(encoder: nn.Module, decoder: nn.Module, discriminator: nn.Module, x: torch.Tensor,
             opt_d: torch.optim.Optimizer, opt_g: torch.optim.Optimizer, z_dim: int = 2
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """One ALI update: D tells (x, E(x)) from (G(z), z); the encoder and decoder try to fool it.
    Returns both losses (tensors: reading them waits for a GPU, so the loop reads them rarely)."""
    n = x.shape[0]
    z = torch.randn(n, z_dim, device=x.device)                          # z ~ p(z), drawn first
    z_hat = encoder(torch.cat([x, torch.randn(n, z_dim, device=x.device)], 1))  # z_hat ~ q(z | x)
    x_tilde = decoder(z)                                                 # x_tilde ~ p(x | z)
    real = discriminator(torch.cat([x, z_hat], 1)).squeeze(-1)
    fake = discriminator(torch.cat([x_tilde, z], 1)).squeeze(-1)
    d_loss = F.softplus(-real).mean() + F.softplus(fake).mean()  # -log D(x, E(x)) - log(1 - D(G(z), z))
    g_loss = F.softplus(real).mean() + F.softplus(-fake).mean()  # the players' non-saturating loss
    d_params = list(discriminator.parameters())
    g_params = [*encoder.parameters(), *decoder.parameters()]
    d_grads = torch.autograd.grad(d_loss, d_params, retain_graph=True)  # each loss for its own players
    g_grads = torch.autograd.grad(g_loss, g_params)
    for p, grad in zip(d_params + g_params, d_grads + g_grads):
        p.grad = grad
    opt_d.step()
    opt_g.step()
    return d_loss.detach(), g_loss.detach()


MEANS = torch.tensor([(a, b) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)], dtype=torch.float32)


def grid(n: int, generator: torch.Generator) -> torch.Tensor:
    """n points of the 25-Gaussian grid: means on {-4, -2, 0, 2, 4}^2, std 0.05."""
    return MEANS[torch.randint(25, (n,), generator=generator)] + 0.05 * torch.randn(n, 2, generator=generator)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=1e-4)
    args = parser.parse_args()
    torch.manual_seed(0)
    data = grid(100_000, torch.Generator().manual_seed(0))
    encoder, decoder, discriminator = networks()
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=args.lr, betas=(0.2, 0.999))
    opt_g = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=args.lr, betas=(0.2, 0.999))
    for step in range(1, args.steps + 1):
        x = data[torch.randint(len(data), (100,))]
        d_loss, g_loss = ali_step(encoder, decoder, discriminator, x, opt_d, opt_g)
        if step % 500 == 0:
            print(f"step {step}: D loss {d_loss.item():.3f}, encoder/decoder loss {g_loss.item():.3f}")
    decoder.eval()
    with torch.no_grad():
        samples = decoder(torch.randn(2000, 2))
    nearest = (samples.unsqueeze(1) - MEANS).norm(dim=-1).min(-1).values
    print(f"{(nearest < 0.15).float().mean():.1%} of 2,000 samples within 3 std of a mode")


if __name__ == "__main__":
    main()
