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
