"""--mlflow URI: each run folder logged as an MLflow run (params, metrics with steps, artifacts),
read back with MLflow's own client from a file: store, offline; where a run is logged is no part
of its identity."""
from __future__ import annotations

import json
import sys

import pytest

from inference_zoo.cli import main
from inference_zoo.core.results import read_rows

TINY = ["--preset", "quick", "--steps", "20", "--threads", "1", "--set", "log_every=10", "--n-train", "300",
        "--device", "cpu"]


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A file: store's URI and a function giving MLflow's own client of it."""
    mlflow = pytest.importorskip("mlflow")
    # what izoo sets for a file: store it is told to use (MLflow 3 asks for the opt-in), set here so
    # the test's own client may read the store and the variables end with the test
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = f"file:{tmp_path / 'mlruns'}"
    return uri, lambda: mlflow.MlflowClient(uri)


def runs_of(client, out):
    """The runs of the experiment named by an output folder; it is the store's only one but MLflow's Default."""
    names = {e.name for e in client.search_experiments()} - {"Default"}
    assert names == {str(out.resolve())}
    return client.search_runs([client.get_experiment_by_name(str(out.resolve())).experiment_id])


def test_a_comparison_is_one_experiment_with_a_run_per_method_and_seed(tmp_path, store, capsys):
    uri, client_of = store
    out = tmp_path / "c"
    argv = ["compare", "--methods", "ali,vae", "--seeds", "2", "--out", str(out), "--no-progress", *TINY]
    assert main([*argv, "--mlflow", uri]) == 0
    client = client_of()
    runs = runs_of(client, out)
    assert sorted(r.info.run_name for r in runs) == [f"grid/{m}/seed{s}" for m in ("ali", "vae") for s in (0, 1)]
    for run in runs:
        folder = out / "runs" / run.info.run_name
        config = json.loads((folder / "config.json").read_text())
        assert run.info.status == "FINISHED" and run.data.tags["izoo.run_folder"] == str(folder.resolve())
        # the resolved config as params; the two seeds trained as one stack, each its own run
        params = run.data.params
        assert float(params["train.lr"]) == config["train"]["lr"] and params["seed"] == str(config["seed"])
        assert params["train.engine"] == "stacked" and params["method"] == config["method"]
        assert "train.mlflow" not in params and "mlflow" not in config["train"]  # the URI is saved nowhere
        # the training log as metrics with their steps, the results rows as final values
        log = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        name = next(k for k in log[0] if k not in ("phase", "step"))
        history = client.get_metric_history(run.info.run_id, f"train/{log[0]['phase']}/{name}")
        assert [(m.step, m.value) for m in history] == [(r["step"], pytest.approx(r[name])) for r in log]
        assert [m.step for m in history] == [10, 20]
        rows = {r["metric"]: r["value"] for r in read_rows(folder / "results.csv")}
        assert run.data.metrics["modes_3sigma"] == rows["modes_3sigma"] and run.data.metrics["diverged"] == 0
        # the folder's files as artifacts, its weights aside
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"results.csv", "config.json", "metrics.jsonl"} <= artifacts and "checkpoint.pt" not in artifacts
    # finished runs are left as they are by a resume with --mlflow, and resume without it
    assert main([*argv, "--resume", "--mlflow", uri]) == 0
    assert main([*argv, "--resume"]) == 0
    assert len(runs_of(client, out)) == 4
    capsys.readouterr()


def test_the_uri_is_no_part_of_a_run_and_a_run_trained_without_it_is_logged_on_resume(tmp_path, store):
    uri, client_of = store
    argv = ["compare", "--methods", "vae", "--eval-every", "10", "--no-progress", *TINY]
    assert main([*argv, "--out", str(tmp_path / "plain")]) == 0
    assert main([*argv, "--out", str(tmp_path / "logged"), "--mlflow", uri]) == 0
    config = "runs/grid/vae/seed0/config.json"
    assert (tmp_path / "plain" / config).read_bytes() == (tmp_path / "logged" / config).read_bytes()
    assert main([*argv, "--out", str(tmp_path / "logged"), "--resume"]) == 0  # the same runs without --mlflow
    # the run trained without --mlflow gets its MLflow run, with its log and curve, on a resume with it
    assert main([*argv, "--out", str(tmp_path / "plain"), "--resume", "--mlflow", uri]) == 0
    client = client_of()
    plain = str((tmp_path / "plain").resolve())
    (run,) = client.search_runs([client.get_experiment_by_name(plain).experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["train.eval_every"] == "10"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/vae/loss_elbo")] == [10, 20]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "eval/vae/modes_3sigma")] == [10, 20]


def test_a_tuning_trial_is_a_parent_run_with_its_seeds_nested(tmp_path, store):
    pytest.importorskip("optuna")
    uri, client_of = store
    out = tmp_path / "t"
    assert main(["tune", "--methods", "vae", "--budget", "80", "--batch", "2", "--seeds", "2", "--pruner", "none",
                 "--out", str(out), "--mlflow", uri, *TINY, "--set", "checkpoint_every=20"]) == 0
    client = client_of()
    runs = runs_of(client, out / "vae@grid")
    parents = {r.info.run_id: r for r in runs if "izoo.group" in r.data.tags}
    assert sorted(r.info.run_name for r in parents.values()) == ["vae@trial=0", "vae@trial=1"]
    for parent in parents.values():
        assert parent.info.status == "FINISHED" and "lr" in parent.data.params and "modes_3sigma" in parent.data.metrics
        seeds = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert sorted(r.data.params["seed"] for r in seeds) == ["1000", "1001"]
        assert all(r.data.params["variant"] == parent.info.run_name.split("@")[1] for r in seeds)
    assert len(runs) == 2 + 4


def test_without_the_package_it_is_one_line_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if it were not installed
    out = tmp_path / "o"
    assert main(["compare", "--methods", "ali", "--steps", "2", "--mlflow", f"file:{tmp_path / 'mlruns'}",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'inference-zoo[mlflow]'" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
