"""Runs split over processes: the same numbers as one process (a single-engine run: those of one
thread), the work split evenly, the choice made from the cores and the size of the job, and a dead
process said in one line."""
from __future__ import annotations

import json

import pytest

import inference_zoo as izoo
from inference_zoo.cli import main
from inference_zoo.core import threads
from inference_zoo.core.results import read_rows
from inference_zoo.experiment.cells import PART_OVERHEAD, _group_phases, part_work, split_work, stack_groups
from inference_zoo.experiment.compare import plan_compare

TIMINGS = ("train_seconds", "eval_seconds")
TINY = dict(preset="quick", steps=30, log_every=15, checkpoint_every=30, device="cpu")


def _rows(folder):
    return {(r["method"], r["seed"], r["metric"]): repr(r["value"]) for r in read_rows(folder / "results.csv")
            if r["metric"] not in TIMINGS}


def test_runs_split_over_two_processes_give_the_numbers_of_one(tmp_path):
    methods, seeds = ["ali", "latent", "posthoc"], 3
    one = izoo.compare(methods, "grid", seeds, out=tmp_path / "one", processes=1, **TINY)
    two = izoo.compare(methods, "grid", seeds, out=tmp_path / "two", processes=2, **TINY)
    assert len(one.rows) == len(two.rows) and _rows(tmp_path / "one") == _rows(tmp_path / "two")
    envs = [json.loads(p.read_text()) for p in sorted((tmp_path / "two/runs").glob("*/*/seed*/env.json"))]
    assert len(envs) == 9 and {e["training_processes"] for e in envs} == {2}
    # latent and posthoc (one unit: their shared GAN) cut into 2 + 1 seeds, ali's 3 whole
    assert {len(s["seeds"]) for e in envs for s in e["stacks"]} == {1, 2, 3}
    assert {e["training_processes"] for e in
            (json.loads(p.read_text()) for p in (tmp_path / "one/runs").glob("*/*/seed*/env.json"))} == {1}


def test_single_engine_runs_split_over_processes_give_the_numbers_of_one_thread(tmp_path):
    """The conv networks train one run at a time; split over two processes, each run trains at one
    thread, and its numbers are those of the same command at --threads 1 in one process."""
    common = ["compare", "--methods", "ali", "--data", "digits", "--seeds", "2", "--steps", "20",
              "--set", "log_every=10", "--set", "checkpoint_every=20", "--device", "cpu"]
    assert main(common + ["--threads", "2", "--processes", "2", "--out", str(tmp_path / "two")]) == 0
    assert main(common + ["--threads", "1", "--processes", "1", "--out", str(tmp_path / "one")]) == 0
    assert _rows(tmp_path / "one") == _rows(tmp_path / "two") and len(_rows(tmp_path / "one")) > 20
    envs = [json.loads(p.read_text()) for p in sorted((tmp_path / "two/runs").glob("*/*/seed*/env.json"))]
    assert len(envs) == 2 and {e["training_processes"] for e in envs} == {2}


def _estimated_work(configs, plan):
    """Each process's work as split_work estimates it, part by part."""
    return [sum(part_work(_group_phases(configs, part)[1], len(part)) for part in assigned) for assigned in plan]


@pytest.mark.parametrize("processes", [2, 3, 4])
def test_the_work_is_split_into_consecutive_members_evenly_and_shared_phases_stay_together(processes):
    configs = plan_compare(["ali", "latent", "posthoc", "vae"], "grid", "quick", list(range(5)), None)
    groups = stack_groups(configs)
    plan = split_work(configs, groups, processes)
    parts = [part for assigned in plan for part in assigned]
    assert sorted(i for part in parts for i in part) == list(range(len(configs)))  # every run once
    for part in parts:  # consecutive members of one stack group
        group = next(g for g in groups if part[0] in g)
        assert part == group[group.index(part[0]):group.index(part[0]) + len(part)]
    for assigned in plan:  # latent's part and posthoc's part of the same seeds: one process
        seeds = {(configs[p[0]].method, tuple(configs[i].seed for i in p)) for p in assigned}
        for method, part_seeds in seeds:
            if method in ("latent", "posthoc"):
                assert ({"latent": "posthoc", "posthoc": "latent"}[method], part_seeds) in seeds
    for group in groups:  # a group's parts on different processes
        holders = [k for k, assigned in enumerate(plan) for part in assigned if part[0] in group]
        assert len(holders) == len(set(holders))
    # even: the busiest process holds at most its share and one member of the largest unit more
    work = _estimated_work(configs, plan)
    member = 2 * 6_000  # latent's and posthoc's phases at the quick preset, one seed
    assert max(work) <= sum(work) / processes + member * (1 + PART_OVERHEAD)


