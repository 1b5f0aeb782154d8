"""izoo tune: an equal run-step budget per method, histories kept, workers sharing one storage,
and bad input refused in one line before anything trains."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("optuna")

import inference_zoo as izoo  # noqa: E402
from inference_zoo.cli import main  # noqa: E402
from inference_zoo.core.errors import UserError  # noqa: E402
from inference_zoo.experiment.search import read_history  # noqa: E402
from inference_zoo.experiment.tune import TUNING_SEED  # noqa: E402

TINY = ["--data", "grid", "--preset", "quick", "--steps", "20", "--threads", "1", "--pruner", "none",
        "--set", "log_every=10", "--set", "checkpoint_every=20"]


def test_each_method_gets_the_same_run_step_budget_and_a_history(tmp_path, capsys):
    out = tmp_path / "t"
    assert main(["tune", "--methods", "vae,latent", "--budget", "80", "--batch", "2", "--out", str(out), *TINY]) == 0
    said = capsys.readouterr()
    err = said.err  # what each search will train, said before it starts
    assert "vae@grid: 80 run-steps of search (4 trials of 20 unless pruned): at most 80 in all" in err
    assert "latent@grid: 80 run-steps of search (2 trials of 40 unless pruned)" in err
    vae, latent = (json.loads((out / f"{m}@grid/best.json").read_text()) for m in ("vae", "latent"))
    # 20 steps x 1 phase -> 4 trials of vae; latent trains two phases -> 2 trials of 40 run-steps
    assert (vae["trials"], vae["run_steps_per_trial"]) == (4, 20)
    assert (latent["trials"], latent["run_steps_per_trial"]) == (2, 40)
    history = read_history(out / "vae@grid/trials.csv")
    assert [h["trial"] for h in history] == ["0", "1", "2", "3"] and {h["state"] for h in history} == {"COMPLETE"}
    assert {"lr", "beta1", "likelihood_std"} <= set(history[0])  # training settings and the VAE's own option
    assert all(h["run_steps"] == "20" and h["start"] <= h["end"] for h in history)
    assert vae["trials_per_hour"] > 0 and vae["wall_seconds"] > 0
    best = min(history, key=lambda h: -float(h["value"]))  # modes: more is better
    assert float(best["value"]) == vae["value"]
    config = json.loads((out / f"vae@grid/runs/grid/vae@trial={best['trial']}/seed{TUNING_SEED}/config.json").read_text())
    assert config["train"]["lr"] == vae["params"]["lr"] and config["options"]["likelihood_std"] == vae["params"]["likelihood_std"]
    assert "vae@grid: best modes_3sigma" in said.out
    # the history's figure, redrawn byte for byte from trials.csv and best.json
    drawn = (out / "vae@grid/history.png").read_bytes()
    (out / "vae@grid/history.png").unlink()
    assert main(["figures", str(out)]) == 0 and (out / "vae@grid/history.png").read_bytes() == drawn
    # a second call on the same storage finds the budget spent and trains nothing more
    assert main(["tune", "--methods", "vae", "--budget", "80", "--out", str(out), *TINY]) == 0
    assert len(read_history(out / "vae@grid/trials.csv")) == 4


def test_two_workers_share_one_study_and_never_train_a_trial_twice(tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    command = [sys.executable, "-m", "inference_zoo", "tune", "--methods", "vae", "--budget", "120", "--batch", "1",
               "--storage", storage, *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen(command + ["--out", str(tmp_path / f"w{i}")], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for i in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=600)
        assert w.returncode == 0, err
    trained = [p.parent.parent.name for i in range(2) for p in (tmp_path / f"w{i}/vae@grid/runs/grid").glob("*/seed*/results.csv")]
    assert len(trained) == len(set(trained)) == 6  # every trial once, across both workers
    import optuna

    study = optuna.load_study(study_name="vae@grid", storage=storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 6 and sum(bool(t.user_attrs.get("preset_recipe")) for t in complete) == 1


def test_workers_that_both_queued_the_presets_recipe_train_it_once_within_the_budget(tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    study = optuna.create_study(study_name="vae@grid", storage=storage, direction="maximize")
    for _ in range(2):  # two workers started together, each saw an empty study
        study.enqueue_trial({"lr": 1e-3}, user_attrs={"preset_recipe": True})
    assert main(["tune", "--methods", "vae", "--budget", "80", "--batch", "2", "--storage", storage,
                 "--out", str(tmp_path / "t"), *TINY]) == 0
    study = optuna.load_study(study_name="vae@grid", storage=storage)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 4  # 80 run-steps of 20-step trials: the dropped copy is not counted
    assert [t.number for t in complete if t.user_attrs.get("preset_recipe")] == [0]
    assert study.trials[1].state == optuna.trial.TrialState.FAIL and 1 in study.user_attrs["not_counted"]


def test_a_killed_workers_trial_is_queued_again_and_trained_by_the_next(tmp_path):
    import signal
    import socket
    import time

    import optuna

    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    command = [sys.executable, "-m", "inference_zoo", "tune", "--methods", "vae", "--budget", "1200", "--batch", "1",
               "--storage", storage, "--out", str(tmp_path / "t"), "--data", "grid", "--preset", "quick",
               "--steps", "400", "--threads", "1", "--pruner", "none", "--set", "checkpoint_every=100"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    running = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # killed once its running trial has a checkpoint
        time.sleep(0.2)
        try:
            study = optuna.load_study(study_name="vae@grid", storage=storage)
        except Exception:  # noqa: BLE001 - not created yet
            continue
        running = next((t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING and t.params), None)
        if running is not None and (tmp_path / f"t/vae@grid/runs/grid/vae@trial={running.number}/seed{TUNING_SEED}"
                                    / "checkpoint.pt").is_file():
            break
    assert running is not None, "the first worker never had a running trial"
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"trial {running.number}'s worker ({socket.gethostname()}:{first.pid}) is gone" in done.stderr
    study = optuna.load_study(study_name="vae@grid", storage=storage)
    killed = study.trials[running.number]
    assert killed.state == optuna.trial.TrialState.FAIL
    again = [t for t in study.trials if t.user_attrs.get("requeued_from") == running.number]
    assert len(again) == 1 and again[0].state == optuna.trial.TrialState.COMPLETE and again[0].params == running.params
    assert again[0].user_attrs.get("preset_recipe", False) == killed.user_attrs.get("preset_recipe", False)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 3  # the budget: 1200 run-steps of 400-step trials, the killed one not counted
    # the queued trial went on in the killed trial's runs, from their last checkpoint
    runs = tmp_path / "t/vae@grid/runs/grid"
    assert not (runs / f"vae@trial={again[0].number}").exists()
    stacks = json.loads((runs / f"vae@trial={running.number}/seed{TUNING_SEED}/env.json").read_text())["stacks"]
    assert stacks[0]["step"] == 0 and stacks[-1]["step"] >= 100
    assert f"trial {running.number}'s runs, from their checkpoints" in done.stderr


def test_a_dead_workers_last_batch_is_trained_again_within_the_budget(tmp_path):
    """The worker died with the whole budget asked: its trials are queued again and trained, so the
    search still holds the budget's trials (a queued trial counted before it is asked would end the
    search one batch short)."""
    import socket

    import optuna

    from inference_zoo.experiment.tune import default_space, suggest

    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    study = optuna.create_study(study_name="vae@grid", storage=storage, direction="maximize")
    study.set_user_attr("preset_enqueued", True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    for number in range(4):  # 80 run-steps of 20-step trials, all asked; the last two never finished
        trial = study.ask()
        suggest(trial, default_space("vae"))
        if number < 2:
            trial.set_user_attr("run_steps", 20)
            study.tell(trial, 1.0)
        else:
            trial.set_user_attr("worker", f"{socket.gethostname()}:{dead.stdout.strip()}")
    assert main(["tune", "--methods", "vae", "--budget", "80", "--batch", "2", "--storage", storage,
                 "--out", str(tmp_path / "t"), *TINY]) == 0
    study = optuna.load_study(study_name="vae@grid", storage=storage)
    again = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and "requeued_from" in t.user_attrs]
    assert sorted(t.user_attrs["requeued_from"] for t in again) == [2, 3]
    assert [study.trials[n].params for n in (2, 3)] == [t.params for t in sorted(again, key=lambda t: t.number)]
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 4


def test_a_search_goes_on_from_its_journal_alone_on_another_machine(tmp_path, monkeypatch, capsys):
    """The study is written as a journal after every batch; a copy of that one file, without the
    storage or any run, goes on where the search stopped: told trials kept, the trials that were
    running (their worker is not here) queued again, the budget the same."""
    import optuna

    from inference_zoo.experiment import search, tune as tuning

    calls = []

    def stopped_in_the_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the session ends while the second batch trains
        return real(*args, **kwargs)

    real = tuning.run_cells
    monkeypatch.setattr(tuning, "run_cells", stopped_in_the_second_batch)
    argv = ["tune", "--methods", "vae", "--budget", "80", "--batch", "2", *TINY]
    assert main([*argv, "--out", str(tmp_path / "here")]) == 130
    journal = tmp_path / "here/vae@grid/search.journal"
    first = optuna.load_study(study_name="vae@grid", storage=search.journal_storage(optuna, journal))
    assert [t.state.name for t in first.trials] == ["COMPLETE", "COMPLETE"]  # the second batch was never told
    monkeypatch.setattr(tuning, "run_cells", real)
    there = tmp_path / "there/vae@grid"
    there.mkdir(parents=True)
    (there / "search.journal").write_bytes(journal.read_bytes())
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "there")]) == 0
    assert "vae@grid: the search goes on from" in capsys.readouterr().err
    study = optuna.load_study(study_name="vae@grid", storage=f"sqlite:///{tmp_path / 'there/tuning.db'}")
    assert [(t.params, t.value) for t in study.trials[:2]] == [(t.params, t.value) for t in first.trials]
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 4  # 80 run-steps of 20-step trials
    assert len(read_history(there / "trials.csv")) == len(study.trials)
    again = optuna.load_study(study_name="vae@grid", storage=search.journal_storage(optuna, there / "search.journal"))
    assert [(t.number, t.state, t.value) for t in again.trials] == [(t.number, t.state, t.value) for t in study.trials]


def test_a_search_that_was_running_elsewhere_queues_its_running_trials_again(tmp_path, capsys):
    import optuna

    from inference_zoo.experiment.search import save_search
    from inference_zoo.experiment.tune import default_space, suggest

    storage = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    study = optuna.create_study(study_name="vae@grid", storage=storage, direction="maximize")
    study.set_user_attr("preset_enqueued", True)
    for number in range(4):  # two told, two running on a machine that is not this one
        trial = study.ask()
        suggest(trial, default_space("vae"))
        trial.set_user_attr("worker", "another-machine:1")
        if number < 2:
            trial.set_user_attr("run_steps", 20)
            study.tell(trial, 1.0)
    save_search(optuna, storage, "vae@grid", tmp_path / "t/vae@grid/search.journal")
    assert main(["tune", "--methods", "vae", "--budget", "80", "--batch", "2", "--out", str(tmp_path / "t"),
                 *TINY]) == 0
    assert "trial 2's worker (another-machine:1) is gone" in capsys.readouterr().err
    study = optuna.load_study(study_name="vae@grid", storage=f"sqlite:///{tmp_path / 't/tuning.db'}")
    again = sorted((t for t in study.trials if "requeued_from" in t.user_attrs), key=lambda t: t.number)
    assert [t.user_attrs["requeued_from"] for t in again] == [2, 3]
    assert [t.params for t in again] == [study.trials[2].params, study.trials[3].params]
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "FAIL", "FAIL", "COMPLETE", "COMPLETE"]


def test_a_damaged_search_journal_is_one_line(tmp_path, capsys):
    (tmp_path / "t/vae@grid").mkdir(parents=True)
    (tmp_path / "t/vae@grid/search.journal").write_text("not a journal\n")
    assert main(["tune", "--methods", "vae", "--budget", "80", "--out", str(tmp_path / "t"), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith("izoo: error: cannot read the search vae@grid from ") and err.count("\n") == 1, err
    assert (tmp_path / "t/vae@grid/search.journal").read_text() == "not a journal\n"


def test_the_python_api_takes_a_space_of_its_own_and_re_trains_the_best_on_fresh_seeds(tmp_path):
    space = {"vae": {"lr": ("choice", [1e-3]), "likelihood_std": ("log", 0.05, 0.2)}}
    (result,) = izoo.tune(["vae"], "grid", budget=40, preset="quick", steps=20, out=tmp_path / "t", log_every=10,
                          checkpoint_every=20, space=space, fresh_seeds=2)
    assert result.trials == 2 and result.best_params["lr"] == 1e-3 and 0.05 <= result.best_params["likelihood_std"] <= 0.2
    rows = izoo.read_results(result.fresh)
    assert set(rows["seed"]) == {0, 1} and set(rows["method"]) == {"vae@tuned", "vae@preset"}  # the preset's recipe: the control
    config = json.loads((result.fresh / "runs/grid/vae@tuned/seed1/config.json").read_text())
    assert config["options"]["likelihood_std"] == result.best_params["likelihood_std"]


@pytest.mark.parametrize("argv, message", [
    (["--budget", "10"], "buys no trial of vae"),
    (["--budget", "0"], "must be >= 1"),
    (["--budget", "100", "--objective", "modes"], "did you mean modes_3sigma?"),
    (["--budget", "100", "--objective", "modes_3sigma+hq_fractoin"], "did you mean hq_fraction?"),
    (["--budget", "100", "--objective", "modes_3sigma+reverse_kl"], "improve in the same direction"),
    (["--budget", "100", "--storage", "nosuch://x"], "cannot open the tuning storage"),
    (["--budget", "100", "--set", "lr_flor=0.1"], "did you mean lr_floor?"),
    (["--budget", "100", "--lr", "1e-4,1e-3"], "lr is given as a sweep"),
    (["--budget", "100", "-o", "likelihood_std=0.1,0.2"], "vae.likelihood_std is given as a sweep"),
    (["--budget", "100", "--lr", "1e-4"], "vae: lr is both fixed and searched"),
    (["--budget", "100", "-o", "likelihood_std=0.1"], "vae: likelihood_std is both fixed and searched"),
])
def test_bad_input_is_one_line_before_training(argv, message, tmp_path, capsys):
    assert main(["tune", "--methods", "vae", "--out", str(tmp_path / "t"), *TINY, *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("izoo: error: ") and err.count("\n") == 1 and message in err, err
    assert not list((tmp_path / "t").rglob("results.csv"))


def test_a_bad_search_space_is_refused():
    from inference_zoo.experiment.tune import check_space

    for space, message in [({"lr": ("log", 0, 1)}, "low > 0"), ({"lr": ("uniform", 0, 1)}, "kind one of"),
                           ({"lrr": ("log", 1e-4, 1e-3)}, "did you mean lr"), ({"beta1": ("choice", [])}, "non-empty")]:
        with pytest.raises(UserError, match=message):
            check_space(space, "vae")


def test_an_objective_sums_each_metrics_mean_over_the_seeds_and_a_diverged_trial_has_none():
    from inference_zoo.experiment.tune import _objective, direction_of

    rows = [{"method": "ali@trial=3", "metric": m, "value": v} for m, v in
            [("modes_3sigma", 8.0), ("modes_3sigma", 7.0), ("hq_fraction", 0.5), ("hq_fraction", 0.75),
             ("diverged", 0.0), ("diverged", 0.0)]]
    assert _objective(rows, "ali@trial=3", "modes_3sigma+hq_fraction") == 7.5 + 0.625
    assert _objective(rows, "ali@trial=3", "modes_3sigma") == 7.5
    assert math.isnan(_objective(rows, "ali@trial=3", "modes_3sigma+reverse_kl"))  # a metric missing
    assert direction_of("modes_3sigma+hq_fraction") == "maximize" and direction_of("reverse_kl") == "minimize"
    rows.append({"method": "ali@trial=3", "metric": "diverged", "value": 1.0})
    assert math.isnan(_objective(rows, "ali@trial=3", "modes_3sigma"))


def test_a_pruned_trial_stops_at_a_curve_point_and_counts_only_what_it_trained(tmp_path):
    """The median pruner on a continuous objective: trials behind the median at the first of two
    curve points stop there, record half a trial's run-steps, and leave budget for more trials."""
    out = tmp_path / "t"
    argv = [a for a in TINY if a not in ("--pruner", "none")]
    assert main(["tune", "--methods", "vae", "--budget", "200", "--batch", "1", "--objective", "recon_mse",
                 "--curve-points", "2", "--out", str(out), *argv]) == 0
    history = read_history(out / "vae@grid/trials.csv")
    pruned = [h for h in history if h["state"] == "PRUNED"]
    assert pruned and len(history) > 200 // 20  # stopped trials left room for more
    import optuna

    study = optuna.load_study(study_name="vae@grid", storage=f"sqlite:///{out / 'tuning.db'}")
    spent = {t.number: t.user_attrs["run_steps"] for t in study.trials}
    assert all(spent[int(h["trial"])] == 10 for h in pruned) and sum(spent.values()) <= 200
    assert all(spent[int(h["trial"])] == 20 for h in history if h["state"] == "COMPLETE")
    first = study.trials[0]  # the preset's own recipe is the first trial
    assert first.user_attrs.get("preset_recipe") and first.params["lr"] == 1e-3 and first.params["beta1"] == 0.5
    for h in pruned:
        folder = out / f"vae@grid/runs/grid/vae@trial={h['trial']}/seed{TUNING_SEED}"
        assert (folder / "stopped.txt").is_file() and not (folder / "samples.npz").exists()


