"""The benchmark's analytic FLOP count, which its "share of peak" column rests on, against torch's profiler."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from torch.profiler import ProfilerActivity, profile


@pytest.fixture(scope="module")
def train_speed():
    path = Path(__file__).parents[1] / "benchmarks" / "train_speed.py"
    spec = importlib.util.spec_from_file_location("train_speed", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_analytic_flops_match_the_profilers_count_of_the_plain_reference(train_speed):
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        train_speed.plain_reference(steps=1, batch=20)  # 10 warm-up steps + 1 timed
    counted = sum(e.flops for e in prof.key_averages() if e.flops) / 11
    assert counted == pytest.approx(train_speed.ali_flops_per_step(20), rel=0.01)


def test_the_gpu_check_runs_its_cpu_dry_path(tmp_path):
    """benchmarks/gpu_check.py is ready for a CUDA machine: its every step runs, tiny, on the CPU."""
    import json
    import subprocess
    import sys

    script = Path(__file__).parents[1] / "benchmarks" / "gpu_check.py"
    done = subprocess.run([sys.executable, str(script), "--dry-run", "--out", str(tmp_path / "check.json")],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads((tmp_path / "check.json").read_text())
    assert record["meta"]["dry_run"] and len(record["checks"]) == 4
    assert all(check["ok"] for check in record["checks"]), record["checks"]
    speed = next(c for c in record["checks"] if c["check"].startswith("speed"))["result"]
    assert speed[0]["configuration"] == "plain reference" and all("run_steps_per_s" in r for r in speed)
