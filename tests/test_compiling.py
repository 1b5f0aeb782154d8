"""Optional torch.compile of the networks (train.compile): same maths, eager again for evaluation."""
from __future__ import annotations

import pytest
import torch

from conftest import tiny_config
from inference_zoo.engine import compiling
from inference_zoo.engine.compiling import compiled_networks, outermost_sequentials
from inference_zoo.core.config import RunConfig
from inference_zoo.core.errors import UserError
from inference_zoo.experiment.runs import run_group
from inference_zoo.engine.train import build_strategy
from inference_zoo.engine.stack.engine import resolve_engine


def test_the_layer_stacks_of_each_network_are_found_once():
    strategy = build_strategy(tiny_config("ali"), 2)
    stacks = outermost_sequentials(strategy)
    # the encoder's and discriminator's stacks sit inside their modules, the decoder is one
    assert {id(s) for s in stacks} == {id(strategy.encoder.net), id(strategy.decoder), id(strategy.discriminator.net)}


def test_the_context_compiles_and_then_restores_eager_networks():
    strategy = build_strategy(tiny_config("ali"), 2)
    with compiled_networks(strategy, True, torch.device("cpu")):
        assert all(s._compiled_call_impl is not None for s in outermost_sequentials(strategy))
    assert all(s._compiled_call_impl is None for s in outermost_sequentials(strategy))


def test_a_backend_that_cannot_build_kernels_is_one_clear_error(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler found\nlong details")

    compiling.check_compile_works.cache_clear()
    monkeypatch.setattr(torch, "compile", broken)
    try:
        with pytest.raises(UserError, match=r"torch.compile does not work on cpu here \(no C\+\+ compiler found\)$"):
            with compiled_networks(build_strategy(tiny_config("ali"), 2), True, torch.device("cpu")):
                pass
    finally:
        compiling.check_compile_works.cache_clear()


@pytest.mark.parametrize("engine", ["single", "stacked"])
def test_compiled_training_matches_eager_training(tmp_path, engine):
    """Same seeds with and without compile: weights agree to float tolerance, metrics to 4 digits."""
    def configs(compile_):
        cs = [tiny_config("ali", seed=s, steps=8, compile=compile_) for s in (0, 1)]
        return [resolve_engine(c, engine, 2) for c in cs]

    eager = run_group(configs(False), [tmp_path / f"eager{s}" for s in (0, 1)])
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = run_group(configs(True), [tmp_path / f"compiled{s}" for s in (0, 1)])
    # the encoder's and decoder's layer stacks at least (the stacked engine's discriminator
    # runs through shared_backward's chain, not its layer stack)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 2
    for s, a, b in zip((0, 1), eager, compiled):
        wa = torch.load(tmp_path / f"eager{s}" / "checkpoint.pt", weights_only=True)["model"]
        wb = torch.load(tmp_path / f"compiled{s}" / "checkpoint.pt", weights_only=True)["model"]
        assert max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa) < 1e-4
        va = {r["metric"]: float(r["value"]) for r in a}
        vb = {r["metric"]: float(r["value"]) for r in b}
        for metric in ("recon_mse", "prior_mmd", "latent_recovery_mse", "modes_responsibility"):
            assert vb[metric] == pytest.approx(va[metric], rel=1e-4, abs=1e-5), metric


def test_configs_saved_before_the_option_existed_read_as_eager():
    d = tiny_config("ali").to_dict()
    del d["train"]["compile"]
    assert RunConfig.from_dict(d).train.compile is False
