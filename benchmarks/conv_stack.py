"""Can K seeds of a conv network train faster as one model? The 28x28 nets' convolutions, stacked.

The stacked engine's gain on the toys comes from many small matmuls becoming a few larger ones:
a small MLP's step is mostly per-operator overhead, and a stack of K pays it once. A conv net's
step on 28x28 images at batch 100 is mostly convolution arithmetic, so a stack can only gain where
K members' convolutions run faster as one call than as K calls. This benchmark measures that,
for mnist5k's default nets (preset ``mnist``: dcgan, 32-64 channels, z 32, batch 100, ALI):

1. **The single engine's step**: its steady time per step (two run lengths, their difference),
   and how much of it the convolutions take (torch's profiler, the same difference).
2. **Each convolution of the step, K members at once** (forward and backward, the input shapes
   the networks meet, interleaved rounds): K separate calls (what the single engine does K times),
   one grouped call (``groups=K``, members' channels side by side), and, for the strided
   convolutions, im2col (``unfold``) and one batched matmul.
3. **The estimate**: a K-member stack that ran the convolutions in their fastest stacked form, did
   every other operator's arithmetic per member as now, and spent no time at all outside the
   operators (Python, bookkeeping: what stacking amortises) would train at most
   ``step / (convolutions x best / separate + other operators)`` times the single engine's
   run-steps/s. The step's share by bucket comes from torch's profiler. Operators' self time
   includes their dispatch, which a stack also pays once for K members (the record gives the
   operator calls per step), so this is an estimate, not a strict bound.

4. **Side by side**, the ceiling of any stack that keeps a member's arithmetic its own run's: K
   single-engine runs spread over ``--threads`` workers at one thread each (worker threads in
   one process, whose operators release the interpreter; and worker processes, what ``izoo
   study`` does on a machine with free cores), against the single engine on one thread and on
   ``--threads`` threads, in run-steps/s, set-up cancelled by two run lengths.

    python benchmarks/conv_stack.py --members 4 8 --threads 2

Writes ``benchmarks/results/conv_stack.json``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile

from inference_zoo.core.config import EvalConfig, RunConfig
from inference_zoo.core.environment import cpu_name
from inference_zoo.core.presets import get_preset
from inference_zoo.data import build_dataset, parse_data_spec
from inference_zoo.engine.train import Trainer, build_strategy

#: operator name fragments -> bucket, first match wins (lower-cased names)
BUCKETS = (
    ("convolution", ("convolution", "conv2d", "conv_transpose")),
    ("batchnorm", ("batch_norm",)),
    ("adam", ("adam", "_foreach")),
    ("matmul", ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")),
)


def run_config(steps: int, preset: str = "mnist", method: str = "ali") -> RunConfig:
    p = get_preset(preset)
    return RunConfig(method=method, seed=0, data=parse_data_spec("mnist5k"), arch=p.arch, eval=EvalConfig(),
                     train=dataclasses.replace(p.train, steps=steps, log_every=steps, checkpoint_every=steps,
                                               engine="single"))


def profiled_run(steps: int) -> dict[str, float]:
    """Seconds of a single-engine run of ``steps`` steps: wall, and operators' self time by bucket
    ("other operators": every operator in no bucket; "outside operators": wall minus all operators,
    Python and the trainer's bookkeeping)."""
    with tempfile.TemporaryDirectory() as tmp, profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        Trainer(run_config(steps), tmp).run()
        wall = time.perf_counter() - start
    seconds = {name: 0.0 for name, _ in BUCKETS}
    seconds["other operators"] = 0.0
    for e in prof.key_averages():
        key = e.key.lower()
        bucket = next((name for name, parts in BUCKETS if any(p in key for p in parts)), "other operators")
        seconds[bucket] += e.self_cpu_time_total / 1e6
    seconds["outside operators"] = wall - sum(seconds.values())
    calls = sum(e.count for e in prof.key_averages())
    return {"wall": wall, "calls": calls, **seconds}


def single_step(steps: int, repeats: int) -> dict:
    """The single engine's steady step and where its time goes: per bucket, the difference between
    a run of ``steps`` and one of a fifth as many (set-up and the final evaluation cancel), from
    the repeat whose step was fastest."""
    short = max(5, steps // 5)
    profiled_run(short)  # warm-up
    best: dict[str, float] | None = None
    for _ in range(repeats):
        a, b = profiled_run(short), profiled_run(steps)
        per_step = {name: (b[name] - a[name]) / (steps - short) for name in a}
        if best is None or per_step["wall"] < best["wall"]:
            best = per_step
    assert best is not None
    step, calls = best.pop("wall"), best.pop("calls")
    return {"step_seconds": step, "operator_calls_per_step": calls, "seconds_per_step": best,
            "share": {n: v / step for n, v in best.items()}, "steps": steps, "short_steps": short, "repeats": repeats}


def _runs(steps: int, count: int, threads: int = 0) -> None:
    """``count`` single-engine runs of ``steps`` steps one after another (``threads``: set first)."""
    if threads:
        torch.set_num_threads(threads)
    for _ in range(count):
        with tempfile.TemporaryDirectory() as tmp:
            Trainer(run_config(steps), tmp).run()


def _wall(steps: int, members: int, workers: int, how: str) -> float:
    """Seconds for ``members`` runs of ``steps`` steps over ``workers`` workers ("thread" or
    "process", each at one thread; "alone": one after another on this process's threads)."""
    shares = [members // workers + (i < members % workers) for i in range(workers)]
    start = time.perf_counter()
    if how == "alone":
        _runs(steps, members)
    elif how == "thread":
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda n: _runs(steps, n), shares))
    else:
        procs = [multiprocessing.get_context("spawn").Process(target=_runs, args=(steps, n, 1)) for n in shares]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
    return time.perf_counter() - start


def side_by_side(members: int, threads: int, steps: int, rounds: int) -> dict:
    """Run-steps/s of ``members`` runs: one at a time on 1 and on ``threads`` threads, and spread
    over ``threads`` workers at one thread each (threads of this process, and processes); each the
    difference of a run of ``steps`` and one of a fifth as many (set-up and evaluation cancel),
    medians of interleaved rounds, and each row's ratio to the single engine on ``threads`` threads
    within its round."""
    short = max(5, steps // 5)
    ways = {"single engine, 1 thread": ("alone", 1, 1), f"single engine, {threads} threads": ("alone", 1, threads),
            f"{members} runs as {threads} worker threads x 1 thread": ("thread", threads, 1),
            f"{members} runs as {threads} processes x 1 thread": ("process", threads, 1)}
    rates: dict[str, list[float]] = {name: [] for name in ways}
    ratios: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        got = {}
        for name, (how, workers, n_threads) in ways.items():
            torch.set_num_threads(n_threads)
            count = members if how != "alone" else 1
            long, brief = _wall(steps, count, workers, how), _wall(short, count, workers, how)
            got[name] = count * (steps - short) / (long - brief)
            rates[name].append(got[name])
        for name in ways:
            ratios[name].append(got[name] / got[f"single engine, {threads} threads"])
    return {"members": members, "threads": threads, "steps": steps, "short_steps": short, "rounds": rounds,
            "run_steps_per_second": {n: statistics.median(v) for n, v in rates.items()},
            "x_single_engine_threads": {n: statistics.median(v) for n, v in ratios.items()},
            "x_range": {n: [min(v), max(v)] for n, v in ratios.items()}}


def conv_layers(batch: int) -> list[tuple[nn.Module, tuple[int, ...], int]]:
    """Every Conv2d / ConvTranspose2d of ALI's networks at the preset, with the input shape it meets
    and how many times a step's forward pass calls it (D sees both pairs)."""
    config = run_config(1)
    data = build_dataset(config.data)
    strategy = build_strategy(config, shapes={"x_shape": data.x_shape, "n_classes": data.n_classes})
    seen: list[tuple[nn.Module, tuple[int, ...]]] = []
    hooks = [m.register_forward_hook(lambda m, args, out: seen.append((m, tuple(args[0].shape))))
             for m in strategy.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    x = torch.rand(batch, *data.x_shape)
    z = torch.randn(batch, config.arch.z_dim)
    with torch.no_grad():
        strategy.discriminator(x, strategy.encoder(x))
        strategy.discriminator(strategy.decoder(z), z)
    for h in hooks:
        h.remove()
    calls: dict[tuple, list] = {}
    for m, shape in seen:
        calls.setdefault((id(m), shape), [m, shape, 0])[2] += 1
    return [tuple(c) for c in calls.values()]


def _fn(m: nn.Module) -> Callable[..., torch.Tensor]:
    if isinstance(m, nn.ConvTranspose2d):
        return lambda x, w, groups: F.conv_transpose2d(x, w, None, m.stride, m.padding, m.output_padding, groups)
    return lambda x, w, groups: F.conv2d(x, w, None, m.stride, m.padding, 1, groups)


def forms(m: nn.Module, shape: tuple[int, ...], members: int) -> dict[str, Callable[[], None]]:
    """Forward and backward of ``members`` copies of conv ``m`` on inputs of ``shape``, in each form."""
    fn, k = _fn(m), members
    ws = [m.weight.detach().clone().requires_grad_() for _ in range(k)]
    xs = [torch.randn(shape, requires_grad=True) for _ in range(k)]
    # grouped: members' channels side by side; a transposed conv's weight is (in, out / groups, ...)
    wg = torch.cat([w.detach() for w in ws], 0).requires_grad_()
    xg = torch.cat([x.detach() for x in xs], 1).requires_grad_()

    def separate() -> None:
        for w, x in zip(ws, xs):
            fn(x, w, 1).sum().backward()

    def grouped() -> None:
        fn(xg, wg, k).sum().backward()

    out = {"separate": separate, "grouped": grouped}
    if isinstance(m, nn.Conv2d) and m.groups == 1:
        b, c, h, w_ = shape
        o, _, kh, kw = m.weight.shape
        wk = torch.stack([w.detach() for w in ws]).reshape(k, o, -1).requires_grad_()
        xk = torch.stack([x.detach() for x in xs]).requires_grad_()

        def im2col() -> None:
            cols = F.unfold(xk.reshape(k * b, c, h, w_), (kh, kw), 1, m.padding, m.stride)  # (k b, c kh kw, L)
            cols = cols.reshape(k, b, cols.shape[1], cols.shape[2]).transpose(2, 3).reshape(k, -1, cols.shape[1])
            torch.bmm(cols, wk.transpose(1, 2)).sum().backward()

        out["im2col"] = im2col
    return out


def time_forms(layers: list[tuple[nn.Module, tuple[int, ...], int]], members: int, rounds: int, calls: int
               ) -> list[dict]:
    rows = []
    for m, shape, per_step in layers:
        fs = forms(m, shape, members)
        for f in fs.values():
            f()  # first use: kernels and allocations
        times: dict[str, list[float]] = {name: [] for name in fs}
        for _ in range(rounds):
            for name, f in fs.items():
                start = time.perf_counter()
                for _ in range(calls):
                    f()
                times[name].append((time.perf_counter() - start) / calls)
        med = {name: statistics.median(t) for name, t in times.items()}
        rows.append({"layer": f"{type(m).__name__}({m.in_channels}->{m.out_channels}, k{m.kernel_size[0]} "
                              f"s{m.stride[0]})", "input": list(shape), "calls_per_step": per_step,
                     "members": members,
                     "seconds": med, "x_separate": {n: med["separate"] / s for n, s in med.items()}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--steps", type=int, default=60, help="steps of the long profiled run")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per layer and form")
    parser.add_argument("--calls", type=int, default=3, help="calls per form and round")
    parser.add_argument("--side-steps", type=int, default=40, help="steps of the long side-by-side runs")
    parser.add_argument("--side-rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "conv_stack.json")
    args = parser.parse_args()
    sides = [side_by_side(k, args.threads, args.side_steps, args.side_rounds) for k in args.members]
    torch.set_num_threads(args.threads)
    step = single_step(args.steps, args.repeats)
    layers = conv_layers(args.batch)
    stacks = []
    for k in args.members:
        rows = time_forms(layers, k, args.rounds, args.calls)
        separate = sum(r["calls_per_step"] * r["seconds"]["separate"] for r in rows)
        best = sum(r["calls_per_step"] * min(r["seconds"].values()) for r in rows)
        # the layers' separate calls, as often as a step makes them, are K members' convolutions;
        # the step's convolution seconds scaled by best / separate are what a stack pays for them.
        # Estimate: the convolutions at their best stacked form, every other operator's arithmetic
        # unchanged per member, and nothing at all outside the operators (Python, bookkeeping)
        per = step["seconds_per_step"]
        conv_stacked = per["convolution"] * best / separate
        others = sum(v for n, v in per.items() if n not in ("convolution", "outside operators"))
        stacks.append({"members": k, "layers": rows,
                       "best_form_x_separate": separate / best,
                       "estimate_x_single": step["step_seconds"] / (conv_stacked + others)})
    record = {
        "what": "28x28 mnist nets (preset mnist, ALI): the single engine's step, its convolution share, and "
                "each convolution stacked K ways (forward + backward), with the estimate that puts on a stacked engine",
        "batch": args.batch, "threads": args.threads, "single_engine": step, "stacks": stacks, "side_by_side": sides,
        "machine": platform.platform(), "processor": cpu_name(), "torch": torch.__version__,
        "load_average_1min": os.getloadavg()[0],
    }
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"single engine: {step['step_seconds'] * 1e3:.1f} ms per step: "
          + ", ".join(f"{n} {100 * v:.0f} %" for n, v in step["share"].items()))
    for side in sides:
        print(f"K={side['members']} side by side, x the single engine on {side['threads']} threads:")
        for name, rate in side["run_steps_per_second"].items():
            print(f"    {name}: {rate:.2f} run-steps/s, x{side['x_single_engine_threads'][name]:.2f}")
    for s in stacks:
        print(f"K={s['members']}: best stacked form x{s['best_form_x_separate']:.2f} of separate calls; "
              f"estimate x{s['estimate_x_single']:.2f} of the single engine")
        for r in s["layers"]:
            print("   ", r["layer"], r["input"], {n: round(v, 2) for n, v in r["x_separate"].items()})


if __name__ == "__main__":
    main()
