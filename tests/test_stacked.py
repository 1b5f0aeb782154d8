"""The stacked engine: each member is the run it replaces, with its own folder, resume and divergence."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from conftest import tiny_config
from inference_zoo.nets.mlp import Maxout
from inference_zoo.experiment.runs import run_group
from inference_zoo.core.config import RunConfig
from inference_zoo.engine.stack.adam import MemberAdam
from inference_zoo.engine.stack.layers import (LAYER_STACKERS, FeatureMajorSequential, NotStackable, member_optimizer_state,
                                    member_state, stack_strategies, stacked_state)
from inference_zoo.experiment.cells import stack_groups
from inference_zoo.strategies import STRATEGIES
from inference_zoo.strategies.ali import ALI
from inference_zoo.engine.train import build_strategy
from inference_zoo.engine.stack.engine import resolve_engine


def stacked(config):
    return resolve_engine(config, "stacked", 2)


def values(rows):
    return {r["metric"]: float(r["value"]) for r in rows}


def model(run_dir):
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]


def test_stacked_layers_compute_each_members_layers():
    torch.manual_seed(0)
    members = [nn.Sequential(nn.Linear(3, 10, bias=False), nn.BatchNorm1d(10), nn.ReLU(), Maxout(10, 4, 2), nn.Linear(4, 2))
               for _ in range(3)]
    x = torch.randn(3, 7, 3)
    stack = FeatureMajorSequential(*[LAYER_STACKERS[type(layer)]([m[i] for m in members])
                                     for i, layer in enumerate(members[0])])
    out = stack(x)
    for k, m in enumerate(members):
        torch.testing.assert_close(out[k], m(x[k]), rtol=1e-5, atol=1e-6)
        # BatchNorm statistics are per member: running averages moved by that member's batch only
        torch.testing.assert_close(stack[1].running_mean[k], m[1].running_mean, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(stack[1].running_var[k], m[1].running_var, rtol=1e-5, atol=1e-7)
    assert stack[1].num_batches_tracked.tolist() == [1, 1, 1]


def test_member_state_round_trips_to_the_single_run_strategy():
    strategies = [build_strategy(tiny_config("vae", seed=s), 2) for s in range(3)]
    stack = stack_strategies(strategies)
    shapes = {k: v.shape for k, v in strategies[0].state_dict().items()}
    state = stack.state_dict()
    for k, s in enumerate(strategies):
        member = member_state(state, k, shapes)
        assert member.keys() == s.state_dict().keys()
        for key, value in s.state_dict().items():
            assert torch.equal(member[key], value), key
    rebuilt = stacked_state([s.state_dict() for s in strategies], state)
    assert all(torch.equal(rebuilt[key], state[key]) for key in state)


def test_a_module_without_stacked_form_is_refused():
    strategy = build_strategy(tiny_config("ali"), 2)
    strategy.decoder = nn.Sequential(nn.Conv1d(1, 1, 1))
    with pytest.raises(NotStackable, match="Conv1d"):
        stack_strategies([strategy, strategy])


@pytest.mark.parametrize("method", ["ali", "vae"])
def test_stacked_members_match_their_single_runs(tmp_path, method):
    """Same seeds both ways: weights agree to float tolerance, metrics to 4 digits."""
    configs = [tiny_config(method, seed=s, steps=30) for s in (0, 1, 2)]
    single = run_group(configs, [tmp_path / f"single{c.seed}" for c in configs])
    stack = run_group([stacked(c) for c in configs], [tmp_path / f"stacked{c.seed}" for c in configs])
    for c, a, b in zip(configs, single, stack):
        wa, wb = model(tmp_path / f"single{c.seed}"), model(tmp_path / f"stacked{c.seed}")
        assert max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa) < 1e-4
        va, vb = values(a), values(b)
        for metric in ("recon_mse", "prior_mmd", "latent_recovery_mse", "modes_responsibility"):
            assert vb[metric] == pytest.approx(va[metric], rel=1e-4, abs=1e-5), metric


def test_a_learning_rate_sweep_trains_as_one_stack_and_matches_single_runs(tmp_path):
    """Members with different learning rates share a stack (per-member Adam step sizes); each
    matches its single run, and its checkpoint carries its own learning rate for a resume."""
    lrs = (1e-3, 3e-4, 3e-3)
    configs = [tiny_config("ali", seed=s, steps=30, lr=lr) for s, lr in zip((0, 1, 2), lrs)]
    assert len(stack_groups([stacked(c) for c in configs])) == 1
    single = run_group(configs, [tmp_path / f"single{c.seed}" for c in configs])
    stack = run_group([stacked(c) for c in configs], [tmp_path / f"stacked{c.seed}" for c in configs])
    for c, lr, a, b in zip(configs, lrs, single, stack):
        wa, wb = model(tmp_path / f"single{c.seed}"), model(tmp_path / f"stacked{c.seed}")
        assert max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa) < 1e-4
        va, vb = values(a), values(b)
        for metric in ("recon_mse", "prior_mmd", "latent_recovery_mse"):
            assert vb[metric] == pytest.approx(va[metric], rel=1e-4, abs=1e-5), metric
        env = json.loads((tmp_path / f"stacked{c.seed}" / "env.json").read_text())
        assert env["stacks"][0]["lrs"] == list(lrs)
    # the learning rates made a difference: the runs are not three copies of one
    assert len({round(values(r)["recon_mse"], 6) for r in stack}) == 3


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("kernel", [{}, {"fused": True}, {"foreach": True}])
def test_member_adam_is_torch_adam_per_member(kernel, transposed):
    """Also with a gradient laid out transposed (torch's fused CPU Adam misreads one)."""
    torch.manual_seed(0)
    lrs = [1e-3, 1e-2]
    stacked_param = nn.Parameter(torch.randn(2, 3, 4))
    members = [nn.Parameter(stacked_param[k].detach().clone()) for k in range(2)]
    opt = MemberAdam([stacked_param], lrs, betas=(0.5, 0.999), kernel=kernel)
    refs = [torch.optim.Adam([m], lr=lr, betas=(0.5, 0.999), **kernel) for m, lr in zip(members, lrs)]
    for _ in range(5):
        grad = torch.randn(2, 4, 3).transpose(1, 2) if transposed else torch.randn(2, 3, 4)
        stacked_param.grad = grad
        opt.step()
        for k, (m, ref) in enumerate(zip(members, refs)):
            m.grad = grad[k].contiguous().clone()
            ref.step()
    for k, m in enumerate(members):
        assert torch.equal(stacked_param[k], m)
        member = member_optimizer_state(opt.state_dict(), k, [m.shape], lrs[k])
        assert member["param_groups"][0]["lr"] == lrs[k]
        torch.testing.assert_close(member["state"][0]["exp_avg_sq"], refs[k].state_dict()["state"][0]["exp_avg_sq"])


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_member_adam_takes_aligned_tensors_whole_and_steps_bit_for_bit_as_per_member(threads):
    """The fused CPU step (aligned tensors in one call per run of members at one rate) equals
    torch's Adam on each member's slice, bit for bit, on the paper's toy ALI parameters and a
    learning-rate sweep whose rates are not in runs of consecutive members."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        members = [build_strategy(RunConfig(method="ali", seed=s), 2) for s in range(5)]
        stack = stack_strategies(members)
        fast = [p.detach().clone().requires_grad_() for p in stack.parameters()]
        slow = [p.detach().clone().requires_grad_() for p in stack.parameters()]
        whole = MemberAdam.in_one_call(fast)
        # both kinds of tensor: all but the maxout and output biases and D's last weight go whole
        assert sum(whole) == 23 and len(whole) == 30
        lrs = [1e-3, 1e-3, 1e-3, 2e-3, 1e-3]  # runs of members: 0-2 and 4 at one rate, 3 at the other
        opt_fast = MemberAdam(fast, lrs, betas=(0.9, 0.999), kernel={"fused": True})
        opt_slow = MemberAdam(slow, lrs, betas=(0.9, 0.999), kernel={"fused": True}, merge_aligned=False)
        gen = torch.Generator().manual_seed(0)
        for _ in range(10):
            for a, b in zip(fast, slow):
                a.grad = torch.randn(a.shape, generator=gen)
                b.grad = a.grad.clone()
            opt_fast.step()
            opt_slow.step()
        assert all(torch.equal(a, b) for a, b in zip(fast, slow))
        fast_state, slow_state = opt_fast.state_dict()["state"], opt_slow.state_dict()["state"]
        assert all(torch.equal(fast_state[i][key], slow_state[i][key]) for i in fast_state for key in fast_state[i])
    finally:
        torch.set_num_threads(old)


def test_two_phase_strategies_share_the_stacked_gan_and_match_single_runs(tmp_path):
    """latent/posthoc: Adam's first steps on maxout pieces amplify rounding (a piece that starts
    to win gets a full lr-sized step), so weights drift apart more; metrics still agree closely."""
    for engine in ("single", "stacked"):
        configs = [tiny_config(m, seed=s, steps=30) for m in ("latent", "posthoc") for s in (0, 1)]
        if engine == "stacked":
            configs = [stacked(c) for c in configs]
        rows = run_group(configs[:2], [tmp_path / engine / f"latent{s}" for s in (0, 1)], tmp_path / engine / "shared")
        rows += run_group(configs[2:], [tmp_path / engine / f"posthoc{s}" for s in (0, 1)], tmp_path / engine / "shared")
        if engine == "single":
            reference = [values(r) for r in rows]
        else:
            for a, b in zip(reference, map(values, rows)):
                for metric in ("recon_mse", "prior_mmd", "modes_responsibility"):
                    assert b[metric] == pytest.approx(a[metric], rel=2e-2, abs=1e-3), metric
    # the stacked posthoc members reused the GAN their latent stack trained (their logs have no GAN
    # phase; a timing would say the same only on an idle machine)
    assert len(list((tmp_path / "stacked" / "shared").glob("gan-seed*.pt"))) == 2
    for s in (0, 1):
        assert '"phase": "gan"' in (tmp_path / "stacked" / f"latent{s}" / "metrics.jsonl").read_text()
        assert '"phase": "gan"' not in (tmp_path / "stacked" / f"posthoc{s}" / "metrics.jsonl").read_text()


@pytest.mark.parametrize("lrs", [(1e-3, 1e-3), (1e-3, 3e-3)], ids=["fused-adam", "member-lr-adam"])
def test_interrupted_stack_resumes_to_the_same_result(tmp_path, lrs):
    configs = [stacked(tiny_config("ali", seed=s, steps=30, lr=lr)) for s, lr in zip((0, 1), lrs)]
    run_group(configs, [tmp_path / f"full{c.seed}" for c in configs])

    def stop_at_step_20(phase, step, total, logs):
        if step == 20:
            raise KeyboardInterrupt

    dirs = [tmp_path / f"cut{c.seed}" for c in configs]
    with pytest.raises(KeyboardInterrupt):
        run_group(configs, dirs, progress=stop_at_step_20)
    assert torch.load(dirs[0] / "checkpoint.pt", weights_only=True)["step"] == 10  # progress comes first
    rows = run_group(configs, dirs)
    for c, r in zip(configs, rows):
        full, cut = model(tmp_path / f"full{c.seed}"), model(tmp_path / f"cut{c.seed}")
        assert all(torch.equal(full[k], cut[k]) for k in full)
        log = (tmp_path / f"cut{c.seed}" / "metrics.jsonl").read_text()
        assert log == (tmp_path / f"full{c.seed}" / "metrics.jsonl").read_text()
        assert values(r)["diverged"] == 0.0


class PoisonedALI(ALI):
    """ALI whose seed-1 run gets a NaN loss from step ``after + 1`` on."""

    name = "poisoned_ali"
    after = 12

    def __init__(self, nets, options=None):
        super().__init__(nets, options)
        self.register_buffer("poison", torch.tensor(float("nan") if nets.seed == 1 else 0.0))
        self.register_buffer("calls", torch.tensor(0.0))

    def step(self, phase, x):
        out = super().step(phase, x)
        self.calls += 1
        bad = torch.where(self.calls > self.after, self.poison, torch.zeros_like(self.poison))
        out.losses["generator"] = out.losses["generator"] + bad.reshape(out.losses["generator"].shape)
        return out


def test_a_diverged_member_stops_alone_and_keeps_its_last_good_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setitem(STRATEGIES._items, "poisoned_ali", PoisonedALI)
    configs = [stacked(tiny_config("poisoned_ali", seed=s, steps=30)) for s in (0, 1, 2)]
    dirs = [tmp_path / f"seed{c.seed}" for c in configs]
    rows = run_group(configs, dirs)
    assert [values(r)["diverged"] for r in rows] == [0.0, 1.0, 0.0]
    assert "poisoned_ali seed 1: non-finite" in (dirs[1] / "diverged.txt").read_text()
    bad = torch.load(dirs[1] / "checkpoint.pt", weights_only=True)
    assert bad["step"] == 10
    assert all(torch.isfinite(v).all() for k, v in bad["model"].items() if v.is_floating_point() and k != "poison")
    assert [json.loads(line)["step"] for line in (dirs[1] / "metrics.jsonl").read_text().splitlines()] == [5, 10]
    # the survivors trained to the end, and are the runs they would have been without seed 1
    alone = run_group([configs[0], configs[2]], [tmp_path / "alone0", tmp_path / "alone2"])
    for r, a in zip((rows[0], rows[2]), alone):
        assert values(r)["recon_mse"] == pytest.approx(values(a)["recon_mse"], rel=1e-4)


def test_a_member_diverging_at_the_last_step_leaves_the_others_finished(tmp_path, monkeypatch):
    monkeypatch.setitem(STRATEGIES._items, "poisoned_ali", PoisonedALI)
    monkeypatch.setattr(PoisonedALI, "after", 27)  # NaN from step 28: caught at the final log step, 30
    configs = [stacked(tiny_config("poisoned_ali", seed=s, steps=30)) for s in (0, 1)]
    dirs = [tmp_path / f"seed{c.seed}" for c in configs]
    rows = run_group(configs, dirs)
    assert [values(r)["diverged"] for r in rows] == [0.0, 1.0]
    steps = [json.loads(line)["step"] for line in (dirs[0] / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15, 20, 25, 30]  # the survivor was not trained again
    assert torch.load(dirs[1] / "checkpoint.pt", weights_only=True)["step"] == 20


def test_non_stackable_strategies_fall_back_to_single_runs():
    class Plain(ALI):
        name = "plain"
        stackable = False

    config = tiny_config("ali")
    assert resolve_engine(config, "auto", 2).train.engine == "stacked"
    STRATEGIES._items["plain"] = Plain
    try:
        plain = tiny_config("plain")
        assert resolve_engine(plain, "auto", 2).train.engine == "single"
        with pytest.raises(Exception, match="cannot use the stacked engine"):
            resolve_engine(plain, "stacked", 2)
    finally:
        del STRATEGIES._items["plain"]
