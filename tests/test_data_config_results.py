"""Datasets, config round trips, tidy-table aggregation and study idempotency."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from inference_zoo.core.config import RunConfig, diff_configs, method_label, refuse_changed_config, split_label
from inference_zoo.data import build_dataset, parse_data_spec
from inference_zoo.core.errors import UserError
from inference_zoo.core.results import aggregate
from inference_zoo.core.seeding import generator
from inference_zoo.experiment.cells import prepare_output, run_cells
from inference_zoo.core.results import collect_rows

from conftest import tiny_config


def test_default_grid_is_the_alis_papers_25_modes():
    ds = build_dataset(parse_data_spec("grid"))
    assert ds.n_modes == 25 and np.allclose(ds.stds, 0.05)
    assert sorted(set(ds.means[:, 0])) == [-4, -2, 0, 2, 4]
    assert sorted(set(ds.means[:, 1])) == [-4, -2, 0, 2, 4]


def test_ring_has_no_duplicated_mean():
    ds = build_dataset(parse_data_spec("ring"))
    assert ds.n_modes == 8 and np.allclose(ds.stds, 0.01)
    assert np.allclose(np.linalg.norm(ds.means, axis=1), 1.0)
    distances = np.linalg.norm(ds.means[:, None] - ds.means[None], axis=2)
    assert distances[~np.eye(8, dtype=bool)].min() == pytest.approx(2 * math.sin(math.pi / 8))


def test_options_change_the_mixture():
    ds = build_dataset(parse_data_spec("grid:modes=9,spacing=1.5,std=0.1"))
    assert ds.n_modes == 9 and sorted(set(ds.means[:, 0])) == [-1.5, 0, 1.5] and np.allclose(ds.stds, 0.1)
    assert parse_data_spec("grid:modes=9").label() == "grid:modes=9"
    assert parse_data_spec("grid").label() == "grid"


def test_samples_follow_their_labels_and_are_seeded():
    ds = build_dataset(parse_data_spec("grid"))
    x, y = ds.sample(5000, generator(0, "t"))
    assert x.shape == (5000, 2) and y.shape == (5000,)
    offsets = x.numpy() - ds.means[y.numpy()]
    assert np.abs(offsets.std() - 0.05) < 0.003
    assert torch.equal(ds.sample(10, generator(0, "t"))[0], ds.sample(10, generator(0, "t"))[0])
    assert not torch.equal(ds.sample(10, generator(0, "t"))[0], ds.sample(10, generator(1, "t"))[0])


def test_identity_toy_is_standard_normal():
    ds = build_dataset(parse_data_spec("identity"))
    x, y = ds.sample(20000, generator(0, "t"))
    assert ds.means is None and x.shape == (20000, 1) and (y == 0).all()
    assert abs(float(x.mean())) < 0.03 and abs(float(x.std()) - 1) < 0.03


def test_config_round_trips_through_json():
    config = tiny_config("posthoc", data="ring:modes=6")
    config.options = {"generator_loss": "minimax", "encoder_steps": 7}
    again = RunConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


def test_unknown_config_keys_are_rejected():
    d = tiny_config().to_dict()
    d["train"]["lrr"] = 1.0
    with pytest.raises(UserError, match="unknown keys lrr"):
        RunConfig.from_dict(d)


def test_diff_configs_names_nested_keys():
    a = tiny_config().to_dict()
    b = tiny_config(lr=0.5).to_dict()
    b["data"]["options"]["std"] = 1.0
    assert diff_configs(a, b) == ["data.options.std", "train.lr"]


def test_aggregate_mean_standard_error_and_n():
    rows = [{"dataset": "grid", "method": "ali", "metric": "m", "seed": s, "value": v} for s, v in enumerate([1.0, 2.0, 6.0])]
    rows.append({"dataset": "grid", "method": "ali", "metric": "m", "seed": 3, "value": float("nan")})
    rows.append({"dataset": "grid", "method": "vae", "metric": "m", "seed": 0, "value": 4.0})
    ali, vae = aggregate(rows)
    assert ali["mean"] == pytest.approx(3.0) and ali["n"] == 3
    assert ali["se"] == pytest.approx(math.sqrt(7.0 / 3))  # sample variance (4+1+9)/2 = 7, over n = 3
    assert vae["n"] == 1 and math.isnan(vae["se"])


def test_interrupted_study_finishes_only_the_remaining_cells(tmp_path):
    configs = [tiny_config(m, seed=s, data="ring") for m in ("vae", "bigan") for s in (0, 1)]
    calls = []

    def stop_at_third_cell(cells):
        calls.extend((c.method, c.seed) for c in cells)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return None

    prepare_output(tmp_path, configs, "new")
    with pytest.raises(KeyboardInterrupt):
        run_cells(configs, tmp_path, progress_for=stop_at_third_cell)
    assert len(collect_rows(tmp_path)) > 0
    calls.clear()
    prepare_output(tmp_path, configs, "resume")
    rows = run_cells(configs, tmp_path, progress_for=lambda cells: calls.extend((c.method, c.seed) for c in cells))
    assert calls == [("bigan", 0), ("bigan", 1)]  # the two finished cells were kept
    assert {(r["method"], r["seed"]) for r in rows} == {("vae", 0), ("vae", 1), ("bigan", 0), ("bigan", 1)}
    assert len(rows) == len(collect_rows(tmp_path))


def test_new_study_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(UserError, match="not empty"):
        prepare_output(tmp_path, [tiny_config()], "new")
    prepare_output(tmp_path, [tiny_config()], "overwrite")
    assert (tmp_path / "precious.txt").read_text() == "keep me"  # only the study's own files are replaced


def test_frozen_dataclass_presets_are_not_mutated_by_overrides():
    from inference_zoo.experiment.compare import plan_compare
    from inference_zoo.core.presets import PRESETS

    before = dataclasses.asdict(PRESETS["quick"].train)
    configs = plan_compare(["ali"], "grid", "quick", [0, 1], steps=7, lr=0.01, device="cpu")
    assert [c.train.steps for c in configs] == [7, 7] and configs[0].train.lr == 0.01
    assert dataclasses.asdict(PRESETS["quick"].train) == before


def test_a_cell_held_by_another_live_process_is_skipped_and_a_stale_lock_taken_over(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    from inference_zoo.core.results import cell_dir

    configs = [tiny_config("vae", seed=s, data="ring") for s in (0, 1)]
    busy = cell_dir(tmp_path, configs[0])
    busy.mkdir(parents=True)
    hold = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(busy / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        stale = cell_dir(tmp_path, configs[1])
        stale.mkdir(parents=True)
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        (stale / ".lock").write_text(f"{socket.gethostname()} {int(dead.stdout)}\n")
        statuses = []
        rows = run_cells(configs, tmp_path, on_cell=lambda i, n, c, status: statuses.append(status))
    finally:
        holder.kill()
        holder.wait()
    assert statuses == ["busy", "run"]
    assert {r["seed"] for r in rows} == {1}
    assert (busy / ".lock").exists() and not (stale / ".lock").exists()
    assert not os.path.exists(busy / "results.csv")


def test_labels_name_a_method_and_its_variant_and_split_back():
    assert method_label("ali") == "ali" and split_label("ali") == ("ali", {})
    assert method_label("ali", "lr=0.0003") == "ali@lr=0.0003"
    assert split_label("ali@lr=0.0003") == ("ali", {"lr": "0.0003"})
    assert tiny_config("vae").label == "vae"


def test_a_learning_rate_sweep_plans_one_variant_per_rate_for_every_method():
    from inference_zoo.experiment.compare import plan_compare
    from inference_zoo.experiment.cells import stack_groups
    from inference_zoo.core.results import cell_dir

    configs = plan_compare(["ali", "vae"], "grid", "quick", [0, 1], steps=7, lr=[1e-4, 3e-4, 1e-5], device="cpu")
    assert [(c.label, c.seed, c.train.lr) for c in configs[:4]] == [
        ("ali@lr=0.0001", 0, 1e-4), ("ali@lr=0.0001", 1, 1e-4), ("ali@lr=0.0003", 0, 3e-4), ("ali@lr=0.0003", 1, 3e-4)]
    assert configs[4].label == "ali@lr=1e-05" and float(split_label(configs[4].label)[1]["lr"]) == 1e-5
    assert len({cell_dir(Path("o"), c) for c in configs}) == 12  # every run its own folder
    assert cell_dir(Path("o"), configs[2]) == Path("o/runs/grid/ali@lr=0.0003/seed0")
    # each method's rates and seeds train as one stack (member Adam steps with its own rate)
    assert [len(g) for g in stack_groups(configs)] == [6, 6]
    # one rate is no sweep: the label stays the method's name
    assert {c.label for c in plan_compare(["ali"], "grid", "quick", [0], lr=[2e-4], device="cpu")} == {"ali"}


def test_an_option_sweep_plans_a_variant_per_value_for_the_methods_that_have_it():
    from inference_zoo.experiment.compare import plan_compare
    from inference_zoo.experiment.cells import stack_groups
    from inference_zoo.core.results import cell_dir

    options = {"ali": {}, "vae": {"likelihood_std": [0.05, 0.5]}}
    configs = plan_compare(["ali", "vae"], "grid", "quick", [0, 1], options, steps=7, lr=[1e-4, 1e-3], device="cpu")
    labels = list(dict.fromkeys(c.label for c in configs))
    assert labels == ["ali@lr=0.0001", "ali@lr=0.001",
                      "vae@likelihood_std=0.05,lr=0.0001", "vae@likelihood_std=0.05,lr=0.001",
                      "vae@likelihood_std=0.5,lr=0.0001", "vae@likelihood_std=0.5,lr=0.001"]
    assert {c.options["likelihood_std"] for c in configs if c.method == "vae"} == {0.05, 0.5}
    assert all(c.options["likelihood_std"] == float(split_label(c.label)[1]["likelihood_std"])
               for c in configs if c.method == "vae")
    assert len({cell_dir(Path("o"), c) for c in configs}) == len(configs)  # every run its own folder
    # a fixed likelihood std is a member option (Strategy.member_options): its values, rates and
    # seeds share one stack; a learned std trains other parameters, so a stack of its own
    assert sorted(len(g) for g in stack_groups(configs)) == [4, 8]
    learned = plan_compare(["vae"], "grid", "quick", [0, 1], {"vae": {"likelihood_std": [0.05, 0.0]}}, device="cpu")
    assert sorted(len(g) for g in stack_groups(learned)) == [2, 2]
    # a value the strategy refuses fails the whole plan, before anything trains
    with pytest.raises(UserError, match="likelihood_std must be >= 0"):
        plan_compare(["vae"], "grid", "quick", [0], {"vae": {"likelihood_std": [0.1, -1.0]}}, device="cpu")


def test_configs_saved_before_sweeps_existed_read_as_their_methods_only_setting(tmp_path):
    config = tiny_config("ali")
    d = config.to_dict()
    del d["variant"]
    assert RunConfig.from_dict(d).label == "ali"
    refuse_changed_config(d, config, tmp_path)  # a resume of an old run is not refused


def test_training_recipes_sweep_as_variants_and_share_one_stack():
    from inference_zoo.experiment.compare import plan_compare
    from inference_zoo.experiment.cells import stack_groups

    configs = plan_compare(["ali"], "grid", "quick", [0, 1], ema_decay=[0.0, 0.999], lr_schedule=["constant", "cosine"])
    labels = list(dict.fromkeys(c.label for c in configs))
    assert labels == ["ali@ema_decay=0.0,lr_schedule=constant", "ali@ema_decay=0.0,lr_schedule=cosine",
                      "ali@ema_decay=0.999,lr_schedule=constant", "ali@ema_decay=0.999,lr_schedule=cosine"]
    assert {(c.train.ema_decay, c.train.lr_schedule) for c in configs} == {
        (0.0, "constant"), (0.0, "cosine"), (0.999, "constant"), (0.999, "cosine")}
    # a stack's members hold their own rate, betas, schedule and average (engine MEMBER_SETTINGS)
    assert [sorted(g) for g in stack_groups(configs)] == [list(range(len(configs)))]
    # one value sets the recipe without naming a variant; an lr sweep keeps its labels
    assert plan_compare(["ali"], "grid", "quick", [0], ema_decay=[0.99])[0].label == "ali"
    assert [c.label for c in plan_compare(["ali"], "grid", "quick", [0], lr=[1e-3, 3e-4])] == ["ali@lr=0.001",
                                                                                              "ali@lr=0.0003"]
    # Adam's beta1 sweeps likewise, in the same stack as a learning-rate sweep
    configs = plan_compare(["ali"], "grid", "quick", [0, 1], beta1=[0.5, 0.8], lr=[1e-4, 2e-4])
    assert list(dict.fromkeys(c.label for c in configs)) == [
        "ali@beta1=0.5,lr=0.0001", "ali@beta1=0.5,lr=0.0002", "ali@beta1=0.8,lr=0.0001", "ali@beta1=0.8,lr=0.0002"]
    assert sorted({c.train.beta1 for c in configs}) == [0.5, 0.8]
    assert [sorted(g) for g in stack_groups(configs)] == [list(range(8))]
    assert plan_compare(["ali"], "grid", "quick", [0], beta1=[0.8])[0].train.beta1 == 0.8
