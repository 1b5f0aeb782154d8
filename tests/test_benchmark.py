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


def test_time_to_quality_reads_the_first_step_the_seed_mean_meets_a_target(tmp_path):
    """The record's arithmetic on a hand-made curve: seed means (20 + 24) / 2 = 22 modes and
    (0.7 + 0.8) / 2 = 0.75 first at step 4, never 24 modes and 90 %."""
    import csv
    import json
    import subprocess
    import sys

    rows = []
    for step, modes, hq in ((2, (18, 20), (0.6, 0.7)), (4, (20, 24), (0.7, 0.8)), (6, (22, 24), (0.8, 0.9))):
        for seed in (0, 1):
            rows += [{"study": "s", "dataset": "grid", "method": "ali", "seed": seed, "phase": "ali", "step": step,
                      "seconds": 1, "metric": "modes_3sigma", "value": modes[seed]},
                     {"study": "s", "dataset": "grid", "method": "ali", "seed": seed, "phase": "ali", "step": step,
                      "seconds": 1, "metric": "hq_fraction", "value": hq[seed]}]
    curves = tmp_path / "curves.csv"
    with open(curves, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    script = Path(__file__).parents[1] / "benchmarks" / "time_to_quality.py"
    done = subprocess.run([sys.executable, str(script), "--curves", str(curves), "--method", "ali", "--seeds", "2",
                           "--rates", "20,10",
                           "--reference-steps", "100", "--out", str(tmp_path / "ttq.json")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    issue, plateau = json.loads((tmp_path / "ttq.json").read_text())["targets"]
    assert (issue["reached"], issue["step"], issue["speedup_vs_published_schedule"]) == (False, 6, None)
    assert (plateau["reached"], plateau["step"]) == (True, 4)
    assert plateau["seconds"] == pytest.approx(4 * 2 / 20) and plateau["speedup_same_steps"] == pytest.approx(2.0)
    assert issue["published_schedule_seconds"] == pytest.approx(2 * 100 / 10)


def test_the_speed_tables_give_an_unreached_target_as_lower_bounds_and_each_stacks_side_by_side_row():
    """benchmarks/tables.py on hand-made records: a target never reached shows the curve's last step
    and its times as lower bounds (480 s = 8.0 min stacked, 960 s plain); a conv stack's row takes
    its side-by-side ratios from the part with the same K."""
    spec = importlib.util.spec_from_file_location("tables", Path(__file__).parents[1] / "benchmarks" / "tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)

    target = {"name": "T", "modes_3sigma": 24.0, "hq_fraction": 0.9}
    record = {"curves": "c.csv", "method": "ali@tuned", "seeds": 5, "stacked_run_steps_per_s": 104.0,
              "plain_run_steps_per_s": 50.7, "rates": "given", "reference_steps_per_seed": 400_000,
              "targets": [{"target": target, "reached": False, "step": 10_000, "seconds": 480.0,
                           "plain_seconds_same_steps": 960.0}]}
    text = tables.TABLES["time_to_quality_tuned_10k"](record, "time_to_quality_tuned_10k")
    assert "`benchmarks/results/time_to_quality_tuned_10k.json`" in text
    assert "| T: >= 24 modes, >= 90 % HQ | not reached by step 10,000 | > 8.0 min | > 16.0 min | - |" in text

    names = ("single engine, 1 thread", "4 runs as 2 worker threads x 1 thread", "4 runs as 2 processes x 1 thread")
    conv = {"processor": "P", "torch": "t", "batch": 100, "threads": 2,
            "single_engine": {"step_seconds": 0.05, "share": {"convolution": 0.6, "other operators": 0.4}},
            "stacks": [{"members": 4, "best_form_x_separate": 1.08, "estimate_x_single": 1.1},
                       {"members": 8, "best_form_x_separate": 1.07, "estimate_x_single": 1.1}],
            "side_by_side": [{"members": 4, "threads": 2,
                              "x_single_engine_threads": dict(zip(names, (0.59, 1.43, 1.27))),
                              "x_range": dict(zip(names, ([0.4, 0.6], [1.2, 1.5], [1.1, 1.3])))}]}
    rows = tables.conv_stack(conv, "conv_stack").splitlines()
    assert "50.0 ms (convolution 60 %, other operators 40 %)" in rows[0]
    assert "| 4 | x1.08 | x1.10 | x1.43 (1.20-1.50) | x1.27 (1.10-1.30) | x0.59 (0.40-0.60) |" in rows
    assert "| 8 | x1.07 | x1.10 | - | - | - |" in rows


def test_time_to_quality_names_the_recipe_of_the_swept_variant_it_reads():
    """A learning-rate sweep's study.json holds one example cell (lr 2e-4 here); the recipe of the
    curve read is that of the variant asked for."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from time_to_quality import recipe

    study = Path(__file__).parents[1] / "figures" / "ali_grid_lr_sweep" / "study.json"
    assert "Adam 0.0003," in recipe(study, "ali@lr=0.0003") and "Adam 0.0002," in recipe(study, "ali@lr=0.0002")
    assert "Adam 0.0002," in recipe(study, "ali")


def test_the_step_profile_buckets_operators_and_writes_its_record(tmp_path):
    """benchmarks/profile_step.py: operator names land in the bucket they belong to, and a tiny
    profile writes every field its table in docs/speed.md reads."""
    import json
    import subprocess
    import sys

    path = Path(__file__).parents[1] / "benchmarks" / "profile_step.py"
    spec = importlib.util.spec_from_file_location("profile_step", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert [module.bucket(n) for n in ("aten::addmm", "aten::bmm", "aten::add_", "aten::native_batch_norm",
                                       "aten::amax", "aten::copy_", "aten::_fused_adam_", "aten::view")] == [
        "matmul", "matmul", "elementwise", "batchnorm", "maxout", "copies and allocation", "adam", "other"]
    done = subprocess.run([sys.executable, str(path), "--members", "2", "--steps", "10", "--threads", "1",
                           "--out", str(tmp_path / "profile.json")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads((tmp_path / "profile.json").read_text())
    assert record["step_ms"] > 0 and record["buckets_ms"]["matmul"] > 0
    # shares of the step; each a difference of two run lengths' times, so on a busy machine a share
    # may fall below 0 or the shares sum past 1: only their arithmetic is checked here
    assert all(record["buckets_share"][k] == pytest.approx(ms / record["step_ms"])
               for k, ms in record["buckets_ms"].items())
    assert record["matmul_shapes_alone_gflops"] > 0
    assert record["plain_reference_run_steps_per_s"] > 0 and len(record["plain_reference_rounds"]) == 3
    assert record["floor_ms"] == pytest.approx(sum(record["buckets_ms"][k] for k in record["floor_buckets"]))
    plain = record["plain_reference_run_steps_per_s"]  # ratios of 2 members' run-steps to the reference's
    assert record["ratio_to_plain"] == pytest.approx(2 / (record["step_ms"] / 1e3) / plain)
    assert record["floor_ratio_to_plain"] == pytest.approx(2 / (record["floor_ms"] / 1e3) / plain)


def test_the_optimizer_benchmark_times_the_three_adam_steps_and_writes_its_record(tmp_path):
    """benchmarks/optimizer_step.py: whole-tensor Adam, the merged per-member Adam and the
    member-by-member reference, each timed, with the ratios docs/speed.md quotes."""
    import json
    import subprocess
    import sys

    path = Path(__file__).parents[1] / "benchmarks" / "optimizer_step.py"
    done = subprocess.run([sys.executable, str(path), "--members", "2", "--rounds", "1",
                           "--out", str(tmp_path / "optimizer.json")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads((tmp_path / "optimizer.json").read_text())
    assert len(record["ms_per_step"]) == 3 and all(ms > 0 for ms in record["ms_per_step"].values())
    whole, merged, unmerged = record["ms_per_step"].values()
    assert record["ratio"] == pytest.approx(merged / whole, rel=0.02)  # ms are rounded to 0.01
    assert record["ratio_member_by_member"] == pytest.approx(unmerged / whole, rel=0.02)


@pytest.mark.parametrize("fused", [False, True])
def test_the_torch_func_peer_does_the_plain_references_arithmetic_per_member(train_speed, fused):
    """Member k of the torch.func ensemble takes the steps ``ali_step`` takes alone from the same
    weights, minibatches and noise (to float rounding: vmap's kernels are not the loop's)."""
    import copy

    import torch

    if fused and not train_speed.fused_adam_available():
        pytest.skip("this torch has no fused Adam on the CPU")
    loop = train_speed.ALI_LOOP
    members = []
    for k in range(2):
        torch.manual_seed(k)
        members.append(loop.networks())
    alone = copy.deepcopy(members[1])
    ensemble = train_speed.FuncEnsemble(members, fused=fused)
    opt_d = torch.optim.Adam(alone[2].parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam([*alone[0].parameters(), *alone[1].parameters()], lr=1e-4, betas=(0.5, 0.999))
    data = loop.grid(1000, torch.Generator().manual_seed(0))
    for step in range(3):
        x = data[torch.randint(len(data), (2, 16))]
        draws = []
        for k in range(2):
            torch.manual_seed(100 * step + k)
            draws.append((torch.randn(16, 2), torch.randn(16, 2)))  # z, then the encoder's noise: ali_step's order
        ensemble.step(x, torch.stack([z for z, _ in draws]), torch.stack([e for _, e in draws]))
        torch.manual_seed(100 * step + 1)
        loop.ali_step(*alone, x[1], opt_d, opt_g)
    for net, params in zip(alone, ensemble.member(1)):
        for name, value in net.named_parameters():
            assert torch.allclose(params[name], value.detach(), atol=1e-6), name
    assert not torch.allclose(ensemble.member(0)[0]["0.weight"], ensemble.member(1)[0]["0.weight"])


def test_the_process_peer_runs_one_plain_reference_per_process(train_speed, monkeypatch):
    import sys

    monkeypatch.syspath_prepend(str(Path(train_speed.__file__).parent))  # spawned children import the module
    monkeypatch.setitem(sys.modules, "train_speed", train_speed)  # pickled by name: this very module
    assert train_speed.plain_processes(steps=5, batch=20, processes=2) > 0
