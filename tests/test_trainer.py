"""The trainer: exact resume, refusal of a changed config, divergence, safe checkpoints."""
from __future__ import annotations

import json
import math
import pickle

import pytest
import torch

from inference_zoo.core.errors import UserError
from inference_zoo.core.fileio import load_torch
from inference_zoo.experiment.runs import run_one
from inference_zoo.engine.train import Diverged, Trainer

from conftest import stopped_after_updates, tiny_config


class Interrupt(Exception):
    pass


def interrupt_at(phase_name: str, step: int):
    def progress(phase, done, total, logs):
        if phase == phase_name and done == step:
            raise Interrupt

    return progress


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.mark.parametrize("method,phase", [("ali", "ali"), ("vae", "vae"), ("posthoc", "gan"), ("posthoc", "posthoc")])
def test_interrupted_run_resumes_to_the_same_weights(method, phase, tmp_path):
    config = tiny_config(method, steps=20)
    reference = Trainer(config, tmp_path / "reference")
    reference.run()

    with pytest.raises(Interrupt):
        Trainer(config, tmp_path / "run", progress=interrupt_at(phase, 15)).run()
    checkpoint = load_torch(tmp_path / "run" / "checkpoint.pt")
    assert checkpoint["step"] == 10  # the last checkpoint before the interruption
    resumed = Trainer(config, tmp_path / "run")
    resumed.run()
    assert_same_weights(reference.strategy, resumed.strategy)
    ref_log = (tmp_path / "reference" / "metrics.jsonl").read_text()
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == ref_log  # each step logged once


def test_resume_with_a_changed_config_is_refused_naming_the_keys(tmp_path):
    with pytest.raises(Interrupt):
        Trainer(tiny_config("ali"), tmp_path, progress=interrupt_at("ali", 15)).run()
    changed = tiny_config("ali", lr=5e-4, batch_size=16)
    with pytest.raises(UserError, match=r"train\.batch_size, train\.lr"):
        Trainer(changed, tmp_path).run()


def test_run_folder_records_config_and_environment(tmp_path):
    run_one(tiny_config("vae"), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["method"] == "vae" and config["seed"] == 0 and config["train"]["steps"] == 20
    env = json.loads((tmp_path / "env.json").read_text())
    assert {"torch", "python", "numpy", "device", "git_commit"} <= set(env)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [5, 10, 15, 20] and "loss_elbo" in lines[0]


def test_same_seed_gives_identical_results(tmp_path):
    a = run_one(tiny_config("ali"), tmp_path / "a")
    b = run_one(tiny_config("ali"), tmp_path / "b")
    strip = lambda rows: {r["metric"]: r["value"] for r in rows if not r["metric"].endswith("_seconds")}  # noqa: E731
    assert strip(a) == strip(b)
    c = run_one(tiny_config("ali", seed=1), tmp_path / "c")
    assert strip(a) != strip(c)


def test_finished_run_is_not_trained_again(tmp_path):
    rows = run_one(tiny_config("vae"), tmp_path)
    stamp = (tmp_path / "results.csv").stat().st_mtime_ns
    again = run_one(tiny_config("vae"), tmp_path)
    assert (tmp_path / "results.csv").stat().st_mtime_ns == stamp
    assert [r["metric"] for r in again] == [r["metric"] for r in rows]


def test_nan_loss_marks_the_run_diverged_and_keeps_the_last_good_checkpoint(tmp_path):
    config = tiny_config("ali", steps=20)
    trainer = Trainer(config, tmp_path)
    original = trainer.strategy.step

    def poisoned(phase, x):
        out = original(phase, x)
        if poisoned.calls >= 12:
            out.losses["generator"] = out.losses["generator"] * float("nan")
        poisoned.calls += 1
        return out

    poisoned.calls = 0
    trainer.strategy.step = poisoned
    with pytest.raises(Diverged, match=r"phase 'ali' by step 15"):
        trainer.run()
    checkpoint = load_torch(tmp_path / "checkpoint.pt")
    assert checkpoint["step"] == 10
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values() if v.is_floating_point())