def test_a_published_tuning_holds_histories_and_fresh_rows_redrawn_from_files_and_never_replaced_silently(tmp_path, capsys):
    out, pub = tmp_path / "t", tmp_path / "figures/tuned"
    argv = ["tune", "--methods", "vae", "--budget", "40", "--batch", "2", "--fresh-seeds", "2", "--out", str(out), *TINY,
            "--set", "eval_every=10"]
    assert main([*argv, "--publish", str(pub)]) == 0
    from inference_zoo.core.results import read_rows

    rows = read_rows(pub / "results.csv")
    assert {(r["method"], r["seed"]) for r in rows} == {(f"vae@{k}", s) for k in ("tuned", "preset") for s in (0, 1)}
    record = json.loads((pub / "tuning.json").read_text())["methods"]["vae@grid"]
    assert record["fresh_seeds"] == [0, 1] and record["best"]["method"] == "vae" and record["commands"]
    import optuna  # the whole Optuna study goes with the history: its trials, one for one

    from inference_zoo.experiment.search import journal_storage

    journal = journal_storage(optuna, pub / "tuning/vae@grid/search.journal")
    study = optuna.load_study(study_name="vae@grid", storage=journal)
    assert [str(t.number) for t in study.trials] == [h["trial"] for h in read_history(pub / "tuning/vae@grid/trials.csv")]
    table = (pub / "results_table.md").read_text()
    assert "| vae | preset |" in table and "| vae | tuned |" in table and "| vae@grid | 2 |" in table
    assert set(record["best"]["importances"]) <= set(record["best"]["params"])  # fANOVA's shares, where it can tell
    # the first fresh seed's samples of each recipe (what the paper's layout is drawn from), every cell's curve
    assert sorted(p.name for p in (pub / "samples").iterdir()) == ["grid__vae@preset__seed0.npz", "grid__vae@tuned__seed0.npz"]
    from inference_zoo.core.fileio import load_arrays
    from inference_zoo.core.results import read_curve

    run = out / "vae@grid/fresh/runs/grid/vae@tuned/seed0"
    n = json.loads((run / "config.json").read_text())["data"]["n_test"]
    published, trained = load_arrays(pub / "samples/grid__vae@tuned__seed0.npz"), load_arrays(run / "samples.npz")
    assert published.keys() == trained.keys() and all((published[k] == trained[k][:n]).all() for k in published)
    curves = read_curve(pub / "curves.csv")
    assert {(r["method"], r["seed"]) for r in curves} == {(r["method"], r["seed"]) for r in rows}
    def as_text(rows):  # NaN (reverse KL with no high-quality sample) equals NaN
        return [{**r, "value": repr(r["value"])} for r in rows]

    assert as_text(read_curve(run / "curve.csv")) == as_text(r for r in curves if (r["method"], r["seed"]) == ("vae@tuned", 0))
    drawn = {p: p.read_bytes() for p in [pub / "tuned-grid.png", pub / "tuning/vae@grid/history.png", pub / "results_table.md",
                                         pub / "comparison-grid-tuned.png", pub / "comparison-grid-preset.png",
                                         pub / "curves-grid.png"]}
    for p in drawn:
        p.unlink()
    capsys.readouterr()
    assert main(["figures", str(tmp_path / "figures")]) == 0  # every published folder, tuning ones included
    assert all(p.read_bytes() == data for p, data in drawn.items())
    before = (pub / "results.csv").read_bytes()
    assert main([*argv, "--publish", str(pub)]) == 0 and (pub / "results.csv").read_bytes() == before  # same again
    from inference_zoo.core.fileio import save_arrays

    changed = {**published, "x_generated": published["x_generated"] + 1.0}  # samples another run drew
    save_arrays(pub / "samples/grid__vae@tuned__seed0.npz", changed)
    capsys.readouterr()
    assert main([*argv, "--publish", str(pub)]) == 2 and "holds other samples" in capsys.readouterr().err
    assert (load_arrays(pub / "samples/grid__vae@tuned__seed0.npz")["x_generated"] == changed["x_generated"]).all()
    save_arrays(pub / "samples/grid__vae@tuned__seed0.npz", published)
    other = tmp_path / "t2"  # other fresh results for the same cells (another preset step count)
    again = ["tune", "--methods", "vae", "--budget", "42", "--batch", "2", "--fresh-seeds", "2", "--out", str(other),
             *TINY[:TINY.index("--steps")], "--steps", "21", *TINY[TINY.index("--steps") + 2:]]
    capsys.readouterr()
    assert main([*again, "--publish", str(pub)]) == 2
    assert "--overwrite" in capsys.readouterr().err and (pub / "results.csv").read_bytes() == before