def test_two_processes_take_whole_stacks_and_cut_the_one_that_evens_them_out():
    """ali, bigan and the VAE at 5 seeds on 2 processes: ali's and BiGAN's stacks whole, one on each
    process (a stack's fixed cost paid once), the VAE's cut into 2 + 3 members to even out."""
    configs = plan_compare(["ali", "bigan", "vae"], "grid", "quick", list(range(5)), None)
    plan = split_work(configs, stack_groups(configs), 2)
    shapes = [[(configs[part[0]].method, len(part)) for part in assigned] for assigned in plan]
    assert shapes == [[("ali", 5), ("vae", 2)], [("bigan", 5), ("vae", 3)]]


def test_a_stack_that_would_be_cut_unevenly_at_a_loss_stays_whole():
    """Cutting pays a stack's fixed cost once per part: where that leaves the busiest process with
    more work than the whole stack would (ali's 3 seeds after latent and posthoc), it stays whole."""
    configs = plan_compare(["ali", "latent", "posthoc"], "grid", "quick", list(range(3)), None)
    plan = split_work(configs, stack_groups(configs), 2)
    shapes = [[(configs[part[0]].method, len(part)) for part in assigned] for assigned in plan]
    assert shapes == [[("latent", 2), ("posthoc", 2)], [("ali", 3), ("latent", 1), ("posthoc", 1)]]


def test_auto_takes_a_process_per_core_for_a_large_job_only(monkeypatch):
    monkeypatch.setattr(threads, "choose_threads", lambda request: 4)
    with threads.processes_for("auto"):
        assert threads.plan_processes(10, threads.MIN_SPLIT_RUN_STEPS) == (4, 1)
        assert threads.plan_processes(10, threads.MIN_SPLIT_RUN_STEPS - 1) == (1, 4)  # too small to pay
        assert threads.plan_processes(3, 10 ** 6) == (3, 1)  # at most one process per run
    with threads.processes_for(2):
        assert threads.plan_processes(10, 100) == (2, 2)  # as given, the cores shared out
    monkeypatch.setattr(threads, "choose_threads", lambda request: 1)
    with threads.processes_for("auto"):
        assert threads.plan_processes(10, 10 ** 6) == (1, 1)  # one core (--threads 1, a busy machine)


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_process_count_is_one_line(value, tmp_path, capsys):
    assert main(["compare", "--methods", "ali", "--processes", value, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--processes must be auto or a number of processes" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(izoo.UserError, match="processes must be"):
        izoo.compare(["ali"], processes=value, out=tmp_path / "p")


def test_a_training_process_that_dies_is_one_line_and_the_run_resumes(tmp_path, monkeypatch, capsys):
    """A worker killed mid-run (here: a worker that exits at once) ends the command with one line,
    exit 2; the next call with --resume trains what is missing."""
    import subprocess
    import sys

    real = subprocess.Popen

    def dying(args, **kwargs):
        if args[1:] == ["-m", "inference_zoo.experiment.cells"]:
            args = [sys.executable, "-c", "import sys; sys.stdin.read(); sys.exit(9)"]
        return real(args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", dying)
    argv = ["compare", "--methods", "ali", "--seeds", "2", "--processes", "2", "--preset", "quick", "--steps", "20",
            "--set", "log_every=10", "--set", "checkpoint_every=20", "--no-progress", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "a training process died (exit status 9" in err and "--resume" in err
    monkeypatch.setattr(subprocess, "Popen", real)
    assert main([*argv, "--resume"]) == 0
    assert len({(r["seed"]) for r in read_rows(tmp_path / "o/results.csv")}) == 2