def test_diverged_run_is_reported_as_a_result(tmp_path, monkeypatch):
    def boom(self):
        raise Diverged("ali seed 0: non-finite loss_generator in phase 'ali' by step 5")

    monkeypatch.setattr(Trainer, "run", boom)
    rows = run_one(tiny_config("ali"), tmp_path)
    assert rows == [{"study": "compare", "dataset": "grid", "method": "ali", "seed": 0, "metric": "diverged", "value": 1.0}]
    assert "step 5" in (tmp_path / "diverged.txt").read_text()


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoint_with_code_in_it_is_refused(tmp_path, capsys):
    path = tmp_path / "checkpoint.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(UserError, match=r"refused to load .* carries code \(it references .*print\)"):
        load_torch(path)
    with open(path, "wb") as f:  # a plain pickle (not torch.save) carrying code
        pickle.dump({"x": Evil()}, f)
    with pytest.raises(UserError, match="cannot load checkpoint"):
        load_torch(path)
    assert "pwned" not in capsys.readouterr().out  # the code never ran


def test_truncated_checkpoint_gives_a_clear_error(tmp_path):
    Trainer(tiny_config("vae"), tmp_path).run()
    data = (tmp_path / "checkpoint.pt").read_bytes()
    (tmp_path / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="cannot load checkpoint"):
        Trainer(tiny_config("vae"), tmp_path).run()


def test_loss_values_are_logged_as_finite_numbers(tmp_path):
    Trainer(tiny_config("posthoc"), tmp_path).run()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in records] == ["gan"] * 4 + ["posthoc"] * 4
    assert all(math.isfinite(v) for r in records for k, v in r.items() if k.startswith("loss_"))


def test_non_finite_outputs_at_evaluation_count_as_divergence(tmp_path, monkeypatch):
    from inference_zoo.strategies.vae import VAE

    monkeypatch.setattr(VAE, "decode", lambda self, z: torch.full((z.shape[0], 2), float("inf")))
    rows = run_one(tiny_config("vae"), tmp_path)
    assert [(r["metric"], r["value"]) for r in rows] == [("diverged", 1.0)]
    assert "x_reconstructed" in (tmp_path / "diverged.txt").read_text()


@pytest.mark.parametrize("engine", ["single", "stacked"])
def test_curve_points_change_no_training_number(tmp_path, engine):
    from inference_zoo.core.results import read_curve
    from inference_zoo.experiment.runs import run_group
    from inference_zoo.engine.stack.engine import resolve_engine

    def configs(eval_every):
        out = [tiny_config("latent", seed=s, steps=20, eval_every=eval_every) for s in (0, 1)]
        return [resolve_engine(c, engine, 2) for c in out]

    run_group(configs(0), [tmp_path / f"plain{s}" for s in (0, 1)], tmp_path / "plain-shared")
    run_group(configs(10), [tmp_path / f"curve{s}" for s in (0, 1)], tmp_path / "curve-shared")
    for s in (0, 1):
        a = torch.load(tmp_path / f"plain{s}/checkpoint.pt", weights_only=True)["model"]
        b = torch.load(tmp_path / f"curve{s}/checkpoint.pt", weights_only=True)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert (tmp_path / f"plain{s}/results.csv").read_text().split("train_seconds")[0] == \
            (tmp_path / f"curve{s}/results.csv").read_text().split("train_seconds")[0]
        rows = read_curve(tmp_path / f"curve{s}/curve.csv")
        assert sorted({(r["phase"], r["step"]) for r in rows}) == [("gan", 10), ("gan", 20), ("regress", 10), ("regress", 20)]
        final = {r["metric"]: r["value"] for r in rows if (r["phase"], r["step"]) == ("regress", 20)}
        results = {r.split(",")[4]: float(r.split(",")[5]) for r in (tmp_path / f"curve{s}/results.csv").read_text().splitlines()[1:]}
        assert final["recon_mse"] == results["recon_mse"] and final["modes_3sigma"] == results["modes_3sigma"]
        assert all(r["seconds"] > 0 for r in rows)


def test_learning_rate_schedules_decay_to_the_floor_at_each_phases_last_step():
    from inference_zoo.core.config import TrainConfig, lr_factor

    for schedule in ("linear", "cosine"):
        t = TrainConfig(lr_schedule=schedule, lr_floor=0.25)
        factors = [lr_factor(t, done, 11) for done in range(11)]
        assert factors[0] == 1.0 and factors[-1] == pytest.approx(0.25)
        assert all(a > b for a, b in zip(factors, factors[1:]))
    assert lr_factor(TrainConfig(lr_schedule="linear"), 5, 11) == pytest.approx(0.5)
    assert lr_factor(TrainConfig(lr_schedule="cosine"), 5, 11) == pytest.approx(0.5)
    assert lr_factor(TrainConfig(), 3, 11) == 1.0


