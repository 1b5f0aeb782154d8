"""Training speed of the paper's toy ALI: run-steps per second against a plain PyTorch reference.

Run as ``python benchmarks/train_speed.py [--steps N] [--batch-sizes 100,1000] [--members 1,4,16] [--rounds 3]
[--compile] [--lr-sweep] [--batched-forms]``.
In one process it measures (a) a plain single-run ALI loop written here, the way a paper's release
would write it, (b) izoo's single engine (the reference loop of ``train.py``), (c) izoo's stacked
engine (``engine/stack/engine.py``) with K = 1, 4, 16 seeds in one stack (with ``--compile`` also the largest
stack with ``train.compile``, with ``--lr-sweep`` also the largest stack with one learning rate per
member, with ``--batched-forms`` also the largest stack with the batched ``bmm`` matmuls the
engine used before its one-call-per-member forms, ``engine/stack/matmul.py``: the price of
stack independence on every CPU), and the largest stack split over one-thread processes, one
per core, as ``izoo compare`` and ``izoo study`` run it by default, (d) the peers, what a user
would run instead: PyTorch's own ensembling recipe (``torch.func``, the largest K, torch's Adam and
its fused kernel; also split over the cores the same way) and one plain
reference per core as separate one-thread processes, and a fp32 matmul peak measured at the start
of every round. It prints run-steps per second (K runs x steps / seconds), the ratio of each to (a)
and to the round's fastest peer, and the achieved matmul FLOP/s as a share of that round's peak
(medians over rounds), and writes ``benchmarks/results/train_speed.json``.
The share of peak counts the FLOPs each configuration performs: the stacked engine's step does
the same maths with a quarter fewer discriminator FLOPs (``inference_zoo/engine/stack/backward.py``).
Ratios, not absolute times, are what carry across machines.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import os
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from inference_zoo.core.config import EvalConfig, RunConfig, TrainConfig
from inference_zoo.core.environment import cpu_name
from inference_zoo.data import parse_data_spec
from inference_zoo.nets import ArchConfig
from inference_zoo.engine.stack import matmul as member_matmul
from inference_zoo.engine.stack import backward as shared_backward
from inference_zoo.engine.stack import layers as stacking
from inference_zoo.engine.train import Trainer
from inference_zoo.engine.stack.engine import StackedTrainer


def _load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ALI_LOOP = _load_example("ali_loop")
ARCH = ArchConfig()  # the paper's toy networks: encoder 2x400, decoder 4x400, maxout D 3x200x5


def ali_flops_per_step(batch: int, a: ArchConfig = ARCH, x_dim: int = 2, z_dim: int = 2,
                       shared_chain: bool = False) -> float:
    """Matmul FLOPs of one ALI step: F = 2*B*sum(in*out) per net and batch half.

    Encoder and decoder: forward + backward (weights and inputs) = 3F. Discriminator: forward on
    both halves (2F), the D loss's backward (weight and input gradients, 2 * 2F) and the generator
    loss's backward through D (input gradients only, 2F): 8F. torch's profiler counts the same
    1.03 GFLOP for the plain reference's step at batch 100 (``with_flops=True``). The stacked
    engine's ``shared_chain`` runs one input-gradient chain through D for both losses: 6F.
    """
    def macs(dims):
        return sum(i * o for i, o in zip(dims[:-1], dims[1:]))

    enc = macs([x_dim + z_dim, *a.encoder_hidden, z_dim])
    dec = macs([z_dim, *a.decoder_hidden, x_dim])
    d_dims = [x_dim + z_dim, *a.discriminator_hidden]
    disc = sum(i * o * a.maxout_pieces for i, o in zip(d_dims[:-1], d_dims[1:])) + d_dims[-1]
    f = lambda m: 2.0 * batch * m  # noqa: E731
    return 3 * f(enc) + 3 * f(dec) + (6 if shared_chain else 8) * f(disc)


def matmul_peak(seconds: float = 2.0, n: int = 1024) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2.0 * n**3 * reps / (time.perf_counter() - t0)


def plain_reference(steps: int, batch: int, device: str = "cpu") -> float:
    """(a) The paper's toy ALI as a straightforward loop (``examples/ali_loop.py``, checked against
    the engine by ``tests/test_examples.py``); returns run-steps per second."""
    torch.manual_seed(0)
    enc, dec, disc = (net.to(device) for net in ALI_LOOP.networks())
    opt_g = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-4, betas=(0.5, 0.999))
    data = ALI_LOOP.grid(100_000, torch.Generator().manual_seed(0)).to(device)

    def step():
        x = data[torch.randint(len(data), (batch,), device=device)]
        ALI_LOOP.ali_step(enc, dec, disc, x, opt_d, opt_g)

    for _ in range(10):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps / (time.perf_counter() - t0)


class FuncEnsemble:
    """A peer: K copies of the plain reference trained as one ensemble with PyTorch's own recipe
    (``torch.func.stack_module_state`` + ``functional_call`` + ``vmap``) and torch's Adam over the
    stacked tensors (``fused`` where this torch has it). Member k does the reference's arithmetic
    with its own minibatches and noise (``tests/test_benchmark.py`` checks it against ``ali_step``)."""

    def __init__(self, members: list[tuple[nn.Module, nn.Module, nn.Module]], lr: float = 1e-4,
                 fused: bool = False) -> None:
        from torch.func import stack_module_state

        self.k = len(members)
        self.base = [copy.deepcopy(net).to("meta") for net in members[0]]
        stacked = [stack_module_state([m[i] for m in members]) for i in range(3)]
        self.params = [p for p, _ in stacked]
        self.buffers = [b for _, b in stacked]
        for params in self.params:
            for t in params.values():
                t.requires_grad_(True)
        opt = dict(lr=lr, betas=(0.5, 0.999), **({"fused": True} if fused else {}))
        self.opt_d = torch.optim.Adam(list(self.params[2].values()), **opt)
        self.opt_g = torch.optim.Adam([*self.params[0].values(), *self.params[1].values()], **opt)

    def _losses(self, pe, pd, pc, be, bd, bc, x, z, eps):
        from torch.func import functional_call

        enc, dec, disc = self.base
        z_hat = functional_call(enc, (pe, be), (torch.cat([x, eps], 1),))
        x_tilde = functional_call(dec, (pd, bd), (z,))
        real = functional_call(disc, (pc, bc), (torch.cat([x, z_hat], 1),)).squeeze(-1)
        fake = functional_call(disc, (pc, bc), (torch.cat([x_tilde, z], 1),)).squeeze(-1)
        d_loss = F.softplus(-real).mean() + F.softplus(fake).mean()
        g_loss = F.softplus(real).mean() + F.softplus(-fake).mean()
        return d_loss, g_loss

    def step(self, x: torch.Tensor, z: torch.Tensor, eps: torch.Tensor) -> None:
        """One update of every member: x, z, eps are (K, batch, 2), member k's minibatch and noise."""
        from torch.func import vmap

        d_loss, g_loss = vmap(self._losses)(*self.params, *self.buffers, x, z, eps)
        d_params = list(self.params[2].values())
        g_params = [*self.params[0].values(), *self.params[1].values()]
        # members are independent: the gradient of the summed losses is each member's own gradient
        d_grads = torch.autograd.grad(d_loss.sum(), d_params, retain_graph=True)
        g_grads = torch.autograd.grad(g_loss.sum(), g_params)
        for p, grad in zip(d_params + g_params, d_grads + g_grads):
            p.grad = grad.contiguous()  # vmap's weight gradients come transposed, and torch's fused
            # CPU Adam reads a non-contiguous gradient in the wrong order (tests/test_benchmark.py)
        self.opt_d.step()
        self.opt_g.step()

    def member(self, k: int) -> list[dict[str, torch.Tensor]]:
        """Member k's parameters per network (encoder, decoder, discriminator)."""
        return [{name: t[k].detach() for name, t in params.items()} for params in self.params]


