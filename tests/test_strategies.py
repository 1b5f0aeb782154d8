"""Every built-in strategy end to end on a few steps, plus the properties each one promises."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from inference_zoo.experiment.runs import run_one
from inference_zoo.strategies import STRATEGIES, params_of
from inference_zoo.engine.train import Trainer, build_strategy

from conftest import tiny_config

BUILT_INS = ["ali", "alice", "bigan", "hali", "latent", "posthoc", "vae"]


def test_registry_lists_the_built_ins():
    assert set(BUILT_INS) <= set(STRATEGIES.names())
    for name in BUILT_INS:
        STRATEGIES.get(name).check_plugin_contract()


@pytest.mark.parametrize("method", BUILT_INS)
@pytest.mark.parametrize("data", ["grid", "identity"])
def test_end_to_end_run_writes_finite_metrics(method, data, tmp_path):
    rows = run_one(tiny_config(method, data=data), tmp_path / "run", tmp_path / "shared")
    values = {r["metric"]: r["value"] for r in rows}
    assert values["diverged"] == 0.0
    for key in ("recon_mse", "latent_recovery_mse", "prior_mmd", "prior_ks"):
        assert math.isfinite(values[key]), key
    if data == "grid":
        assert 1 <= values["modes_responsibility"] <= 25
        assert 0 <= values["modes_3sigma"] <= 25
        assert 0.0 <= values["recon_same_mode"] <= 1.0
    else:
        assert -1.0 <= values["corr_x_encoding"] <= 1.0
    for name in ("config.json", "env.json", "checkpoint.pt", "metrics.jsonl", "samples.npz", "results.csv"):
        assert (tmp_path / "run" / name).is_file(), name
    assert {r["method"] for r in rows} == {method} and {r["study"] for r in rows} == {"compare"}


@pytest.mark.parametrize("method", BUILT_INS)
def test_inference_api_shapes(method):
    strategy = build_strategy(tiny_config(method), x_dim=2).eval()
    x = torch.randn(7, 2)
    assert strategy.encode(x).shape == (7, strategy.z_dim)  # hali: the top level, z2
    assert strategy.decode(torch.randn(7, strategy.z_dim)).shape == (7, 2)
    assert strategy.sample(5).shape == (5, 2)
    assert strategy.reconstruct(x).shape == (7, 2)


def test_ali_encoder_is_stochastic_and_bigans_is_not():
    x = torch.randn(9, 2)
    ali = build_strategy(tiny_config("ali"), 2).eval()
    bigan = build_strategy(tiny_config("bigan"), 2).eval()
    assert not torch.equal(ali.encode(x), ali.encode(x))
    assert torch.equal(bigan.encode(x), bigan.encode(x))


def test_networks_with_the_same_name_start_identical_across_strategies():
    """Seeded by (seed, name): ALI's decoder and the GAN's decoder start from the same weights."""
    ali, latent = build_strategy(tiny_config("ali"), 2), build_strategy(tiny_config("latent"), 2)
    for a, b in zip(ali.decoder.state_dict().values(), latent.decoder.state_dict().values()):
        assert torch.equal(a, b)
    other_seed = build_strategy(tiny_config("ali", seed=1), 2)
    assert not torch.equal(ali.decoder[0].weight, other_seed.decoder[0].weight)


def test_latent_and_posthoc_reuse_one_trained_gan(tmp_path):
    shared = tmp_path / "shared"
    Trainer(tiny_config("latent"), tmp_path / "latent", shared).run()
    assert len(list(shared.glob("gan-*.pt"))) == 1
    posthoc = Trainer(tiny_config("posthoc"), tmp_path / "posthoc", shared)
    result = posthoc.run()
    assert result.reused_phases == ["gan"]
    latent = Trainer(tiny_config("latent"), tmp_path / "latent2", None)
    latent.run()  # trained again from scratch, without the cache: must give the same GAN
    for a, b in zip(latent.strategy.decoder.state_dict().values(), posthoc.strategy.decoder.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("method", ["latent", "posthoc"])
def test_encoder_phase_leaves_the_decoder_untouched(method, tmp_path):
    trainer = Trainer(tiny_config(method), tmp_path / "run")
    strategy = trainer.strategy
    phases = strategy.phases(trainer.config.train.steps)
    assert [p.name for p in phases][0] == "gan" and phases[1].frozen == ("decoder",)
    assert all("decoder" not in names for names in phases[1].groups.values())
    trainer.run()
    # the decoder after both phases equals the GAN-phase decoder saved by a GAN-only reference run
    reference = Trainer(tiny_config(method, steps=20), tmp_path / "ref")
    reference.strategy.phases = lambda steps: phases[:1]  # only the GAN phase
    reference.run()
    for a, b in zip(strategy.decoder.state_dict().values(), reference.strategy.decoder.state_dict().values()):
        assert torch.equal(a, b)


def test_both_losses_reach_the_parameters_of_their_groups():
    strategy = build_strategy(tiny_config("ali"), 2)
    phase = strategy.phases(10)[0]
    out = strategy.step(phase.name, torch.randn(16, 2))
    d_params = params_of(strategy, phase.groups["discriminator"])
    grads = torch.autograd.grad(out.losses["discriminator"], d_params, retain_graph=True)
    assert all(torch.count_nonzero(g) > 0 for g in grads)
    # the generator-side loss does reach the encoder and the decoder
    g_grads = torch.autograd.grad(out.losses["generator"], params_of(strategy, ("encoder", "decoder")), allow_unused=True)
    assert all(g is not None for g in g_grads)


def test_minimax_option_negates_the_discriminator_loss():
    cfg = tiny_config("ali")
    cfg.options = {"generator_loss": "minimax"}
    strategy = build_strategy(cfg, 2)
    torch.manual_seed(0)
    out = strategy.step("ali", torch.randn(16, 2))
    assert torch.allclose(out.losses["generator"], -out.losses["discriminator"])


def test_hierarchical_ali_has_two_stochastic_levels_and_reconstructs_through_each(tmp_path):
    config = tiny_config("hali", data="grid:modes=9", steps=10)
    hali = build_strategy(dataclasses.replace(config, options={"z2_dim": 3}), x_dim=2).eval()
    assert (hali.z1_dim, hali.z2_dim, hali.prior(4).shape) == (2, 3, (4, 3))
    x = torch.randn(6, 2)
    assert not torch.equal(hali.encoder1(x), hali.encoder1(x))  # q(z1|x) and q(z2|z1) inject noise
    z1 = torch.randn(6, 2)
    assert not torch.equal(hali.encoder2(z1), hali.encoder2(z1))
    assert not torch.equal(hali.decoder2(torch.randn(6, 3)), hali.decoder2(torch.randn(6, 3)))
    levels = hali.reconstruct_levels(x)
    assert set(levels) == {"z1", "z2"} and levels["z1"].shape == levels["z2"].shape == (6, 2)
    # D sees (x, z1, z2); every generator-side network gets a gradient from one step
    out = hali.train().step("hali", torch.randn(8, 2))
    out.losses["generator"].backward()
    for name in ("encoder1", "encoder2", "decoder1", "decoder2"):
        assert all(p.grad is not None for p in params_of(hali, (name,))), name
    rows = {r["metric"]: r["value"] for r in run_one(config, tmp_path / "run")}
    assert math.isfinite(rows["recon_mse_z1"]) and 0 <= rows["recon_same_mode_z1"] <= 1