def test_a_late_decay_keeps_the_full_rate_until_its_start_then_reaches_the_floor():
    import dataclasses

    from inference_zoo.core.config import TrainConfig, lr_factor

    t = TrainConfig(lr_schedule="linear", lr_floor=0.1, lr_decay_start=0.5)
    factors = [lr_factor(t, done, 20) for done in range(20)]
    assert factors[:10] == [1.0] * 10  # updates 0-9 at the full rate
    assert factors[10] == 1.0 and factors[-1] == pytest.approx(0.1)  # the decay from update 10 to the last
    assert factors[15] == pytest.approx(0.1 + 0.9 * (1 - 5 / 9))
    assert all(a > b for a, b in zip(factors[10:], factors[11:]))
    # decaying from the first step is the schedule without a start
    early = TrainConfig(lr_schedule="cosine", lr_floor=0.2)
    assert [lr_factor(early, d, 11) for d in range(11)] == [
        lr_factor(dataclasses.replace(early, lr_decay_start=0.0), d, 11) for d in range(11)]


def test_a_late_decaying_run_matches_the_constant_run_until_the_decay_starts(tmp_path):
    """So a long run with a late decay extends the constant run's curve and isolates the decay
    (checked on the stacked engine, which the converged studies use)."""
    from inference_zoo.core.results import read_curve
    from inference_zoo.engine.stack.engine import resolve_engine
    from inference_zoo.experiment.runs import run_group

    settings = {"late": dict(lr_schedule="linear", lr_decay_start=0.5), "constant": {}}
    curves = {}
    for name, schedule in settings.items():
        configs = [resolve_engine(tiny_config("ali", seed=s, steps=40, eval_every=20, log_every=10, **schedule),
                                  "stacked", 2) for s in (0, 1)]
        run_group(configs, [tmp_path / f"{name}{s}" for s in (0, 1)], tmp_path / "shared")
        curves[name] = [{(r["metric"], r["step"]): r["value"] for r in read_curve(tmp_path / f"{name}{s}/curve.csv")}
                        for s in (0, 1)]
    for late, constant in zip(curves["late"], curves["constant"]):
        assert any(step == 20 for _, step in late)
        assert {k: v for k, v in late.items() if k[1] == 20} == {k: v for k, v in constant.items() if k[1] == 20}
        assert {k: v for k, v in late.items() if k[1] == 40} != {k: v for k, v in constant.items() if k[1] == 40}


