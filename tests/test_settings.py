"""Settings are the config's fields: one declaration reaches the command line, the Python API and
studies; names are checked with suggestions; the command line and the API publish alike."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import inference_zoo as izoo
from inference_zoo.cli import main
from inference_zoo.core.config import RunConfig, TrainConfig, upgrade_config_dict
from inference_zoo.core.errors import UserError
from inference_zoo.core.results import read_rows
from inference_zoo.core.settings import all_settings, lookup, parse_assignments, resolve

PACKAGE = Path(__file__).resolve().parents[1] / "inference_zoo"
SMALL = ["-a", "encoder_hidden=16", "-a", "decoder_hidden=16", "-a", "discriminator_hidden=16"]

ADDED = '''    test_knob: float = setting(0.25, "A setting a test adds.", sweep=True)\n'''
SCRIPT = r'''
import json, sys
from pathlib import Path
import inference_zoo
assert inference_zoo.__file__.startswith(sys.argv[1]), inference_zoo.__file__
from inference_zoo.cli import main
from inference_zoo.experiment.compare import plan_compare
from inference_zoo.experiment.study import STUDIES, plan_study

out = Path(sys.argv[2])
# the Python API's planning, and a study, sweeping the new setting
assert plan_compare(["vae"], "grid", "quick", [0], test_knob=0.5, device="cpu")[0].train.test_knob == 0.5
labels = sorted({c.label for c in plan_study(STUDIES.get("identity_toy"), [0], methods=["vae"], steps=5,
                                             test_knob=[0.1, 0.2])})
assert labels == ["vae@test_knob=0.1", "vae@test_knob=0.2"], labels
# the command line: a flag of its own, and --set
small = ["-a", "encoder_hidden=16", "-a", "decoder_hidden=16", "-a", "discriminator_hidden=16"]
assert main(["compare", "--methods", "vae", "--steps", "4", "--test-knob", "0.75", "--out", str(out / "a"),
             "--no-progress", *small]) == 0
assert json.loads((out / "a/runs/grid/vae/seed0/config.json").read_text())["train"]["test_knob"] == 0.75
assert main(["compare", "--methods", "vae", "--steps", "4", "--set", "test_knb=1", "--out", str(out / "b")]) == 2
print("ok")
'''


def test_a_new_train_config_field_reaches_the_cli_the_api_and_studies(tmp_path):
    """Adding a field to TrainConfig is a one-file change: a copy of the package with one field
    added to core/config.py and nothing else takes it as a flag, in --set, in the API and in a
    study's sweep, and writes it into the run's config."""
    copy = tmp_path / "src" / "inference_zoo"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    config = copy / "core" / "config.py"
    text = config.read_text()
    anchor = "    engine: str = setting("
    assert text.count(anchor) == 1
    config.write_text(text.replace(anchor, ADDED + anchor))
    env = {**os.environ, "PYTHONPATH": str(copy.parent), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(copy), str(tmp_path / "out")], env=env,
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout + done.stderr
    assert "did you mean test_knob?" in done.stderr


def test_every_setting_is_a_config_field_with_help():
    table = all_settings()
    assert {"lr", "beta1", "ema_decay", "steps", "n_train", "fid_weights", "label_counts"} <= set(table)
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert train_fields <= set(table)  # every training field is a setting
    assert all(s.help for s in table.values())
    assert lookup("train.lr") is table["lr"] and lookup("lr").key == "train.lr"


@pytest.mark.parametrize("name, message", [
    ("lr_flor", "did you mean lr_floor?"),
    ("train.ema", "did you mean train.ema_decay?"),
    ("eval.lr", "no setting 'eval.lr'"),
    ("stepz", "did you mean steps?"),
])
def test_unknown_settings_are_named_with_the_nearest(name, message):
    with pytest.raises(UserError, match=message.replace("?", r"\?").replace(".", r"\.")):
        lookup(name)


def test_values_are_typed_and_sweeps_only_where_a_setting_sweeps():
    assert resolve({"lr": "1e-4,3e-4", "steps": "10", "amp": "true", "label_counts": "100,1000"}) == {
        "lr": [1e-4, 3e-4], "steps": 10, "amp": True, "label_counts": (100, 1000)}
    assert resolve({"lr": 1, "steps": None}) == {"lr": 1.0}  # None: not given
    with pytest.raises(UserError, match="--steps takes one value"):
        resolve({"steps": "10,20"})
    with pytest.raises(UserError, match="--steps: expected an integer"):
        resolve({"steps": 1.5})
    with pytest.raises(UserError, match="lists a value twice"):
        resolve({"beta1": [0.5, 0.5]})
    with pytest.raises(UserError, match="a study fixes n_train itself"):
        lookup("n_train", study=True)
    assert parse_assignments(["eval.n_three_sigma=5000", "beta2=0.99"]) == {"n_three_sigma": 5000, "beta2": 0.99}
    with pytest.raises(UserError, match="--set expects name=value"):
        parse_assignments(["lr"])


def test_set_reaches_fields_without_a_flag_and_refuses_a_setting_given_twice(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["compare", "--methods", "vae", "--steps", "4", "-s", "eval.n_three_sigma=300", "-s", "beta2=0.99",
                 "--out", str(out), "--no-progress", *SMALL]) == 0
    config = RunConfig.from_dict(__import__("json").loads((out / "runs/grid/vae/seed0/config.json").read_text()))
    assert config.eval.n_three_sigma == 300 and config.train.beta2 == 0.99
    capsys.readouterr()
    assert main(["compare", "--lr", "1e-3", "-s", "lr=1e-4", "--out", str(tmp_path / "x")]) == 2
    assert "setting lr is given twice" in capsys.readouterr().err


def test_upgrade_defaults_come_from_the_fields():
    saved = RunConfig().to_dict()
    del saved["variant"]
    for key in ("engine", "ema_decay", "lr_decay_start", "tensorboard"):
        del saved["train"][key]
    del saved["eval"]["label_counts"]
    upgraded = upgrade_config_dict(saved)
    assert upgraded == RunConfig().to_dict() | {"eval": {**RunConfig().to_dict()["eval"], "label_counts": []}}


def _values(folder: Path) -> list[tuple]:
    return sorted((r["dataset"], r["method"], r["seed"], r["metric"], r["value"]) for r in read_rows(folder / "results.csv")
                  if not r["metric"].endswith("_seconds"))


def test_study_from_the_cli_and_from_python_publish_alike(tmp_path, monkeypatch):
    """Two runs published to one folder: the second adds its cells, from the command line and
    from Python alike (the API used to refuse a folder holding earlier cells)."""
    monkeypatch.chdir(tmp_path)
    common = ["identity_toy", "--methods", "vae", "--preset", "quick", "--steps", "5", "--no-progress",
              "--engine", "stacked"]  # numbers independent of the thread count: the two paths may differ in it
    assert main(["study", *common, "--seeds", "0-0", "--out", "cli0", "--publish", "pub_cli"]) == 0
    assert main(["study", *common, "--seeds", "1-1", "--out", "cli1", "--publish", "pub_cli"]) == 0
    for seed in (0, 1):
        izoo.study("identity_toy", methods=["vae"], preset="quick", steps=5, seeds=[seed], out=f"api{seed}",
                   publish="pub_api", engine="stacked")
    assert {r[2] for r in _values(tmp_path / "pub_cli")} == {0, 1}
    assert _values(tmp_path / "pub_cli") == _values(tmp_path / "pub_api")
