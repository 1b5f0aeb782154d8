"""Thread settings: parsing, the automatic choice, and that threads change speed but not numbers."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import torch

from conftest import tiny_config
from inference_zoo.core import threads
from inference_zoo.nets import ArchConfig
from inference_zoo.experiment.runs import run_group
from inference_zoo.engine.stack.engine import resolve_engine


@pytest.mark.parametrize("text, expected", [("auto", "auto"), ("ALL", "all"), ("3", 3), (" 1 ", 1)])
def test_thread_requests_parse(text, expected):
    assert threads.parse_threads(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "two", "", "1.5", "99999"])
def test_bad_thread_requests_name_the_choices(text):
    with pytest.raises(ValueError, match="auto, all or a number"):
        threads.parse_threads(text)


def test_auto_takes_the_cores_other_running_tasks_leave(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    for others, expected in ((0, 2), (1, 1), (5, 1)):
        monkeypatch.setattr(threads, "other_running_tasks", lambda others=others: others)
        assert threads.choose_threads("auto") == expected
    assert threads.choose_threads("all") == 2
    assert threads.choose_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(threads, "other_running_tasks", lambda: 0)
    assert threads.choose_threads("auto") == 1  # the user's setting wins over the count


def test_a_bad_thread_request_is_one_line_and_exit_2():
    result = subprocess.run([sys.executable, "-m", "inference_zoo", "compare", "--threads", "many"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "izoo: error: --threads must be auto, all or a number of threads, got 'many'"


def test_thread_count_changes_no_number(tmp_path):
    """Networks wide enough that matmuls and elementwise kernels do split across threads."""
    arch = ArchConfig(encoder_hidden=(130, 130), decoder_hidden=(130, 130), discriminator_hidden=(70, 70),
                      maxout_pieces=5)
    configs = [resolve_engine(dataclasses.replace(tiny_config("ali", seed=s, steps=15, batch_size=100), arch=arch),
                              "stacked", 2) for s in (0, 1)]
    weights = []
    for n in (1, 2):
        torch.set_num_threads(n)
        run_group(configs, [tmp_path / f"threads{n}/seed{c.seed}" for c in configs])
        weights.append(torch.load(tmp_path / f"threads{n}/seed1/checkpoint.pt", weights_only=True)["model"])
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
