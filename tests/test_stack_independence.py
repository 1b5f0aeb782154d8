"""A stacked member's numbers do not depend on its stack-mates: seed s trained in a stack of K
runs equals seed s trained alone, bit for bit (same machine, same thread count).

Sizes are chosen so that members' values do not fall on vector-register boundaries (batch 21,
odd widths): that is where elementwise kernels take another code path for a stack of one than
for a stack of many.
"""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from conftest import tiny_config
from inference_zoo.nets import ArchConfig
from inference_zoo.experiment.runs import run_group
from inference_zoo.engine.stack.engine import resolve_engine

ODD_ARCH = ArchConfig(encoder_hidden=(13, 11), decoder_hidden=(13, 11), discriminator_hidden=(9, 7), maxout_pieces=3)

CASES = {
    "ali": {},
    "alice": {},
    "alice-adversarial": {"cycle": "adversarial"},
    "bigan": {},
    "hali": {},
    "latent": {},
    "posthoc": {},
    "vae": {},
    "vae-learned-std": {"likelihood_std": 0.0},
}


def _config(case: str, seed: int, lr: float = 1e-3):
    method = case.split("-")[0]
    config = tiny_config(method, seed=seed, steps=40, batch_size=21, lr=lr)
    config = dataclasses.replace(config, arch=ODD_ARCH, options=CASES[case])
    return resolve_engine(config, "stacked", 2)


def _weights(run_dir):
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]


def _assert_same_run(alone, member):
    wa, wb = _weights(alone), _weights(member)
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"weights differ: {different}"
    assert (alone / "metrics.jsonl").read_bytes() == (member / "metrics.jsonl").read_bytes()
    timings = ("_seconds,",)  # wall-clock rows differ between any two runs
    ra = [r for r in (alone / "results.csv").read_text().splitlines() if not any(t in r for t in timings)]
    rb = [r for r in (member / "results.csv").read_text().splitlines() if not any(t in r for t in timings)]
    assert ra == rb and len(ra) > 5


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_member_equals_its_seed_trained_alone(tmp_path, case):
    seeds = (0, 1, 2)
    run_group([_config(case, s) for s in seeds], [tmp_path / f"stack/seed{s}" for s in seeds],
              shared_dir=tmp_path / "stack/shared")
    for s in (1, 2):
        run_group([_config(case, s)], [tmp_path / f"alone/seed{s}"], shared_dir=tmp_path / "alone/shared")
        _assert_same_run(tmp_path / f"alone/seed{s}", tmp_path / f"stack/seed{s}")
        env = json.loads((tmp_path / f"stack/seed{s}/env.json").read_text())
        assert env["stacks"][0]["seeds"] == list(seeds)


def test_a_learning_rate_sweep_member_equals_its_rate_trained_alone(tmp_path):
    rates = (1e-3, 3e-3, 2e-4)
    run_group([_config("ali", 1, lr) for lr in rates], [tmp_path / f"stack/{lr}" for lr in rates])
    run_group([_config("ali", 1, 3e-3)], [tmp_path / "alone"])
    _assert_same_run(tmp_path / "alone", tmp_path / "stack/0.003")


def test_a_member_equals_its_seed_trained_alone_with_two_threads(tmp_path):
    torch.set_num_threads(2)  # the conftest fixture restores the count
    test_a_member_equals_its_seed_trained_alone(tmp_path, "ali")


def test_a_learning_rate_schedule_keeps_members_independent_and_does_decay(tmp_path):
    def config(seed, schedule):
        c = _config("ali", seed)
        return dataclasses.replace(c, train=dataclasses.replace(c.train, lr_schedule=schedule, lr_floor=0.1))

    run_group([config(s, "cosine") for s in (0, 1, 2)], [tmp_path / f"stack/seed{s}" for s in (0, 1, 2)])
    run_group([config(1, "cosine")], [tmp_path / "alone/seed1"])
    _assert_same_run(tmp_path / "alone/seed1", tmp_path / "stack/seed1")
    run_group([config(1, "constant")], [tmp_path / "constant/seed1"])
    decayed, constant = _weights(tmp_path / "alone/seed1"), _weights(tmp_path / "constant/seed1")
    assert not all(torch.equal(decayed[k], constant[k]) for k in decayed)