def func_ensemble(steps: int, batch: int, members: int, fused: bool) -> float:
    """The torch.func peer, ``members`` runs in one ensemble; returns run-steps per second."""
    nets = []
    for k in range(members):
        torch.manual_seed(k)
        nets.append(ALI_LOOP.networks())
    ensemble = FuncEnsemble(nets, fused=fused)
    data = ALI_LOOP.grid(100_000, torch.Generator().manual_seed(0))

    def step():
        x = data[torch.randint(len(data), (members, batch))]
        ensemble.step(x, torch.randn(members, batch, 2), torch.randn(members, batch, 2))

    for _ in range(10):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return members * steps / (time.perf_counter() - t0)


def fused_adam_available() -> bool:
    try:
        torch.optim.Adam([torch.zeros(1, requires_grad=True)], fused=True)
    except (RuntimeError, ValueError, TypeError):
        return False
    return True


def _one_process(steps: int, batch: int, start, queue) -> None:
    torch.set_num_threads(1)
    start.wait()
    t0 = time.time()
    plain_reference(steps, batch)
    queue.put((t0, time.time()))


def plain_processes(steps: int, batch: int, processes: int) -> float:
    """The other peer: ``processes`` plain references at one thread each, started together (what a
    user does with one run per core); returns their summed run-steps per second over the wall time
    from the first start to the last finish (warm-up steps included in neither)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    start, queue = context.Barrier(processes + 1), context.Queue()
    workers = [context.Process(target=_one_process, args=(steps, batch, start, queue)) for _ in range(processes)]
    for w in workers:
        w.start()
    start.wait()
    spans = [queue.get(timeout=3600) for _ in workers]
    for w in workers:
        w.join()
    # each process's own 10 warm-up steps lie inside its span: count them as work done
    return processes * (steps + 10) / (max(t1 for _, t1 in spans) - min(t0 for t0, _ in spans))


def _steps_in_process(kind: str, lengths: tuple[int, int], batch: int, members: int, start, queue) -> None:
    """A worker of ``split_over_processes``: one thread, a warm-up, then each length started with
    the others' (``start``, a barrier), its (length, start, end) put on ``queue``."""
    torch.set_num_threads(1)

    def izoo(n: int) -> None:
        configs = [_config(n, batch, "stacked", seed) for seed in range(members)]
        with tempfile.TemporaryDirectory() as tmp:
            StackedTrainer(configs, [Path(tmp) / str(c.seed) for c in configs]).run()

    run = izoo if kind == "izoo" else lambda n: func_ensemble(n, batch, members, fused=fused_adam_available())
    run(lengths[0])
    for n in lengths:
        start.wait()
        t0 = time.time()
        run(n)
        queue.put((n, t0, time.time()))


