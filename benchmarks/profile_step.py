"""Where the stacked engine's step spends its time: torch's profiler, by kind of operation.

Profiles the paper's toy ALI on the stacked engine (K members, batch 100) for two run lengths and
takes the difference, so set-up, warm-up, evaluation and the final checkpoint cancel out and what
is left is the steady-state step. Every operator's self time is put in one bucket (matmuls,
Adam, BatchNorm, maxout, elementwise, copies and allocation, the rest); the matmuls' rate is
compared with an fp32 matmul peak measured in the same process, and the matmul shapes of the step
are timed alone as the ceiling this CPU's BLAS gives them. The plain reference loop of
``train_speed.py``, timed between the profiles, turns the step into a ratio, and so does the step's
floor: its matmuls, Adam and BatchNorm alone, the parts a member's numbers depend on and that no
change outside torch's kernels can shorten without changing them.

    python benchmarks/profile_step.py --members 16 --threads 2
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import ARCH, _config, ali_flops_per_step, matmul_peak, plain_reference  # noqa: E402

from inference_zoo.core.environment import environment  # noqa: E402
from inference_zoo.engine.stack.engine import StackedTrainer  # noqa: E402

#: operator name fragments -> bucket, first match wins
BUCKETS = (
    ("matmul", ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::addbmm", "aten::matmul")),
    ("adam", ("adam", "_foreach")),
    ("batchnorm", ("batch_norm",)),
    ("maxout", ("aten::amax", "aten::max", "aten::eq", "aten::ge")),
    ("copies and allocation", ("copy_", "clone", "contiguous", "aten::empty", "aten::zeros", "aten::cat",
                               "aten::stack", "aten::to", "resize_", "fill_", "zero_")),
    ("elementwise", ("aten::add", "aten::sub", "aten::mul", "aten::div", "relu", "threshold", "softplus",
                     "sigmoid", "aten::exp", "aten::log", "aten::neg", "aten::sum", "aten::mean", "aten::pow",
                     "aten::sqrt", "aten::where", "aten::randn", "aten::normal", "aten::masked")),
)


#: the buckets a member's numbers are made in, by torch's kernels: the step's floor
FLOOR = ("matmul", "adam", "batchnorm")


def bucket(name: str) -> str:
    return next((b for b, fragments in BUCKETS for f in fragments if f in name), "other")


def profiled_seconds(members: int, steps: int, batch: int) -> tuple[float, dict[str, float]]:
    """Training seconds of a ``steps``-step stacked run and each bucket's self time in it."""
    configs = [_config(steps, batch, "stacked", seed) for seed in range(members)]
    with tempfile.TemporaryDirectory() as tmp, profile(activities=[ProfilerActivity.CPU]) as prof:
        seconds = StackedTrainer(configs, [Path(tmp) / str(c.seed) for c in configs]).run()[0].seconds
    buckets: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        key = event.key.lower()  # operators are lower case; the optimiser's frame is "...MemberAdam.step"
        if not key.startswith("aten::") and "adam" not in key:
            continue  # python-level and profiler frames: their self time is their aten calls'
        buckets[bucket(key)] += event.self_cpu_time_total / 1e6
    return seconds, dict(buckets)


def matmul_shapes_alone(members: int, batch: int, repeats: int) -> float:
    """GFLOP/s of the step's matmuls timed alone, in the stacked engine's layout (weights
    [K, out, in] times feature-major activations [K, in, n]): per layer the forward product and its
    two backward products (input and weight gradients), n being the batch for the encoder and the
    decoder and both halves (2 x batch) for the discriminator, which the engine runs as one batch.
    What the BLAS gives these shapes here, with their operands warm."""
    a = ARCH
    layers = []
    for dims, pieces, n in (([4, *a.encoder_hidden, 2], 1, batch), ([2, *a.decoder_hidden, 2], 1, batch),
                            ([4, *a.discriminator_hidden, 1], a.maxout_pieces, 2 * batch)):
        ins, outs = dims[:-1], [o * pieces for o in dims[1:-1]] + [dims[-1]]
        layers += [(i, o, n) for i, o in zip(ins, outs)]
    tensors = [(torch.randn(members, o, i), torch.randn(members, i, n), torch.randn(members, o, n))
               for i, o, n in layers]
    flops = sum(3 * 2.0 * members * n * i * o for i, o, n in layers)

    def once() -> None:
        for w, x, g in tensors:
            torch.bmm(w, x)
            torch.bmm(w.transpose(1, 2), g)
            torch.bmm(g, x.transpose(1, 2))

    for _ in range(3):
        once()
    t0 = time.perf_counter()
    for _ in range(repeats):
        once()
    return flops * repeats / (time.perf_counter() - t0) / 1e9