def test_a_tuning_published_with_a_studys_figures_gets_them_and_every_fresh_seeds_samples(tmp_path, capsys):
    from inference_zoo.core.fileio import load_arrays
    from inference_zoo.experiment.tune import publish_tuning

    out, pub = tmp_path / "t", tmp_path / "figures/tuned_identity"
    argv = ["tune", "--methods", "vae", "--budget", "40", "--batch", "2", "--fresh-seeds", "2", "--out", str(out),
            "--objective", "recon_mse_mean_code", *TINY[:TINY.index("--data")], "--data", "identity",
            *TINY[TINY.index("--data") + 2:]]
    assert main(argv) == 0
    written = {p.name for p in publish_tuning([out], pub, figures_of="identity_toy")}
    # the identity toy's figures beside the tuning's own; its rule: 1,000 points of every fresh seed
    assert {"identity_maps.png", "identity_table.md", "tuned-identity.png", "results_table.md"} <= written
    assert sorted(p.name for p in (pub / "samples").iterdir()) == [
        f"identity__vae@{recipe}__seed{seed}.npz" for recipe in ("preset", "tuned") for seed in (0, 1)]
    assert all(len(load_arrays(p)["x_test"]) == 1000 for p in (pub / "samples").iterdir())
    assert "| vae@tuned | 2 |" in (pub / "identity_table.md").read_text()
    assert json.loads((pub / "tuning.json").read_text())["figures_of"] == "identity_toy"
    drawn = {p: p.read_bytes() for p in (pub / "identity_maps.png", pub / "identity_table.md")}
    for p in drawn:
        p.unlink()
    assert main(["figures", str(pub)]) == 0  # the record names the study: izoo figures redraws its figures too
    assert all(p.read_bytes() == data for p, data in drawn.items())


