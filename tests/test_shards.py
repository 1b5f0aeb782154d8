"""Sharded studies: each shard's folder stands alone; merging shards gives the unsharded study."""
from __future__ import annotations

import json

import pytest

from inference_zoo.cli import main
from inference_zoo.core.errors import UserError
from inference_zoo.core.results import read_rows
from inference_zoo.experiment.study import STUDIES, plan_study
from inference_zoo.experiment.cells import parse_shard, shard_configs, stack_groups

# the stacked engine, whose numbers do not depend on the thread count (identity_toy fixes the
# single engine it was published with)
COMMON = ["--preset", "quick", "--device", "cpu", "--no-progress", "--engine", "stacked"]
STUDY = ["identity_toy", *COMMON, "--steps", "40", "--seeds", "4"]
TIMINGS = ("train_seconds", "eval_seconds")


def _rows(folder):
    return [(r["dataset"], r["method"], r["seed"], r["metric"], r["value"])
            for r in read_rows(folder / "results.csv") if r["metric"] not in TIMINGS]


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_shards_partition_the_study_into_whole_stacks(count):
    configs = plan_study(STUDIES.get("mixture_coverage"), list(range(3)))
    shards = [shard_configs(configs, i, count) for i in range(count)]
    labels = [(c.data.label(), c.label, c.seed) for shard in shards for c in shard]
    assert sorted(labels) == sorted((c.data.label(), c.label, c.seed) for c in configs)  # each cell once
    for shard in shards:
        cells = {(c.data.label(), c.label, c.seed) for c in shard}
        for group in stack_groups(configs):  # a stack is never cut
            members = {(configs[i].data.label(), configs[i].label, configs[i].seed) for i in group}
            assert members <= cells or not members & cells
        for c in shard:  # latent and posthoc of a seed share their GAN: same shard
            if c.method in ("latent", "posthoc"):
                other = "posthoc" if c.method == "latent" else "latent"
                assert (c.data.label(), other, c.seed) in cells
    assert shards == [shard_configs(configs, i, count) for i in range(count)]  # deterministic


@pytest.mark.parametrize("text", ["2/2", "1", "a/b", "-1/2", "0/0", "1/2/3"])
def test_bad_shard_specs_are_refused(text):
    with pytest.raises(UserError, match="--shard must be I/N"):
        parse_shard(text)


def test_merged_shards_equal_the_unsharded_study_and_merging_is_idempotent(tmp_path, capsys):
    def run(*args):
        code = main(["study", *args])
        assert code == 0, capsys.readouterr().err

    run(*STUDY, "--out", str(tmp_path / "whole"), "--publish", str(tmp_path / "published/whole"))
    for i in (0, 1):  # a shard with its own --out publishes nowhere unless told
        run(*STUDY, "--shard", f"{i}/2", "--out", str(tmp_path / f"shard{i}"))
        assert not (tmp_path / f"shard{i}" / "study.json").exists()
        assert "--merge" in capsys.readouterr().out
    merged = tmp_path / "published/merged"
    # shard 0 from its run folder; shard 1 published on its own first, then merged from there
    run("identity_toy", "--publish-only", "--out", str(tmp_path / "shard1"), "--publish", str(tmp_path / "published/one"))
    run("identity_toy", "--publish-only", "--merge", str(tmp_path / "shard0"), str(tmp_path / "published/one"),
        "--publish", str(merged))
    assert _rows(merged) == _rows(tmp_path / "published/whole")
    assert len({r[:3] for r in _rows(merged)}) == 4 * len(STUDIES.get("identity_toy").methods)
    whole_samples = sorted(p.name for p in (tmp_path / "published/whole/samples").iterdir())
    assert sorted(p.name for p in (merged / "samples").iterdir()) == whole_samples
    cells = json.loads((merged / "study.json").read_text())["cells_from"]
    assert set(cells) == {f"identity/{m}/seed{s}" for m in STUDIES.get("identity_toy").methods for s in range(4)}
    assert all(c["commit"] and c["config"] for c in cells.values())
    before = (merged / "results.csv").read_bytes()
    run("identity_toy", "--publish-only", "--merge", str(merged), str(tmp_path / "shard0"), str(tmp_path / "shard1"),
        "--publish", str(merged))
    assert (merged / "results.csv").read_bytes() == before