def least(runs: list[tuple[float, dict[str, float]]]) -> tuple[float, dict[str, float]]:
    """The least seconds and, per bucket, the least time over repeated profiles of one run length."""
    buckets = {k for _, b in runs for k in b}
    return min(s for s, _ in runs), {k: min(b.get(k, 0.0) for _, b in runs) for k in buckets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--steps", type=int, default=200, help="steps of the long run (the short one: a fifth)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3, help="profiles of each run length (least times kept)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "profile_step.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak = matmul_peak() / 1e9
    short = max(5, args.steps // 5)
    profiled_seconds(args.members, short, args.batch)  # warm-up: first-use costs are paid here
    # each length profiled --repeats times, interleaved, keeping each bucket's least time: a one-off
    # stall (allocation, the final checkpoint's I/O) in one run would otherwise skew the difference
    runs: dict[int, list[tuple[float, dict[str, float]]]] = {short: [], args.steps: []}
    plain: list[float] = []  # the plain reference loop's run-steps per second, between the profiles
    for _ in range(args.repeats):
        for n in runs:
            runs[n].append(profiled_seconds(args.members, n, args.batch))
        plain.append(plain_reference(max(20, args.steps), args.batch))
    (s_short, b_short), (s_long, b_long) = (least(runs[n]) for n in (short, args.steps))
    per_step = (s_long - s_short) / (args.steps - short)
    buckets = {k: (b_long.get(k, 0.0) - b_short.get(k, 0.0)) / (args.steps - short)
               for k in sorted(set(b_long) | set(b_short))}
    flops = ali_flops_per_step(args.batch, shared_chain=True) * args.members
    alone = matmul_shapes_alone(args.members, args.batch, repeats=max(3, args.steps // 20))
    plain_rate = statistics.median(plain)
    floor = sum(buckets.get(k, 0.0) for k in FLOOR)
    record = {
        "members": args.members, "batch": args.batch, "threads": args.threads, "steps": [short, args.steps],
        "repeats": args.repeats,
        "peak_gflops": peak,
        "step_ms": per_step * 1e3,
        "run_steps_per_s": args.members / per_step,
        "share_of_peak": flops / per_step / 1e9 / peak,
        "buckets_ms": {k: v * 1e3 for k, v in buckets.items()},
        "buckets_share": {k: v / per_step for k, v in buckets.items()},
        "matmul_gflops_in_step": flops / 1e9 / buckets["matmul"] if buckets.get("matmul") else None,
        "matmul_shapes_alone_gflops": alone,
        "plain_reference_run_steps_per_s": plain_rate,
        "plain_reference_rounds": plain,
        "ratio_to_plain": args.members / per_step / plain_rate,
        "floor_buckets": list(FLOOR),
        "floor_ms": floor * 1e3,
        "floor_ratio_to_plain": args.members / floor / plain_rate if floor else None,
        "environment": environment(torch.device("cpu")),
    }
    print(f"K = {args.members}, batch {args.batch}, {args.threads} threads: {per_step * 1e3:.1f} ms per step, "
          f"{record['run_steps_per_s']:.1f} run-steps/s, {record['share_of_peak']:.0%} of the {peak:.0f} GFLOP/s peak")
    for k, v in sorted(buckets.items(), key=lambda kv: -kv[1]):
        print(f"  {k:22s} {v * 1e3:7.2f} ms  {v / per_step:6.1%}")
    print(f"  matmuls in the step run at {record['matmul_gflops_in_step'] or 0:.0f} GFLOP/s; the same shapes "
          f"alone at {alone:.0f} GFLOP/s ({alone / peak:.0%} of peak)")
    print(f"  against the plain reference ({plain_rate:.1f} run-steps/s): x{record['ratio_to_plain']:.2f}; "
          f"its floor ({' + '.join(FLOOR)}, {floor * 1e3:.1f} ms) would be x{record['floor_ratio_to_plain'] or 0:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
