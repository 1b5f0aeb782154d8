"""Fault injection: every damaged, missing or unwritable file gives one line naming it and exit
code 2 (or is repaired where that loses nothing), never a traceback and never a figure drawn from
less data than it claims."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from inference_zoo.cli import main

FAST = ["--steps", "10", "--n-train", "300", "--device", "cpu", "--no-progress", "--preset", "quick"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """A finished two-method, two-seed comparison to damage copies of."""
    out = tmp_path_factory.mktemp("compared") / "cmp"
    assert main(["compare", "--methods", "ali,vae", "--data", "ring", "--seeds", "2", "--out", str(out), *FAST]) == 0
    return out


@pytest.fixture
def folder(compared, tmp_path):
    copy = tmp_path / "cmp"
    shutil.copytree(compared, copy)
    return copy


def one_line_error(argv, capsys, *expected):
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured.err
    # progress lines ("[1/4] ali seed 0: finished earlier, kept") may come first
    err = "".join(line + "\n" for line in captured.err.splitlines() if not line.startswith("["))
    assert err.startswith("izoo: error: ") and err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    for text in expected:
        assert text in err, err
    return err


RESULTS_DAMAGE = {
    "truncated": lambda data: data[: len(data) // 2 - 3],
    "latin-1": lambda data: data.replace(b"ring", "r\u00efng".encode("latin-1")),
    "random bytes": lambda data: os.urandom(len(data)),
    "header only": lambda data: data.split(b"\n")[0] + b"\n",
}


@pytest.mark.parametrize("damage", sorted(RESULTS_DAMAGE))
def test_figures_refuse_a_damaged_results_table(folder, capsys, damage):
    path = folder / "results.csv"
    path.write_bytes(RESULTS_DAMAGE[damage](path.read_bytes()))
    one_line_error(["figures", str(folder)], capsys, "results.csv")


def test_figures_refuse_a_missing_sample_array_rather_than_draw_less(folder, capsys):
    (folder / "runs/ring/vae/seed0/samples.npz").unlink()
    before = (folder / "comparison-ring.png").read_bytes()
    one_line_error(["figures", str(folder)], capsys, "vae/seed0/samples.npz is missing")
    assert (folder / "comparison-ring.png").read_bytes() == before


@pytest.mark.parametrize("name, content", [("samples.npz", b"PK\x03\x04 not a zip"), ("config.json", b"{nope"),
                                           ("config.json", b"null")])
def test_figures_refuse_a_damaged_run_file(folder, capsys, name, content):
    (folder / "runs/ring/ali/seed0" / name).write_bytes(content)
    one_line_error(["figures", str(folder)], capsys, f"ali/seed0/{name}")


def test_figures_refuse_a_seed_that_is_not_there(folder, capsys):
    one_line_error(["figures", str(folder), "--seed", "99"], capsys, "no run with seed 99", "0, 1")


def test_figures_refuse_an_unwritable_destination(folder, capsys):
    (folder / "comparison-ring.png").unlink()
    (folder / "comparison-ring.png").mkdir()  # a folder where the figure goes: the write fails
    one_line_error(["figures", str(folder)], capsys, "cannot write", "comparison-ring.png")


@pytest.mark.parametrize("content", [b"{broken", b"[]", b'{"no": "study"}'])
def test_figures_refuse_a_damaged_study_record(tmp_path, capsys, content):
    published = tmp_path / "figures/identity_toy"
    assert main(["study", "identity_toy", "--seeds", "1", "--methods", "ali", *FAST[:2], "--device", "cpu",
                 "--no-progress", "--preset", "quick", "--out", str(tmp_path / "runs"), "--publish", str(published)]) == 0
    capsys.readouterr()
    (published / "study.json").write_bytes(content)
    one_line_error(["figures", str(tmp_path / "figures")], capsys, "study.json")


def resume(folder):
    return ["compare", "--methods", "ali,vae", "--data", "ring", "--seeds", "2", "--out", str(folder), *FAST, "--resume"]


def unfinish(run):
    """Make a finished run look killed mid-training: results gone, a mid-training checkpoint kept."""
    (run / "results.csv").unlink()
    (run / "samples.npz").unlink()


def test_resume_repairs_a_half_written_last_log_line(folder, capsys):
    run = folder / "runs/ring/ali/seed0"
    unfinish(run)
    log = run / "metrics.jsonl"
    complete = log.read_text()
    log.write_text(complete + '{"phase": "ali", "st')
    assert main(resume(folder)) == 0, capsys.readouterr().err
    assert log.read_text() == complete


def test_resume_refuses_a_damaged_line_before_the_last(folder, capsys):
    run = folder / "runs/ring/ali/seed0"
    unfinish(run)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(["{garbage", *lines]) + "\n")
    one_line_error(resume(folder), capsys, "metrics.jsonl line 1 is damaged")


@pytest.mark.parametrize("content", [b"null", b"{half", b"\xff\xfe"])
def test_resume_refuses_a_damaged_config_naming_it(folder, capsys, content):
    run = folder / "runs/ring/vae/seed1"
    unfinish(run)
    (run / "config.json").write_bytes(content)
    one_line_error(resume(folder), capsys, "vae/seed1/config.json")


def test_resume_refuses_a_deleted_log_rather_than_lose_the_curve(folder, capsys):
    """A mid-phase checkpoint whose log is gone: the log up to it cannot be rebuilt."""
    from inference_zoo.core.fileio import load_torch, save_torch

    run = folder / "runs/ring/vae/seed0"
    unfinish(run)
    checkpoint = load_torch(run / "checkpoint.pt")
    checkpoint["step"] = 5  # as if killed mid-phase
    save_torch(run / "checkpoint.pt", checkpoint)
    (run / "metrics.jsonl").unlink()
    one_line_error(resume(folder), capsys, "metrics.jsonl is missing")


def test_resume_repairs_a_garbage_env_record_and_removes_leftover_temporary_files(folder, capsys):
    run = folder / "runs/ring/ali/seed1"
    unfinish(run)
    (run / "env.json").write_bytes(b"\x00garbage")
    (run / ".config.json.abc123.tmp").write_text("{")
    assert main(resume(folder)) == 0, capsys.readouterr().err
    env = json.loads((run / "env.json").read_text())
    assert env["stacks"] and "torch" in env
    assert not list(run.glob(".*.tmp"))
    assert (run / "results.csv").is_file()


def test_a_stale_lock_in_a_finished_cell_is_removed(tmp_path, capsys):
    out = tmp_path / "runs"
    argv = ["study", "identity_toy", "--seeds", "1", "--methods", "ali", "--steps", "10", "--device", "cpu",
            "--no-progress", "--preset", "quick", "--out", str(out), "--publish", str(tmp_path / "pub")]
    assert main(argv) == 0
    lock = out / "runs/identity/ali/seed0/.lock"
    lock.write_text(f"{os.uname().nodename} 999999999\n")  # a process that no longer exists
    assert main(argv) == 0
    assert not lock.exists()