def test_each_presets_tuned_recipes_are_the_published_best_ones_found_at_that_presets_settings():
    import dataclasses

    from inference_zoo.core.presets import PRESETS
    from inference_zoo.studies.tunings import TUNINGS

    root = Path(__file__).resolve().parents[1]
    with_recipes = {name: p for name, p in PRESETS.items() if p.recipes or p.recipes_from}
    assert {"quick", "converged_10k"} <= set(with_recipes)
    for name, preset in with_recipes.items():
        published: dict[str, dict] = {}
        for folder in preset.recipes_from:  # newest first: an earlier folder's recipe wins
            design = TUNINGS.get(Path(folder).name)
            searched_at = PRESETS[design.preset]
            for best in sorted((root / folder / "tuning").glob("*/best.json")):
                record = json.loads(best.read_text())
                published.setdefault(best.parent.name, record["params"])
                # the recipe is laid over this preset: it must be the one the search trained at (where
                # the curve was read changes no training number: test_trainer.py)
                trained = dataclasses.replace(searched_at.train, **{**record["fixed_settings"], "eval_every": 0})
                assert dataclasses.replace(preset.train, eval_every=0) == trained, (name, best)
                assert preset.arch == searched_at.arch, (name, best)
        assert published and preset.recipes == published, name


def test_recipe_tuned_lays_each_methods_recipe_over_the_preset_and_explicit_settings_win():
    from inference_zoo.core.presets import PRESETS
    from inference_zoo.experiment.compare import plan_compare, tuned_recipes

    recipes = tuned_recipes("tuned", "quick", "ring", ["ali", "vae"])
    configs = plan_compare(["ali", "vae"], "ring", "quick", [0, 1], recipes=recipes)
    by_method = {c.method: c for c in configs}
    assert len(configs) == 4 and all(c.variant == "" for c in configs)
    for method in ("ali", "vae"):
        params = PRESETS["quick"].recipes[f"{method}@ring"]
        assert by_method[method].train.lr == params["lr"] and by_method[method].train.beta1 == params["beta1"]
        assert by_method[method].train.steps == PRESETS["quick"].train.steps  # the rest is the preset's
    assert by_method["vae"].options["likelihood_std"] == PRESETS["quick"].recipes["vae@ring"]["likelihood_std"]
    mine = plan_compare(["vae"], "ring", "quick", [0], {"vae": {"likelihood_std": 0.3}}, recipes=recipes, lr=1e-3)
    assert (mine[0].train.lr, mine[0].options["likelihood_std"]) == (1e-3, 0.3)
    assert tuned_recipes("preset", "quick", "ring", ["ali"]) is None


