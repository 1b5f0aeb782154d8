"""Training time next to a competing CPU-bound process, for each thread setting.

Run as ``python benchmarks/contention.py [--steps 300] [--seeds 2] [--rounds 2]``.
It times one short ``izoo compare`` (ALI, quick preset, its training time from results.csv)
alone and next to a competitor, under each setting:

- ``default``: torch's defaults (one thread per core, OpenMP threads spin while they wait),
  i.e. ``--threads all``;
- ``passive``: one thread per core, waiting threads sleep (``OMP_WAIT_POLICY=PASSIVE``);
- ``one``: one thread (``--threads 1``);
- ``auto``: what izoo chooses by itself (``--threads auto``, the default).

Competitors: ``spin`` (a Python busy loop, one core), ``izoo`` (a second, identical ``izoo
compare`` with torch's default threads, started together) and ``izoo-auto`` (the same with
izoo's own choice: two users of the README's command side by side). A fair share next to one competitor
on 2 cores is about 1x (a core each); twice the idle time is the bound the project holds to.
Writes ``benchmarks/results/contention.json``. ``--readme-command`` instead times the README's
first command (``izoo compare``, four methods, default settings, wall time) alone and next to
one busy process, under izoo's own thread choice, into ``benchmarks/results/readme_command.json``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = {
    "default": ({}, ["--threads", "all"]),
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, ["--threads", "all"]),
    "one": ({}, ["--threads", "1"]),
    "auto": ({}, ["--threads", "auto"]),
}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "IZOO_THREADS")


def _environment(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    return {**env, **extra}


def _compare(out: Path, steps: int, seeds: int, extra_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "inference_zoo", "compare", "--methods", "ali", "--seeds", str(seeds),
            "--steps", str(steps), "--preset", "quick", "--no-progress", "--out", str(out), *extra_args]


def _train_seconds(out: Path) -> float:
    with open(out / "results.csv") as f:
        return max(float(r["value"]) for r in csv.DictReader(f) if r["metric"] == "train_seconds")


def measure(setting: str, competitor: str | None, steps: int, seeds: int) -> float:
    """Training seconds of one compare under ``setting`` next to ``competitor`` (None: alone)."""
    env, args = SETTINGS[setting]
    with tempfile.TemporaryDirectory() as tmp:
        rival = None
        if competitor == "spin":
            rival = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        elif competitor in ("izoo", "izoo-auto"):
            # an identical job, long enough to outlast the measured one
            threads = "all" if competitor == "izoo" else "auto"
            rival = subprocess.Popen(_compare(Path(tmp) / "rival", steps * 3, seeds, ["--threads", threads]),
                                     env=_environment({}), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if rival is not None:
                time.sleep(1.0)  # let the competitor start computing
            subprocess.run(_compare(Path(tmp) / "run", steps, seeds, args), env=_environment(env), check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return _train_seconds(Path(tmp) / "run")
        finally:
            if rival is not None:
                rival.kill()
                rival.wait()


def readme_command(competitor: str | None) -> float:
    """Wall seconds of the README's first command, alone or next to a busy process."""
    with tempfile.TemporaryDirectory() as tmp:
        rival = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if competitor else None
        try:
            if rival is not None:
                time.sleep(1.0)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "inference_zoo", "compare", "--methods", "ali,latent,posthoc,vae",
                            "--recipe", "tuned", "--no-progress", "--out", str(Path(tmp) / "run")], env=_environment({}), check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return time.perf_counter() - t0
        finally:
            if rival is not None:
                rival.kill()
                rival.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--competitors", default="none,spin,izoo,izoo-auto")
    parser.add_argument("--readme-command", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results = Path(__file__).parent / "results"
    if args.readme_command:
        times = {"none": [], "spin": []}
        for _ in range(args.rounds):
            for competitor in times:
                times[competitor].append(readme_command(None if competitor == "none" else competitor))
        idle = statistics.median(times["none"])
        busy = statistics.median(times["spin"])
        print(f"README command: alone {idle:.1f} s, next to a busy process {busy:.1f} s (x{busy / idle:.2f})")
        record = {"command": "izoo compare --methods ali,latent,posthoc,vae --recipe tuned (wall seconds, --threads auto)",
                  "alone_seconds": round(idle, 1), "next_to_busy_process_seconds": round(busy, 1),
                  "ratio": round(busy / idle, 2), "rounds": {k: [round(v, 1) for v in vs] for k, vs in times.items()},
                  "machine": platform.platform(), "cores": os.cpu_count()}
        out = args.out or results / "readme_command.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {out}")
        return
    args.out = args.out or results / "contention.json"
    settings = args.settings.split(",")
    competitors = [None if c == "none" else c for c in args.competitors.split(",")]
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):  # rounds interleave the cells, so a drifting machine hits all alike
        for setting in settings:
            for competitor in competitors:
                times.setdefault((setting, competitor or "none"), []).append(
                    measure(setting, competitor, args.steps, args.seeds))
    records = []
    for setting in settings:
        idle = statistics.median(times[(setting, "none")]) if (setting, "none") in times else None
        for competitor in competitors:
            seconds = times[(setting, competitor or "none")]
            median = statistics.median(seconds)
            record = {"setting": setting, "competitor": competitor or "none", "train_seconds": round(median, 2),
                      "rounds": [round(s, 2) for s in seconds]}
            if idle:
                record["ratio_to_idle"] = round(median / idle, 2)
            records.append(record)
            ratio = f"x{record['ratio_to_idle']:.2f} of idle" if idle else ""
            print(f"{setting:8s} next to {competitor or 'nothing':8s} {median:7.2f} s  {ratio}")
    meta = {"machine": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "steps": args.steps, "seeds": args.seeds, "rounds": args.rounds,
            "command": "izoo compare --methods ali --preset quick (training seconds from results.csv)"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "records": records}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
