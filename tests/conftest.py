"""Shared fixtures: tiny configs that train in well under a second per run."""
from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import shutil
import tempfile

# derived files cached under the data folder (the image metrics' feature network) go to a folder
# of this test session, never into the checkout; set before inference_zoo reads it; and the
# stacking checks' verdicts (engine/stack/engine.py) to a cache of this session's own; both are
# removed when the session ends
for variable, prefix in (("IZOO_DATA_ROOT", "izoo-data-"), ("XDG_CACHE_HOME", "izoo-cache-")):
    os.environ[variable] = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, os.environ[variable], ignore_errors=True)

import pytest  # noqa: E402
import torch  # noqa: E402

from inference_zoo.core.config import EvalConfig, RunConfig, TrainConfig
from inference_zoo.data import parse_data_spec
from inference_zoo.nets import ArchConfig

TINY_ARCH = ArchConfig(encoder_hidden=(16, 16), decoder_hidden=(16, 16), discriminator_hidden=(16, 16), maxout_pieces=2)


def tiny_config(method: str = "ali", *, data: str = "grid", steps: int = 20, seed: int = 0, **train) -> RunConfig:
    return RunConfig(
        method=method, seed=seed, data=parse_data_spec(data, n_train=500, n_test=300), arch=TINY_ARCH,
        train=dataclasses.replace(TrainConfig(steps=steps, lr=1e-3, batch_size=32, log_every=5,
                                              checkpoint_every=10, device="cpu"), **train),
        eval=EvalConfig(n_three_sigma=200, n_responsibility=300, n_prior_match=100),
    )


def pytest_report_header(config):
    """The machine the suite ran on, at the top of its output (CI runs on whatever machine it gets)."""
    from inference_zoo.core.environment import cpu_model

    model = cpu_model()
    blas = "MKL" if torch.backends.mkl.is_available() else "other"
    return [f"machine: {model}; {os.cpu_count()} cores; torch {torch.__version__}, CPU capability "
            f"{torch.backends.cpu.get_cpu_capability()}, BLAS {blas}, {torch.get_num_threads()} threads by default"]


@pytest.fixture(autouse=True)
def _single_thread():
    """Tests compare floats for equality across runs: keep intra-op threading fixed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@contextlib.contextmanager
def stopped_after_updates(engine_module, n: int):
    """Inside, the engine module's ``update`` raises KeyboardInterrupt after ``n`` updates: a
    run stopped mid-training, in-process."""
    original, calls = engine_module.update, {"n": 0}

    def counted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > n:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    engine_module.update = counted
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        engine_module.update = original
