"""The training hot loop never reads a tensor back to the host between log steps.

Why: on a GPU each such read (``.item()``, ``float(t)``, ``if t:``, ``.tolist()``, ``.cpu()``) waits
for every queued kernel, so one per step serialises the device with Python. The probe counts the
calls our own code (``inference_zoo/``) makes; a loop that is free of them makes as many in a
30-step run as in a 10-step one (set-up, evaluation and the final log are paid once). torch's
own Adam reads its step counters, which live on the host, and is not counted.
"""
from __future__ import annotations

import collections
import sys
from pathlib import Path

import pytest
import torch

import inference_zoo
from conftest import tiny_config
from inference_zoo.experiment.runs import run_group
from inference_zoo.strategies import STRATEGIES
from inference_zoo.engine.stack.engine import resolve_engine

HOST_READS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy", "cpu")
PACKAGE = str(Path(inference_zoo.__file__).parent)


def host_reads(monkeypatch, configs, run_dirs) -> collections.Counter:
    """Train ``configs``; count host reads by call site (file:line) inside the package."""
    counts: collections.Counter = collections.Counter()

    def counted(name):
        original = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            caller = sys._getframe(1)
            if caller.f_code.co_filename.startswith(PACKAGE):
                counts[f"{Path(caller.f_code.co_filename).name}:{caller.f_lineno} {name}"] += 1
            return original(self, *args, **kwargs)
        return read

    with monkeypatch.context() as m:
        for name in HOST_READS:
            m.setattr(torch.Tensor, name, counted(name))
        run_group(configs, run_dirs)
    return counts


RUNS = [(m, "single") for m in sorted(STRATEGIES.names())] + \
       [(m, "stacked") for m in sorted(STRATEGIES.names()) if STRATEGIES.get(m).stackable]


@pytest.mark.parametrize("method,engine", RUNS)
def test_training_steps_make_no_host_reads(tmp_path, monkeypatch, method, engine):
    def reads(steps):
        configs = [tiny_config(method, seed=s, steps=steps, log_every=1000, checkpoint_every=1000) for s in (0, 1)]
        if engine == "stacked":
            configs = [resolve_engine(c, "stacked", 2) for c in configs]
        return host_reads(monkeypatch, configs, [tmp_path / f"{steps}-{c.seed}" for c in configs])

    short, long = reads(10), reads(30)
    assert sum(short.values()) > 0  # the probe sees the reads of set-up, logging and evaluation
    per_step = {site: n - short[site] for site, n in long.items() if n != short[site]}
    assert per_step == {}, f"host reads that grow with the number of steps: {per_step}"