ISSUE_ARCH = ArchConfig(encoder_hidden=(13, 11), decoder_hidden=(130, 7), discriminator_hidden=(9, 7), maxout_pieces=3)


@pytest.mark.parametrize("data", ["grid", "identity"])
@pytest.mark.parametrize("threads", [1, 2])
def test_odd_sizes_and_a_one_feature_toy_keep_members_independent(tmp_path, data, threads):
    """-a decoder_hidden=130x7 -a encoder_hidden=13x11 -a discriminator_hidden=9x7 --batch-size 21,
    a stack of 3 against seed 1 alone, on the grid and on the 1-D identity toy (one-feature inputs:
    the shapes for which a batched matmul gave a member other bits in a stack of 3 than alone)."""
    torch.set_num_threads(threads)  # the conftest fixture restores the count

    def config(seed):
        c = tiny_config("ali", data=data, seed=seed, steps=40, batch_size=21)
        return resolve_engine(dataclasses.replace(c, arch=ISSUE_ARCH), "stacked", 2 if data == "grid" else 1)

    run_group([config(s) for s in (0, 1, 2)], [tmp_path / f"stack/seed{s}" for s in (0, 1, 2)])
    run_group([config(1)], [tmp_path / "alone/seed1"])
    _assert_same_run(tmp_path / "alone/seed1", tmp_path / "stack/seed1")


#: members that differ in every MEMBER_SETTING: Adam's rate and betas, the schedule, its start and
#: floor, and the weight average (0: none), two of them alike but for the average
MEMBERS = (
    {"lr": 1e-3, "beta1": 0.5},
    {"lr": 3e-3, "beta1": 0.2, "lr_schedule": "linear", "lr_decay_start": 0.5, "ema_decay": 0.9},
    {"lr": 1e-3, "beta1": 0.8, "beta2": 0.99, "lr_schedule": "cosine", "lr_floor": 0.1, "ema_decay": 0.99},
    {"lr": 1e-3, "beta1": 0.5, "ema_decay": 0.9},
)


def _member(case: str, settings: dict, steps: int = 40):
    c = _config(case, 1)
    return dataclasses.replace(c, train=dataclasses.replace(c.train, steps=steps, **settings))


@pytest.mark.parametrize("case", ["ali", "latent", "vae"])
def test_members_that_differ_in_every_member_setting_share_a_stack_and_each_equals_its_run_alone(tmp_path, case):
    from inference_zoo.engine.stack.engine import MEMBER_SETTINGS, stack_key

    assert {name for m in MEMBERS for name in m} == set(MEMBER_SETTINGS)
    configs = [_member(case, m) for m in MEMBERS]
    assert len({stack_key(c) for c in configs}) == 1
    dirs = [tmp_path / f"stack/m{i}" for i in range(len(MEMBERS))]
    run_group(configs, dirs, shared_dir=tmp_path / "stack/shared")
    for i, config in enumerate(configs):
        assert len(json.loads((dirs[i] / "env.json").read_text())["stacks"][0]["seeds"]) == len(MEMBERS)
        run_group([config], [tmp_path / f"alone/m{i}"], shared_dir=tmp_path / f"alone/shared{i}")
        _assert_same_run(tmp_path / f"alone/m{i}", dirs[i])
        has_average = "ema" in torch.load(dirs[i] / "checkpoint.pt", weights_only=True)
        assert has_average == ("ema" in torch.load(tmp_path / f"alone/m{i}/checkpoint.pt", weights_only=True))
    # the settings act: the members alike but for the average differ in what is evaluated
    assert (dirs[0] / "results.csv").read_text() != (dirs[3] / "results.csv").read_text()


