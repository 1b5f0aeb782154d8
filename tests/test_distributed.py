"""Data-parallel runs (torch.distributed, gloo on CPU): two processes at a global batch train the
one-process run at that batch, to float tolerance, and can resume its checkpoints."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import stopped_after_updates, tiny_config

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
TESTS = Path(__file__).resolve().parent
SMALL = ["-a", "encoder_hidden=32x32", "-a", "decoder_hidden=32x32", "-a", "discriminator_hidden=32x32"]


def torchrun(*args: str) -> subprocess.CompletedProcess:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
            f"--master_port={port}", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key].float(), b[key].float(), rtol=1e-4, atol=1e-5, msg=key)


def test_two_processes_train_the_one_process_run_at_the_same_global_batch(tmp_path):
    from inference_zoo.cli import main

    common = ["compare", "--methods", "ali,vae", "--data", "grid", "--preset", "quick", "--steps", "4",
              "--seeds", "1", "--no-progress", "--threads", "1", *SMALL]
    assert main([*common, "--engine", "single", "--out", str(tmp_path / "one")]) == 0
    done = torchrun("-m", "inference_zoo", *common, "--out", str(tmp_path / "two"))
    assert done.stdout.count("higher/lower is better") == 1 and done.stderr.count("results:") == 1  # process 0 alone reports
    for method in ("ali", "vae"):
        one, two = tmp_path / "one/runs/grid" / method / "seed0", tmp_path / "two/runs/grid" / method / "seed0"
        assert_close(weights(one / "checkpoint.pt"), weights(two / "checkpoint.pt"))
        logged_one = [line.split('"loss_')[1] for line in (one / "metrics.jsonl").read_text().splitlines()]
        assert len(logged_one) == len((two / "metrics.jsonl").read_text().splitlines())  # one writer
        assert (two / "results.csv").is_file() and (two / "samples.npz").is_file()
    assert (tmp_path / "two/results.csv").is_file() and (tmp_path / "two/comparison-grid.png").is_file()


@pytest.mark.parametrize("method", ["ali", "vae"])
def test_a_data_parallel_run_resumes_a_one_process_checkpoint(tmp_path, method):
    import inference_zoo.engine.train as train_module
    from inference_zoo.engine.train import Trainer

    config = tiny_config(method, steps=12, checkpoint_every=4, log_every=2)
    with stopped_after_updates(train_module, 6):  # a checkpoint at step 4, then a stop
        Trainer(config, tmp_path / "run").run()
    assert torch.load(tmp_path / "run/checkpoint.pt", weights_only=True)["step"] == 4
    torchrun(str(TESTS / "distributed_worker.py"), str(tmp_path / "run"), method)
    Trainer(config, tmp_path / "reference").run()
    assert_close(weights(tmp_path / "reference/checkpoint.pt"), weights(tmp_path / "run/checkpoint.pt"))
    steps = [line.split('"step": ')[1].split(",")[0] for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert steps == ["2", "4", "6", "8", "10", "12"]  # the log up to the checkpoint kept, each later step once


def test_a_batch_the_processes_cannot_share_is_refused(tmp_path):
    torchrun_args = ["-m", "inference_zoo", "compare", "--methods", "vae", "--preset", "quick", "--steps", "2",
                     "--batch-size", "33", "--out", str(tmp_path / "odd"), "--no-progress", *SMALL]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--master_addr=127.0.0.1", f"--master_port={port}", *torchrun_args],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert "izoo: error: --batch-size 33 is not divisible by the 2 processes" in done.stderr  # one line each