def split_over_processes(kind: str, steps: int, batch: int, members: int, processes: int) -> float:
    """``processes`` one-thread processes of ``members`` stacked runs each, started together: izoo's
    stacked engine as ``izoo compare`` and ``izoo study`` split a stack over the cores by default
    (``kind`` "izoo"), or the torch.func ensemble split the same way by hand ("func"). Run-steps
    per second of them all, from the wall time of two run lengths started together (their
    difference, so each process's set-up, warm-up and final checkpoint cancel out)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    start, queue = context.Barrier(processes + 1), context.Queue()
    lengths = (max(5, steps // 5), steps)
    workers = [context.Process(target=_steps_in_process, args=(kind, lengths, batch, members, start, queue))
               for _ in range(processes)]
    for w in workers:
        w.start()
    spans: dict[int, list[tuple[float, float]]] = {n: [] for n in lengths}
    for _ in lengths:
        start.wait()
        for _ in workers:
            n, t0, t1 = queue.get(timeout=3600)
            spans[n].append((t0, t1))
    for w in workers:
        w.join()
    wall = {n: max(t1 for _, t1 in s) - min(t0 for t0, _ in s) for n, s in spans.items()}
    return processes * members * (lengths[1] - lengths[0]) / (wall[lengths[1]] - wall[lengths[0]])


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _config(steps: int, batch: int, engine: str, seed: int = 0, compile_: bool = False, lr: float = 1e-4,
            device: str = "cpu", amp: bool = False) -> RunConfig:
    return RunConfig(method="ali", seed=seed, data=parse_data_spec("grid"), arch=ARCH, eval=EvalConfig(),
                     train=TrainConfig(steps=steps, batch_size=batch, lr=lr, beta1=0.5, device=device, amp=amp,
                                       log_every=steps, checkpoint_every=steps, engine=engine, compile=compile_))


def _steady_rate(train_seconds, steps: int, runs: int) -> float:
    """Run-steps per second in steady state: the time of ``steps`` extra steps, from two runs of
    different lengths, so set-up, warm-up and the final checkpoint (an fsync'ed file per run,
    written every 5,000 steps in a real run) cancel out, as the reference's warm-up steps do."""
    short = max(5, steps // 5)
    train_seconds(short)  # warm-up: first-use costs (allocator, kernels for new shapes) are paid here
    return runs * (steps - short) / (train_seconds(steps) - train_seconds(short))


def izoo_single(steps: int, batch: int, device: str = "cpu") -> float:
    """(b) izoo's single engine, one run of the same model; returns run-steps per second."""
    def seconds(n: int) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            return Trainer(_config(n, batch, "single", device=device), tmp).run().seconds
    return _steady_rate(seconds, steps, 1)


def izoo_stacked(steps: int, batch: int, members: int, compile_: bool = False, lr_sweep: bool = False,
                 device: str = "cpu", amp: bool = False) -> float:
    """(c) izoo's stacked engine, ``members`` seeds in one stack; returns run-steps per second.
    ``compile_``: with ``train.compile`` (its compilation is paid in the warm-up run);
    ``lr_sweep``: each member with its own learning rate (``engine/stack/adam.py`` instead of fused Adam)."""
    def seconds(n: int) -> float:
        configs = [_config(n, batch, "stacked", seed, compile_, 1e-4 * (1 + seed if lr_sweep else 1), device, amp)
                   for seed in range(members)]
        with tempfile.TemporaryDirectory() as tmp:
            return StackedTrainer(configs, [Path(tmp) / str(c.seed) for c in configs]).run()[0].seconds
    return _steady_rate(seconds, steps, members)


@contextlib.contextmanager
def batched_forms():
    """Inside, the stacked engine multiplies its members with one batched ``bmm``/``baddbmm`` call
    per layer (K-dependent on some CPUs; kept here only as the speed baseline)."""
    def linear(x, weight, bias):
        return torch.bmm(weight, x) if bias is None else torch.baddbmm(bias.unsqueeze(-1), weight, x)

    def addmm(bias, a, b):
        return torch.baddbmm(bias.unsqueeze(-1), a, b)

    patches = [(stacking, "member_linear", linear), (shared_backward, "member_mm", torch.bmm),
               (shared_backward, "member_addmm", addmm),
               (shared_backward, "member_row_sums", lambda t: t.sum(-1))]
    saved = [(module, name, getattr(module, name)) for module, name, _ in patches]
    for module, name, value in patches:
        setattr(module, name, value)
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def izoo_stacked_batched(steps: int, batch: int, members: int) -> float:
    with batched_forms():
        return izoo_stacked(steps, batch, members)


def _signature_summary() -> dict:
    """How the stacked engine's matmul signatures met in this process were computed: batched where
    that gave every member its canonical bits, canonical (one thread per member) elsewhere."""
    seen = member_matmul.verdicts()
    canonical = [f"{key[0]} {' x '.join(str(list(s[0])) for s in key[2:])} at {key[1]} threads"
                 for key, batched in seen.items() if not batched]
    return {"batched": sum(seen.values()), "canonical": len(canonical), "canonical_signatures": canonical}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-sizes", default="100,1000")
    parser.add_argument("--members", default="1,4,16", help="stack sizes K of the stacked engine")
    parser.add_argument("--rounds", type=int, default=3,
                        help="measure every configuration this many times, interleaved; report medians")
    parser.add_argument("--compile", action="store_true",
                        help="also measure the largest stack with train.compile (torch.compile of the networks)")
    parser.add_argument("--lr-sweep", action="store_true",
                        help="also measure the largest stack with a learning rate per member (a sweep)")
    parser.add_argument("--batched-forms", action="store_true",
                        help="also measure the largest stack with the previous batched bmm matmul forms")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train_speed.json")
    args = parser.parse_args()

    peaks: list[float] = []  # the peak is measured again each round: on a shared host it drifts too
    records = []
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        steps = max(20, args.steps * 100 // batch)
        configurations = [("plain reference", False, lambda: plain_reference(steps, batch)),
                          ("izoo single engine, 1 run", False, lambda: izoo_single(steps, batch))]
        members = [int(m) for m in args.members.split(",")]
        # fewer steps for larger stacks: each step does K runs' work
        stack_steps = lambda k: max(10, steps // max(1, k // 2))  # noqa: E731
        for k in members:
            configurations.append((f"izoo stacked engine, K={k}", True,
                                   lambda k=k: izoo_stacked(stack_steps(k), batch, k)))
        # the peers: what a user would run instead of izoo's stacked engine
        k = max(members)
        configurations.append((f"peer: torch.func ensemble, K={k}, torch Adam", False,
                               lambda k=k: func_ensemble(stack_steps(k), batch, k, fused=False)))
        if fused_adam_available():
            configurations.append((f"peer: torch.func ensemble, K={k}, fused Adam", False,
                                   lambda k=k: func_ensemble(stack_steps(k), batch, k, fused=True)))
        cores = len(os.sched_getaffinity(0))
        configurations.append((f"peer: {cores} plain processes x 1 thread", False,
                               lambda: plain_processes(steps, batch, cores)))
        if cores > 1 and k % cores == 0:  # the largest stack split over the cores, as izoo does by default
            part = k // cores
            configurations.append((f"izoo stacked engine, K={k} as {cores} processes x {part} x 1 thread", True,
                                   lambda part=part: split_over_processes("izoo", stack_steps(part), batch, part, cores)))
            configurations.append((f"peer: torch.func ensemble, K={k} as {cores} processes x {part} x 1 thread", False,
                                   lambda part=part: split_over_processes("func", stack_steps(part), batch, part, cores)))
        if args.compile:
            k = max(members)
            configurations.append((f"izoo stacked engine, K={k}, compiled", True,
                                   lambda k=k: izoo_stacked(stack_steps(k), batch, k, True)))
        if args.lr_sweep:
            k = max(members)
            configurations.append((f"izoo stacked engine, K={k}, lr sweep", True,
                                   lambda k=k: izoo_stacked(stack_steps(k), batch, k, lr_sweep=True)))
        if args.batched_forms:
            k = max(members)
            configurations.append((f"izoo stacked engine, K={k}, batched bmm", True,
                                   lambda k=k: izoo_stacked_batched(stack_steps(k), batch, k)))
        # rounds interleave the configurations, so a drift in the machine's speed (shared hosts
        # drift by 10 % over minutes) hits all of them alike; each ratio is taken within its round
        rates: dict[str, list[float]] = {name: [] for name, _, _ in configurations}
        for _ in range(args.rounds):
            peaks.append(matmul_peak(seconds=1.0))
            for name, _, measure in configurations:
                rates[name].append(measure())
        round_peaks = peaks[-args.rounds:]
        peak = statistics.median(round_peaks)
        print(f"fp32 matmul peak (1024^3, {torch.get_num_threads()} threads), median of the rounds: "
              f"{peak / 1e9:.1f} GFLOP/s (rounds {min(round_peaks) / 1e9:.1f}-{max(round_peaks) / 1e9:.1f})")
        reference = rates["plain reference"]
        best_peer = [max(rates[name][r] for name, _, _ in configurations if name.startswith("peer:"))
                     for r in range(args.rounds)]
        for name, shared_chain, _ in configurations:
            flops = ali_flops_per_step(batch, shared_chain=shared_chain)
            rate = statistics.median(rates[name])
            ratios = [r / ref for r, ref in zip(rates[name], reference)]
            shares = [r * flops / p for r, p in zip(rates[name], round_peaks)]
            to_peer = [r / best for r, best in zip(rates[name], best_peer)]
            record = {"configuration": name, "batch_size": batch, "run_steps_per_s": round(rate, 2),
                      "ms_per_run_step": round(1000 / rate, 2), "ratio_to_reference": round(statistics.median(ratios), 3),
                      "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
                      "ratio_to_best_peer": round(statistics.median(to_peer), 3),
                      "ratio_to_best_peer_range": [round(min(to_peer), 3), round(max(to_peer), 3)],
                      "flops_per_run_step": flops, "share_of_matmul_peak": round(statistics.median(shares), 3),
                      "rounds": [round(r, 2) for r in rates[name]]}
            records.append(record)
            print(f"batch {batch:5d}  {name:46s} {rate:8.1f} run-steps/s  {1000 / rate:7.2f} ms/run-step  "
                  f"x{statistics.median(ratios):.2f} of reference (rounds {min(ratios):.2f}-{max(ratios):.2f})  "
                  f"x{statistics.median(to_peer):.2f} of the best peer  "
                  f"{flops / 1e9:5.2f} GFLOP/run-step  {100 * statistics.median(shares):5.1f}% of peak")
    meta = {"machine": platform.platform(), "processor": cpu_name(),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "matmul_peak_flops": statistics.median(peaks), "matmul_peak_flops_rounds": peaks,
            "flops_per_step_batch100": ali_flops_per_step(100), "rounds": args.rounds,
            "member_matmul_signatures": _signature_summary(),
            "statistic": "median over rounds; ratio_to_reference is the median of per-round ratios, "
                         "ratio_to_best_peer the median of each round's rate over that round's fastest peer, "
                         "share_of_matmul_peak the median of each round's rate over the peak measured in that round"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "records": records}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
