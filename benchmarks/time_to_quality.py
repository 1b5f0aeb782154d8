"""Time to quality: how long until several seeds of ALI reach a quality target on the grid.

Run as ``python benchmarks/time_to_quality.py [--curves figures/ali_grid_lr_sweep/curves.csv]
[--method ali@lr=0.0003] [--seeds 5] [--reference-steps 400000] [--rounds 3]``.

A published study's curve (``curves.csv``, the same metric code as the final evaluation, every
2,000 steps) says at which step the mean over seeds first reaches each target: the issue's
(>= 24 of 25 modes at 3 sigma and >= 90 % high-quality samples, PacGAN's ALI row) and ALI's own
plateau at this budget (>= 22 modes and >= 75 %). This machine's speed turns steps into time:
the stacked engine's rate for those seeds trained as one stack, against the plain single-run
loop of ``train_speed.py`` at the published schedule (``--reference-steps`` per seed, PacGAN's
ALI trained about 400k), both measured here in interleaved rounds (medians). A target the curve
never reaches is recorded as not reached, with the last step as a lower bound and no ratio.
Writes ``benchmarks/results/time_to_quality.json``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
from pathlib import Path

TARGETS = ({"name": "PacGAN's ALI (issue target)", "modes_3sigma": 24.0, "hq_fraction": 0.90},
           {"name": "ALI's plateau here", "modes_3sigma": 22.0, "hq_fraction": 0.75})


def seed_means(rows: list[dict], method: str, dataset: str, seeds: int) -> dict[int, dict[str, float]]:
    """{step: {metric: mean over the first ``seeds`` seeds}} at the steps every one of them reached."""
    values: dict[tuple[int, str], dict[int, float]] = {}
    for r in rows:
        if r["method"] == method and r["dataset"] == dataset and int(r["seed"]) < seeds:
            values.setdefault((int(r["step"]), r["metric"]), {})[int(r["seed"])] = float(r["value"])
    out: dict[int, dict[str, float]] = {}
    for (step, metric), per_seed in values.items():
        if len(per_seed) == seeds:
            out.setdefault(step, {})[metric] = statistics.fmean(per_seed.values())
    return dict(sorted(out.items()))


def first_step(means: dict[int, dict[str, float]], target: dict) -> int | None:
    """The first step whose seed means meet every metric of ``target`` (None: never)."""
    for step, m in means.items():
        if all(m.get(k, float("-inf")) >= v for k, v in target.items() if k != "name"):
            return step
    return None


def record(means: dict[int, dict[str, float]], seeds: int, stacked_rate: float, plain_rate: float,
           reference_steps: int) -> list[dict]:
    """One row per target: the steps and seconds to it here (stacked engine), the plain loop's
    seconds for the same steps, and the plain loop's seconds for the published schedule; the
    ratio to the published schedule only for PacGAN's target (the quality that schedule reached)."""
    published_seconds = seeds * reference_steps / plain_rate
    last = max(means)
    rows = []
    for i, target in enumerate(TARGETS):
        step = first_step(means, target)
        steps = step if step is not None else last
        ours, plain = steps * seeds / stacked_rate, steps * seeds / plain_rate
        best = {k: max(m.get(k, float("nan")) for m in means.values()) for k in ("modes_3sigma", "hq_fraction")}
        rows.append({"target": target, "reached": step is not None, "step": steps, "seconds": ours,
                     "plain_seconds_same_steps": plain, "published_schedule_seconds": published_seconds,
                     "speedup_same_steps": plain / ours,
                     "speedup_vs_published_schedule": published_seconds / ours if step is not None and i == 0 else None,
                     "best_seed_means": best})
    return rows


def recipe(study_json: Path, method: str) -> str:
    """The training settings of ``method``'s published curve, from its study.json, in words: the
    example cell's config with the settings ``method`` names (ali@lr=0.0003) in place of its own."""
    import dataclasses

    from inference_zoo.core.config import RunConfig, describe_schedule, split_label
    from inference_zoo.core.errors import UserError

    try:
        study = json.loads(study_json.read_text())
        config = RunConfig.from_dict(study["example_config"])
        # swept training settings are numbers but the schedule's name, as plan_compare names them
        t = dataclasses.replace(config.train, **{k: v if k == "lr_schedule" else float(v)
                                                 for k, v in split_label(method)[1].items()
                                                 if hasattr(config.train, k)})
    except (OSError, ValueError, KeyError, TypeError, UserError):
        return f"unknown ({study_json} unreadable)"
    average = f"weight average {t.ema_decay:g}" if t.ema_decay else "no weight average"
    return (f"{study['study']}: {config.arch.name} networks, {t.steps} steps, Adam {t.lr:g}, betas ({t.beta1:g}, "
            f"{t.beta2:g}), batch {t.batch_size}, {average}, {describe_schedule(t)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=Path, default=Path("figures/ali_grid_lr_sweep/curves.csv"))
    parser.add_argument("--method", default="ali@lr=0.0003")
    parser.add_argument("--dataset", default="grid")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--reference-steps", type=int, default=400_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300, help="steps per speed measurement")
    parser.add_argument("--rates", help="STACKED,PLAIN run-steps/s instead of measuring them (e.g. for a dry run)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "time_to_quality.json")
    args = parser.parse_args()

    with open(args.curves, newline="") as f:
        means = seed_means(list(csv.DictReader(f)), args.method, args.dataset, args.seeds)
    if not means:
        raise SystemExit(f"{args.curves} holds no curve of {args.method} on {args.dataset} with {args.seeds} seeds")
    if args.rates:
        stacked_rate, plain_rate = (float(v) for v in args.rates.split(","))
        measured = "given"
    else:
        from train_speed import izoo_stacked, plain_reference

        stacked, plain = [], []
        for _ in range(args.rounds):  # interleaved: a shared host drifts over minutes
            stacked.append(izoo_stacked(args.steps, 100, args.seeds))
            plain.append(plain_reference(args.steps, 100))
        stacked_rate, plain_rate = statistics.median(stacked), statistics.median(plain)
        measured = f"median of {args.rounds} interleaved rounds of {args.steps} steps"
    rows = record(means, args.seeds, stacked_rate, plain_rate, args.reference_steps)
    result = {"curves": str(args.curves), "method": args.method, "dataset": args.dataset, "seeds": args.seeds,
              "recipe": recipe(args.curves.parent / "study.json", args.method),
              "stacked_run_steps_per_s": stacked_rate, "plain_run_steps_per_s": plain_rate, "rates": measured,
              "reference_steps_per_seed": args.reference_steps, "targets": rows,
              "machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "load_average_1min": os.getloadavg()[0]}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for r in rows:
        t = r["target"]
        state = f"reached at step {r['step']}" if r["reached"] else f"not reached by step {r['step']} (a lower bound)"
        versus = (f"; the published schedule, plain: {r['published_schedule_seconds'] / 60:.0f} min "
                  f"(x{r['speedup_vs_published_schedule']:.1f})" if r["speedup_vs_published_schedule"] else "")
        print(f"{t['name']} (>= {t['modes_3sigma']:g} modes, >= {100 * t['hq_fraction']:g} % HQ): {state}; "
              f"{r['seconds'] / 60:.1f} min here for {args.seeds} stacked seeds, {r['plain_seconds_same_steps'] / 60:.1f} "
              f"min for the plain loop (x{r['speedup_same_steps']:.2f}){versus}")
    print(f"best seed means on the curve: {rows[0]['best_seed_means']}; the published schedule, plain: "
          f"{rows[0]['published_schedule_seconds'] / 60:.0f} min for {args.seeds} seeds")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