def test_a_cell_with_two_different_results_is_refused_naming_it(tmp_path, capsys):
    one = ["identity_toy", *COMMON, "--seeds", "1", "--methods", "ali"]
    assert main(["study", *one, "--steps", "40", "--out", str(tmp_path / "a"), "--publish", str(tmp_path / "pa")]) == 0
    assert main(["study", *one, "--steps", "41", "--out", str(tmp_path / "b"), "--publish", str(tmp_path / "pb")]) == 0
    capsys.readouterr()
    code = main(["study", "identity_toy", "--publish-only", "--merge", str(tmp_path / "pa"), str(tmp_path / "pb"),
                 "--publish", str(tmp_path / "merged")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("izoo: error: cell identity/ali/seed0 has different configs") and "\n" not in err
    assert not (tmp_path / "merged").exists()


def test_publishing_never_drops_published_cells_without_overwrite(tmp_path, capsys):
    base = ["identity_toy", *COMMON, "--steps", "40", "--methods", "ali", "--publish", str(tmp_path / "pub")]
    assert main(["study", *base, "--seeds", "2", "--out", str(tmp_path / "a")]) == 0
    published = sorted(p.name for p in (tmp_path / "pub/samples").iterdir())
    # a second run folder with seed 2 only adds it: seeds 0 and 1 stay published
    assert main(["study", *base, "--seeds", "2-2", "--out", str(tmp_path / "b")]) == 0
    assert {r["seed"] for r in read_rows(tmp_path / "pub/results.csv")} == {0, 1, 2}
    assert set(published) < {p.name for p in (tmp_path / "pub/samples").iterdir()}
    # merging without the published folder would drop cells: refused unless --overwrite
    capsys.readouterr()
    merge = ["study", "identity_toy", "--publish-only", "--merge", str(tmp_path / "b"), "--publish", str(tmp_path / "pub")]
    assert main(merge) == 2
    assert "would drop 2 published cell(s)" in capsys.readouterr().err
    assert main([*merge, "--overwrite"]) == 0
    assert {r["seed"] for r in read_rows(tmp_path / "pub/results.csv")} == {2}
    assert [p.name for p in (tmp_path / "pub/samples").iterdir()] == ["identity__ali__seed2.npz"]


def test_processes_started_together_train_each_cell_once_and_publish_only_complete_tables(tmp_path):
    """Several processes on one study at the same instant, three times over: no cell trains twice,
    none is missing, and no process publishes a table that lacks cells."""
    import subprocess
    import sys

    for attempt in range(3):
        out, published = tmp_path / f"runs{attempt}", tmp_path / f"pub{attempt}"
        argv = [sys.executable, "-m", "inference_zoo", "study", "identity_toy", *COMMON, "--steps", "20",
                "--seeds", "3", "--threads", "1", "--out", str(out), "--publish", str(published)]
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        results = [p.communicate(timeout=300) for p in procs]
        assert all(p.returncode == 0 for p in procs), [err for _, err in results]
        cells = sorted(out.glob("runs/*/*/seed*"))
        assert len(cells) == 3 * len(STUDIES.get("identity_toy").methods)
        for cell in cells:
            env = json.loads((cell / "env.json").read_text())
            assert len(env["stacks"]) == 1, f"{cell} trained {len(env['stacks'])} times"
            assert (cell / "results.csv").is_file() and not (cell / ".lock").exists()
        # whoever published, published every cell; the others said why they did not
        assert {r["seed"] for r in read_rows(published / "results.csv")} == {0, 1, 2}
        assert len({(r["method"], r["seed"]) for r in read_rows(published / "results.csv")}) == len(cells)
        skipped = [err for _, err in results if "not published" in err]
        assert len(skipped) < 3


def test_a_study_through_submitits_local_executor_equals_the_in_process_run(tmp_path, capsys):
    pytest.importorskip("submitit")  # part of the dev extra: CI runs this
    base = ["study", "identity_toy", *COMMON, "--steps", "20", "--seeds", "2", "--methods", "ali,latent,posthoc"]
    assert main([*base, "--out", str(tmp_path / "here"), "--publish", str(tmp_path / "pub-here")]) == 0
    code = main([*base, "--executor", "local", "--jobs", "2", "--threads", "1", "--out", str(tmp_path / "jobs"),
                 "--publish", str(tmp_path / "pub-jobs")])
    assert code == 0, capsys.readouterr().err
    assert _rows(tmp_path / "pub-jobs") == _rows(tmp_path / "pub-here")
    assert "submitted 2 local job(s)" in capsys.readouterr().err
    assert len(list((tmp_path / "jobs/jobs").glob("*_log.out"))) == 2  # each job writes its own log


def test_publishing_never_replaces_a_published_cell_with_another_result_without_overwrite(tmp_path, capsys):
    one = ["identity_toy", *COMMON, "--seeds", "1", "--methods", "ali", "--publish", str(tmp_path / "pub")]
    assert main(["study", *one, "--steps", "40", "--out", str(tmp_path / "a")]) == 0
    before = (tmp_path / "pub/results.csv").read_bytes()
    again = ["study", "identity_toy", "--publish-only", "--merge", str(tmp_path / "b"), "--publish", str(tmp_path / "pub")]
    assert main(["study", *one[:-2], "--steps", "41", "--out", str(tmp_path / "b")]) == 0  # the same cell, 41 steps
    capsys.readouterr()
    assert main(again) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("izoo: error: cell identity/ali/seed0 has different configs") and "\n" not in err
    assert (tmp_path / "pub/results.csv").read_bytes() == before
    assert main(["study", "identity_toy", "--publish-only", "--merge", str(tmp_path / "a"),
                 "--publish", str(tmp_path / "pub")]) == 0  # the same result again is no replacement
    assert main([*again, "--overwrite"]) == 0
    assert (tmp_path / "pub/results.csv").read_bytes() != before
