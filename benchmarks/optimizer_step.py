"""The stacked engine's Adam step: torch's fused Adam over whole stacked tensors against the
per-member Adam (``inference_zoo/engine/stack/adam.py``), which steps each member as its run alone
would so that members do not depend on their stack-mates, with and without its merged calls for
aligned tensors.

Run as ``python benchmarks/optimizer_step.py [--members 16] [--rounds 5]``: milliseconds per step on the
paper's toy ALI parameters, interleaved rounds, medians and their ratios; writes
``benchmarks/results/optimizer_step.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from inference_zoo.core.config import RunConfig
from inference_zoo.engine.stack.adam import MemberAdam
from inference_zoo.engine.stack.layers import stack_strategies
from inference_zoo.engine.train import build_strategy


def milliseconds(optimizer: torch.optim.Optimizer, steps: int = 30) -> float:
    for _ in range(3):
        optimizer.step()
    t0 = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    return (time.perf_counter() - t0) / steps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "optimizer_step.json")
    args = parser.parse_args()
    stacked = stack_strategies([build_strategy(RunConfig(method="ali", seed=s), 2) for s in range(args.members)])
    params = list(stacked.parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    optimizers = {
        "whole tensors (torch fused Adam)": lambda: torch.optim.Adam(params, lr=1e-4, fused=True),
        "per member (MemberAdam, fused)": lambda: MemberAdam(params, [1e-4] * args.members, kernel={"fused": True}),
        "every tensor member by member (MemberAdam, merge_aligned=False)":
            lambda: MemberAdam(params, [1e-4] * args.members, kernel={"fused": True}, merge_aligned=False),
    }
    times: dict[str, list[float]] = {name: [] for name in optimizers}
    for _ in range(args.rounds):
        for name, make in optimizers.items():
            times[name].append(milliseconds(make()))
    medians = {k: statistics.median(v) for k, v in times.items()}
    whole, member, unmerged = medians.values()
    for name, ms in medians.items():
        print(f"{name:66s} {ms:7.2f} ms per step")
    print(f"per member / whole: x{member / whole:.2f}; member by member / whole: x{unmerged / whole:.2f}")
    record = {"members": args.members, "threads": torch.get_num_threads(), "machine": platform.platform(),
              "ms_per_step": {k: round(v, 2) for k, v in medians.items()}, "ratio": round(member / whole, 3),
              "ratio_member_by_member": round(unmerged / whole, 3),
              "rounds": {k: [round(x, 2) for x in v] for k, v in times.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