def test_a_scheduled_run_resumes_to_the_uninterrupted_weights(tmp_path):
    """The rate is a function of the step, so a resumed run steps at the same rates."""
    config = tiny_config("ali", steps=40, lr_schedule="linear", checkpoint_every=10)
    Trainer(config, tmp_path / "whole").run()
    short = tiny_config("ali", steps=40, lr_schedule="linear", checkpoint_every=10)
    import inference_zoo.engine.train as train_module

    with stopped_after_updates(train_module, 25):
        Trainer(short, tmp_path / "resumed").run()
    resumed = Trainer(short, tmp_path / "resumed")
    resumed.run()
    whole = torch.load(tmp_path / "whole/checkpoint.pt", weights_only=True)["model"]
    again = torch.load(tmp_path / "resumed/checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(whole[k], again[k]) for k in whole)


def test_a_learning_rate_schedule_gets_its_own_shared_gan(tmp_path):
    """latent/posthoc reuse a GAN trained with the same settings only: a schedule changes it."""
    from inference_zoo.experiment.runs import run_group

    shared = tmp_path / "shared"
    run_group([tiny_config("latent", steps=10)], [tmp_path / "constant"], shared)
    run_group([tiny_config("posthoc", steps=10, lr_schedule="cosine")], [tmp_path / "cosine"], shared)
    assert len(list(shared.glob("gan-seed0-*.pt"))) == 2


def test_the_converged_decay_preset_reproduces_the_published_late_decay_runs():
    """`--preset converged_decay` resolves to the configs of figures/ali_grid_late_decay's cells."""
    import json
    from pathlib import Path

    from inference_zoo.core.config import diff_configs, upgrade_config_dict
    from inference_zoo.experiment.study import STUDIES, plan_study

    published = json.loads((Path(__file__).parents[1] / "figures/ali_grid_late_decay/study.json").read_text())
    config = plan_study(STUDIES.get("mixture_converged"), [0], preset="converged_decay",
                           datasets=["grid"], methods=["ali"])[0]
    differing = diff_configs(upgrade_config_dict(published["example_config"]), config.to_dict())
    assert differing == [] and config.train.steps == 50_000 and config.train.lr_decay_start == 0.6


def test_the_converged_long_preset_reproduces_the_published_lr_sweep_at_its_best_rate():
    """`--preset converged_long` resolves to the configs of figures/ali_grid_lr_sweep's cells at
    lr 3e-4, but for the variant's name (a swept rate names its cells ali@lr=...)."""
    import json
    from pathlib import Path

    from inference_zoo.core.config import diff_configs, upgrade_config_dict
    from inference_zoo.experiment.study import STUDIES, plan_study

    published = json.loads((Path(__file__).parents[1] / "figures/ali_grid_lr_sweep/study.json").read_text())
    config = plan_study(STUDIES.get("mixture_converged"), [0], preset="converged_long",
                           datasets=["grid"], methods=["ali"])[0]
    swept = plan_study(STUDIES.get("mixture_converged"), [0], preset="converged_decay", datasets=["grid"],
                          methods=["ali"], lr=[2e-4, 3e-4])
    assert [c.variant for c in swept] == ["lr=0.0002", "lr=0.0003"]
    # the late-decay preset swept over the two rates resolves to the published configs ...
    assert diff_configs(upgrade_config_dict(published["example_config"]), swept[0].to_dict()) == []
    # ... and converged_long to its lr 3e-4 cells, named without a variant
    assert diff_configs(swept[1].to_dict(), config.to_dict()) == ["variant"]
    assert config.train.lr == 3e-4 and config.train.steps == 50_000 and config.train.lr_decay_start == 0.6


@pytest.mark.parametrize("engine", ["single", "stacked"])
def test_a_run_its_watcher_stops_at_a_curve_point_leaves_its_stack_mates_unchanged(tmp_path, engine):
    """A watcher (a tuner's pruner) stops seed 1 at its first curve point: seed 1 records the
    run-steps it trained and no metrics; seeds 0 and 2 end with the weights they get unwatched."""
    from inference_zoo.core.results import read_curve, read_rows
    from inference_zoo.experiment.runs import run_group
    from inference_zoo.engine.stack.engine import resolve_engine

    class StopSeedOne:
        def __init__(self):
            self.seen = []

        def report(self, config, rows, point):
            self.seen.append((config.seed, rows[0]["phase"], rows[0]["step"]))

        def stopped(self, config):
            return config.seed == 1

    configs = [resolve_engine(tiny_config("latent", seed=s, steps=20, eval_every=10), engine, 3) for s in (0, 1, 2)]
    run_group(configs, [tmp_path / f"plain{s}" for s in range(3)], tmp_path / "plain-shared")
    watcher = StopSeedOne()
    rows = run_group(configs, [tmp_path / f"watched{s}" for s in range(3)], tmp_path / "watched-shared", watcher=watcher)
    assert {(r["metric"], r["value"]) for r in rows[1]} == {("diverged", 0.0), ("stopped", 1.0), ("trained_run_steps", 10.0)}
    assert "stopped at step 10 of phase 'gan'" in (tmp_path / "watched1/stopped.txt").read_text()
    assert sorted({(r["phase"], r["step"]) for r in read_curve(tmp_path / "watched1/curve.csv")}) == [("gan", 10)]
    assert (1, "gan", 10) in watcher.seen and (1, "gan", 20) not in watcher.seen
    for s in (0, 2):
        a = torch.load(tmp_path / f"plain{s}/checkpoint.pt", weights_only=True)["model"]
        b = torch.load(tmp_path / f"watched{s}/checkpoint.pt", weights_only=True)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert [r for r in read_rows(tmp_path / f"plain{s}/results.csv") if "seconds" not in r["metric"]] == \
            [r for r in rows[s] if "seconds" not in r["metric"]]
