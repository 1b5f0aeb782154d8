"""Reliability: a SIGKILLed run resumes to the same weights; a kill mid-write keeps the old file;
an unwritable folder is a clear error, not a corrupt file."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from inference_zoo.core.errors import UserError
from inference_zoo.core.fileio import load_torch, write_json
from inference_zoo.engine.train import Trainer

from conftest import tiny_config

TRAIN_SCRIPT = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, {tests!r})
    torch.set_num_threads(1)
    from conftest import tiny_config
    from inference_zoo.engine.train import Trainer
    Trainer(tiny_config("ali", steps=400, checkpoint_every=25, log_every=25), sys.argv[1]).run()
""")


def _wait_for_checkpoint_step(run_dir, minimum, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        path = run_dir / "checkpoint.pt"
        if path.exists():
            try:
                if load_torch(path)["step"] >= minimum:
                    return
            except UserError:
                pass
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.parametrize("kill_after", [50, 150])
def test_sigkilled_run_resumes_to_bit_identical_weights(kill_after, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT.format(tests=os.path.dirname(__file__)))
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(script), str(run_dir)])
    try:
        _wait_for_checkpoint_step(run_dir, kill_after)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_torch(run_dir / "checkpoint.pt")
    assert 0 < killed_at["step"] < 400  # really interrupted mid-training

    config = tiny_config("ali", steps=400, checkpoint_every=25, log_every=25)
    resumed = Trainer(config, run_dir)
    resumed.run()
    reference = Trainer(config, tmp_path / "reference")
    reference.run()
    for key, value in reference.strategy.state_dict().items():
        assert torch.equal(value, resumed.strategy.state_dict()[key]), key
    logged = [json.loads(x)["step"] for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert logged == list(range(25, 401, 25))


def test_kill_during_a_write_leaves_the_previous_file(tmp_path):
    """A child process is SIGKILLed while writing a large file over a good one."""
    target = tmp_path / "results.json"
    write_json(target, {"good": True})
    script = textwrap.dedent(f"""
        import os, signal
        from inference_zoo.core.fileio import atomic_write
        def write(f):
            f.write(b"x" * 1_000_000)
            os.kill(os.getpid(), signal.SIGKILL)  # dies mid-write, before the rename
        atomic_write({str(target)!r}, write)
    """)
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == -signal.SIGKILL
    assert json.loads(target.read_text()) == {"good": True}


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_folder_is_a_clear_error(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(UserError, match="cannot write"):
            write_json(tmp_path / "x.json", {})
    finally:
        tmp_path.chmod(0o700)


def test_failing_write_is_a_clear_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    """A full disk shows up as OSError from write/fsync: reported in one line, old file intact."""
    target = tmp_path / "config.json"
    write_json(target, {"v": 1})

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(UserError, match="No space left on device"):
        write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temp file left behind


def test_output_path_that_is_a_file_is_refused(tmp_path):
    from inference_zoo.experiment.cells import prepare_output

    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(UserError, match="is not a folder"):
        prepare_output(tmp_path / "out", [tiny_config()], "new")


def test_unwritable_destination_is_a_clear_error(tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(UserError, match="cannot write"):
        write_json(tmp_path / "afile" / "x.json", {})