def test_a_stack_of_members_with_their_own_settings_resumes_to_each_ones_uninterrupted_run(tmp_path):
    configs = [_member("ali", m, steps=30) for m in MEMBERS]
    run_group(configs, [tmp_path / f"full/m{i}" for i in range(len(MEMBERS))])

    def stop_at_step_20(phase, step, total, logs):
        if step == 20:
            raise KeyboardInterrupt

    dirs = [tmp_path / f"cut/m{i}" for i in range(len(MEMBERS))]
    with pytest.raises(KeyboardInterrupt):
        run_group(configs, dirs, progress=stop_at_step_20)
    run_group(configs, dirs)
    for i in range(len(MEMBERS)):
        _assert_same_run(tmp_path / f"full/m{i}", dirs[i])


#: strategy options each member of a stack may hold its own value of (``Strategy.member_options``),
#: beside a training setting of its own
MEMBER_OPTIONS = {
    "alice": [{"cycle_weight": 1.0}, {"cycle_weight": 0.3}, {"cycle_weight": 7.5, "lr": 3e-3}],
    "alice-adversarial": [{"cycle": "adversarial", "cycle_weight": w} for w in (1.0, 0.3, 7.5)],
    "vae": [{"likelihood_std": 0.05}, {"likelihood_std": 0.2}, {"likelihood_std": 0.013, "lr": 3e-3}],
}


@pytest.mark.parametrize("case", sorted(MEMBER_OPTIONS))
def test_members_that_differ_in_the_strategys_own_options_share_a_stack_and_each_equals_its_run_alone(tmp_path, case):
    from inference_zoo.engine.stack.engine import stack_key

    configs = []
    for values in MEMBER_OPTIONS[case]:
        c = _config(case, 1, values.get("lr", 1e-3))
        configs.append(dataclasses.replace(c, options={k: v for k, v in values.items() if k != "lr"}))
    assert len({stack_key(c) for c in configs}) == 1
    dirs = [tmp_path / f"stack/m{i}" for i in range(len(configs))]
    run_group(configs, dirs, shared_dir=tmp_path / "stack/shared")
    for i, config in enumerate(configs):
        assert len(json.loads((dirs[i] / "env.json").read_text())["stacks"][0]["seeds"]) == len(configs)
        assert json.loads((dirs[i] / "config.json").read_text())["options"] == config.options
        run_group([config], [tmp_path / f"alone/m{i}"], shared_dir=tmp_path / f"alone/shared{i}")
        _assert_same_run(tmp_path / f"alone/m{i}", dirs[i])
    # the options act: the first two members differ in nothing else
    assert (dirs[0] / "metrics.jsonl").read_text() != (dirs[1] / "metrics.jsonl").read_text()


def test_a_fixed_and_a_learned_likelihood_std_train_in_separate_stacks():
    from inference_zoo.engine.stack.engine import stack_key

    fixed, other_fixed, default, learned = (dataclasses.replace(_config("vae", 1), options=o) for o in (
        {"likelihood_std": 0.05}, {"likelihood_std": 0.3}, {}, {"likelihood_std": 0.0}))
    assert stack_key(fixed) == stack_key(other_fixed) == stack_key(default) != stack_key(learned)


def test_a_runs_stack_note_names_the_runs_it_went_on_with(tmp_path):
    """Runs resumed at different steps train as stacks of their own; each one's env.json names
    the seeds of its own stack, from its own step."""
    configs = [_config("ali", s) for s in (0, 1)]

    def stop_at_step_25(phase, step, total, logs):
        if step == 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # seed 0 has a checkpoint at step 20, seed 1 none
        run_group(configs[:1], [tmp_path / "seed0"], progress=stop_at_step_25)
    run_group(configs, [tmp_path / "seed0", tmp_path / "seed1"])
    notes = [json.loads((tmp_path / f"seed{s}/env.json").read_text())["stacks"] for s in (0, 1)]
    assert notes[0][-1] == {"seeds": [0], "lrs": [1e-3], "phase": 0, "step": 20}
    assert notes[1] == [{"seeds": [1], "lrs": [1e-3], "phase": 0, "step": 0}]
