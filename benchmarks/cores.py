"""How a compare uses the machine's cores: wall time at izoo's default against the same job pinned
to one core and against one process with a thread per core.

Run as ``python benchmarks/cores.py [--rounds 2] [--jobs ...] [--settings ...]`` on an idle machine. For each job it times, in
interleaved rounds (wall seconds of the whole command, start-up included):

- ``default``: izoo's own choice (``--threads auto --processes auto``: one process per free core
  once a job has 10,000 run-steps to train: stacks whole where they even out, cut where not);
- ``one process``: ``--processes 1`` (one process, a thread per free core: izoo's choice before
  processes);
- ``a process per core``: ``--processes N`` for N cores, one thread each (what ``default``
  chooses from 10,000 run-steps on an idle machine, fixed here whatever the load or the job's
  size);
- ``one core``: the same command pinned to one core (``taskset -c 0``: izoo then sees one core).

Jobs: the README's first command (four methods, one seed each) and a 5-seed comparison of three
methods, at 700 steps and at the quick preset's 3,000 (``--jobs`` picks some). Ratios are taken within each round. Beyond this machine's cores, the model is the
``default`` row's efficiency: a process per core trains its share of the runs at the one-core
rate, so the wall time falls with the cores until there are fewer runs (stack members) than cores.
Writes ``benchmarks/results/cores.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from inference_zoo.core.environment import cpu_name

JOBS = {
    "README command": ["--methods", "ali,latent,posthoc,vae", "--recipe", "tuned"],
    "5 seeds x 3 methods at 700 steps": ["--methods", "ali,bigan,vae", "--seeds", "5", "--preset", "quick",
                                       "--steps", "700"],
    # a 5-seed comparison at the default preset's 3,000 steps: the start-up, evaluation and figures
    # that no process split shortens weigh less here than at 700 steps
    "5 seeds x 3 methods at the quick preset": ["--methods", "ali,bigan,vae", "--seeds", "5", "--preset", "quick"],
}
CORES = len(os.sched_getaffinity(0))
SETTINGS = {
    "default": ([], []),
    "one process": ([], ["--processes", "1"]),
    "a process per core": ([], ["--processes", str(CORES)]),
    "one core": (["taskset", "-c", "0"], []),
}
#: the settings the ratios are taken between: timed in every run
RATIO_SETTINGS = ("default", "one process", "one core")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")


def wall_seconds(job: list[str], setting: str) -> float:
    prefix, extra = SETTINGS[setting]
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    with tempfile.TemporaryDirectory() as tmp:
        command = [*prefix, sys.executable, "-m", "inference_zoo", "compare", *job, *extra, "--no-progress",
                   "--out", str(Path(tmp) / "run")]
        t0 = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", default=",".join(JOBS), help="comma-separated job names (default: all); the "
                        "record keeps the other jobs' rows from its last run")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated settings (default: all); "
                        "default, one process and one core are always timed, the ratios need them")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cores.json")
    args = parser.parse_args()
    if shutil.which("taskset") is None:
        sys.exit("taskset (util-linux) is needed to pin a run to one core")
    asked_jobs, asked_settings = args.jobs.split(","), args.settings.split(",")
    unknown = [n for n in asked_jobs if n not in JOBS] + [n for n in asked_settings if n not in SETTINGS]
    if unknown:
        sys.exit(f"cores.py: unknown job or setting {unknown}; jobs: {list(JOBS)}; settings: {list(SETTINGS)}")
    jobs = [j for j in JOBS if j in asked_jobs]
    settings = [s for s in SETTINGS if s in asked_settings or s in RATIO_SETTINGS]
    times: dict[str, dict[str, list[float]]] = {job: {s: [] for s in settings} for job in jobs}
    for _ in range(args.rounds):  # interleaved: a drifting machine hits every setting alike
        for job in jobs:
            for setting in settings:
                times[job][setting].append(wall_seconds(JOBS[job], setting))
    records = []
    for job in jobs:
        t = times[job]
        to_one_core = [d / o for d, o in zip(t["default"], t["one core"])]
        to_one_process = [d / p for d, p in zip(t["default"], t["one process"])]
        record = {"job": job, "command": "izoo compare " + " ".join(JOBS[job]), "measured": time.strftime("%Y-%m-%d %H:%M"),
                  "seconds": {s: round(statistics.median(v), 1) for s, v in t.items()},
                  "default_over_one_core": round(statistics.median(to_one_core), 3),
                  "default_over_one_core_range": [round(min(to_one_core), 3), round(max(to_one_core), 3)],
                  "default_over_one_process": round(statistics.median(to_one_process), 3),
                  "default_over_one_process_range": [round(min(to_one_process), 3), round(max(to_one_process), 3)],
                  "rounds": {s: [round(x, 1) for x in v] for s, v in t.items()}}
        records.append(record)
        print(f"{job}: " + ", ".join(f"{s} {v} s" for s, v in record["seconds"].items())
              + f"; default / one core x{record['default_over_one_core']}, "
              f"default / one process x{record['default_over_one_process']}")
    meta = {"machine": platform.platform(), "processor": cpu_name(),
            "cores": CORES,
            "statistic": "median over a job's rounds of wall seconds; ratios are medians of per-round ratios"}
    if args.out.is_file():  # the jobs not measured now keep their rows (each job's ratios are within its run)
        earlier = json.loads(args.out.read_text()).get("records", [])
        records = [r for r in earlier if r["job"] not in jobs and r["job"] in JOBS] + records
        records.sort(key=lambda r: list(JOBS).index(r["job"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "records": records}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