@pytest.mark.parametrize("argv, message", [
    (["--recipe", "best"], "--recipe 'best': valid: preset, tuned"),
    (["--recipe", "tuned", "--data", "ring:modes=12"], "no tuned recipe for ali on 'ring:modes=12' at preset quick"),
    (["--recipe", "tuned", "--preset", "study"], "no tuned recipe for ali on 'grid' at preset study"),
])
def test_a_recipe_that_is_not_published_is_one_line(argv, message, tmp_path, capsys):
    assert main(["compare", "--methods", "ali", "--out", str(tmp_path / "c"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("izoo: error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "c").exists()


def test_compare_at_tuned_recipes_says_each_methods_recipe_and_trains_it(tmp_path, capsys):
    from inference_zoo.core.presets import PRESETS

    out = tmp_path / "c"
    assert main(["compare", "--methods", "ali,vae", "--data", "ring", "--recipe", "tuned", "--steps", "20",
                 "--set", "log_every=10", "--set", "checkpoint_every=20", "--threads", "1", "--no-progress",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    ali = PRESETS["quick"].recipes["ali@ring"]
    # one line where ali's and the vae's tuned recipes share their training settings, else one each
    vae = PRESETS["quick"].recipes["vae@ring"]
    shared = all(vae.get(k) == v for k, v in ali.items())
    prefix = "recipe of every method" if shared else "  recipe"
    assert f"{prefix}: Adam {ali['lr']:.3g}, beta1 {ali['beta1']:g}" in printed
    config = json.loads((out / "runs/ring/vae/seed0/config.json").read_text())
    assert config["options"]["likelihood_std"] == PRESETS["quick"].recipes["vae@ring"]["likelihood_std"]


def test_confirmation_re_trains_the_best_trials_and_the_presets_recipe_on_more_tuning_seeds(tmp_path):
    out = tmp_path / "t"
    assert main(["tune", "--methods", "vae", "--budget", "80", "--batch", "2", "--confirm-seeds", "2",
                 "--confirm-top", "1", "--out", str(out), *TINY]) == 0
    best = json.loads((out / "vae@grid/best.json").read_text())
    confirmation = best["confirmation"]
    assert confirmation["seeds"] == [TUNING_SEED + 1, TUNING_SEED + 2]
    candidates = confirmation["candidates"]
    history = {int(h["trial"]): float(h["value"]) for h in read_history(out / "vae@grid/trials.csv")}
    top = max(history, key=lambda n: history[n])
    assert [c["trial"] for c in candidates] == list(dict.fromkeys([top, 0]))  # the best, then the preset's
    assert [c["preset_recipe"] for c in candidates][-1]
    for c in candidates:  # one search seed and two more: the mean over three
        assert c["search_value"] == history[c["trial"]]
        assert c["value"] == pytest.approx((c["search_value"] + 2 * c["confirm_value"]) / 3)
        assert len(list((out / f"vae@grid/confirm/runs/grid/vae@trial={c['trial']}").glob("seed*/results.csv"))) == 2
    chosen = max(candidates, key=lambda c: c["value"])
    assert (best["trial"], best["value"]) == (chosen["trial"], chosen["value"])
    assert confirmation["run_steps"] == len(candidates) * 2 * 20


def test_a_worker_whose_confirmation_runs_are_held_elsewhere_leaves_the_choice_to_that_worker(tmp_path, monkeypatch):
    from inference_zoo.experiment import tune as tuning

    real = tuning.run_cells

    def busy(configs, out, *args, **kwargs):  # the confirmation's second seed: held by another worker
        rows = real(configs, out, *args, **kwargs)
        return [r for r in rows if r["seed"] != TUNING_SEED + 2] if out.name == "confirm" else rows

    monkeypatch.setattr(tuning, "run_cells", busy)
    said: list[str] = []
    results = tuning.tune(["vae"], "grid", "quick", budget=40, batch=2, confirm_seeds=2, fresh_seeds=1,
                          out=tmp_path / "t", pruner="none", log=said.append, steps=20, log_every=10,
                          checkpoint_every=20)
    assert results == [] and any("another worker is re-training the candidates" in s for s in said)
    assert not (tmp_path / "t/vae@grid/best.json").exists() and not (tmp_path / "t/vae@grid/fresh").exists()


def test_an_objective_without_a_better_direction_is_refused(tmp_path, capsys):
    assert main(["tune", "--methods", "vae", "--budget", "100", "--objective", "corr_x_encoding",
                 "--out", str(tmp_path / "t"), *TINY]) == 2
    assert "improves in no one direction" in capsys.readouterr().err


def test_a_registered_tuning_runs_its_design_and_publishes_the_same_from_the_cli_and_the_api(tmp_path, monkeypatch, capsys):
    from inference_zoo.core.results import read_rows
    from inference_zoo.studies import TUNINGS, Tuning

    design = Tuning("tiny_tuning", "a tiny search", ("vae", "latent"), ("grid", "ring"), "quick", budget=40, batch=2,
                    pruner="none", fresh_seeds=2, settings={"steps": 20, "log_every": 10, "checkpoint_every": 20})
    monkeypatch.setitem(TUNINGS._items, design.name, design)
    out, pub = tmp_path / "runs", tmp_path / "figures/tiny_tuning"
    argv = ["study", "tiny_tuning", "--methods", "vae", "--datasets", "grid", "--threads", "1", "--out", str(out)]
    assert main([*argv, "--publish", str(pub)]) == 0
    best = json.loads((out / "grid/vae@grid/best.json").read_text())
    assert (best["budget_run_steps"], best["trials"], best["fixed_settings"]["steps"]) == (40, 2, 20)
    record = json.loads((pub / "tuning.json").read_text())["methods"]
    assert list(record) == ["vae@grid"] and record["vae@grid"]["fresh_seeds"] == [0, 1]
    rows = read_rows(pub / "results.csv")
    assert {(r["method"], r["seed"]) for r in rows} == {(f"vae@{k}", s) for k in ("tuned", "preset") for s in (0, 1)}
    published = (pub / "results.csv").read_bytes()
    # the Python API runs the same design: the budget is spent and the same rows are published again
    result = izoo.study("tiny_tuning", methods=["vae"], datasets=["grid"], out=out, publish=pub)
    assert (pub / "results.csv").read_bytes() == published and len(result.rows) == len(rows)
    capsys.readouterr()
    assert main(["study", "tiny_tuning", "--methods", "vae", "--seeds", "3", "--out", str(out)]) == 2
    assert "is a tuning" in capsys.readouterr().err
    assert main(["study", "tiny_tuning", "--datasets", "moon", "--out", str(out)]) == 2
    assert "has no dataset moon" in capsys.readouterr().err
    with pytest.raises(UserError, match="not lr="):
        izoo.study("tiny_tuning", out=out, lr=1e-3)


def test_a_resumed_run_goes_on_counting_its_curve_points_for_the_pruner(tmp_path):
    """A trial's runs gone on from a dead worker's checkpoint report their curve points under the
    numbers a run never stopped gives them, so the pruner compares them with other trials' same
    points (an evaluation after the checkpoint is dropped with the rest and evaluated again)."""
    from conftest import tiny_config
    from inference_zoo.experiment.runs import run_group

    class Recorder:
        def __init__(self):
            self.points = []

        def report(self, config, rows, point):
            self.points.append((rows[0]["step"], point))

        def stopped(self, config):
            return False

    config = tiny_config("ali", steps=40, eval_every=10, checkpoint_every=20)

    def stop_at_step_35(phase, step, total, logs):
        if step == 35:
            raise KeyboardInterrupt

    first, again, whole = Recorder(), Recorder(), Recorder()
    with pytest.raises(KeyboardInterrupt):
        run_group([config], [tmp_path / "cut"], watcher=first, progress=stop_at_step_35)
    run_group([config], [tmp_path / "cut"], watcher=again)
    run_group([config], [tmp_path / "whole"], watcher=whole)
    assert first.points == [(10, 1), (20, 2), (30, 3)]
    assert again.points == [(30, 3), (40, 4)] and whole.points == [(10, 1), (20, 2), (30, 3), (40, 4)]
