"""Studies: run a tiny grid, publish it, and redraw every figure byte-identically without training."""
from __future__ import annotations

import json

import pytest

from inference_zoo.cli import main
from inference_zoo.studies import STUDIES
from inference_zoo.core.errors import UserError
from inference_zoo.core.results import read_rows
from inference_zoo.studies.identity_toy import classify

TINY = ["--steps", "5", "--preset", "quick", "--device", "cpu", "--no-progress"]


def test_identity_classification_matches_the_calibration_values():
    assert classify(corr=1.0, mse=0.0) == "identity"
    assert classify(corr=-1.0, mse=0.0) == "flip"
    assert classify(corr=0.0, mse=2.0) == "non-invertible"  # the independent coupling
    assert classify(corr=0.99, mse=0.5) == "non-invertible"  # correlated but not invertible
    assert classify(corr=0.3, mse=0.01) == "piecewise"  # inverts, but folded
    assert classify(corr=1.0, mse=float("nan")) == "non-invertible"


def test_study_publishes_tables_and_figures_that_izoo_figures_redraws_identically(tmp_path, capsys):
    figs = tmp_path / "figures"
    for name, extra in (("identity_toy", ["--seeds", "2"]), ("mixture_coverage", ["--seeds", "1", "--datasets", "ring"])):
        code = main(["study", name, *extra, *TINY, "--out", str(tmp_path / "runs" / name), "--publish", str(figs / name)])
        assert code == 0, capsys.readouterr().err
    expected = {
        "identity_toy": {"identity_maps.png", "identity_distributions.png", "identity_table.md"},
        "mixture_coverage": {"comparison-ring.png", "coverage_vs_reconstruction.png", "results_table.md"},
    }
    before = {}
    for name, files in expected.items():
        folder = figs / name
        assert files <= {p.name for p in folder.iterdir()}
        rows = read_rows(folder / "results.csv")
        assert {r["study"] for r in rows} == {name}
        meta = json.loads((folder / "study.json").read_text())
        methods = len(STUDIES.get(name).methods)
        assert meta["cells"] == (2 * methods if name == "identity_toy" else methods) and meta["command_history"]
        before.update({(name, f): (folder / f).read_bytes() for f in files})
        for f in files:
            (folder / f).unlink()
    assert main(["figures", str(figs)]) == 0
    for (name, f), data in before.items():
        assert (figs / name / f).read_bytes() == data, f
    table = (figs / "mixture_coverage" / "results_table.md").read_text()
    assert "PacGAN" in table and "| ring | ali |" in table
    (figs / "identity_toy" / "identity_table.md").unlink()  # one published folder on its own
    assert main(["figures", str(figs / "identity_toy")]) == 0
    assert (figs / "identity_toy" / "identity_table.md").read_bytes() == before["identity_toy", "identity_table.md"]


def test_rerunning_a_finished_study_trains_nothing(tmp_path, capsys):
    argv = ["study", "identity_toy", "--seeds", "1", *TINY, "--out", str(tmp_path / "o"), "--publish", str(tmp_path / "p")]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().err.count("finished earlier, kept") == len(STUDIES.get("identity_toy").methods)


def test_a_study_passes_its_numerics_options_to_every_cell():
    from inference_zoo.experiment.study import STUDIES, plan_study

    configs = plan_study(STUDIES.get("identity_toy"), [0], steps=5, preset="quick", device="cpu", amp=True, compile=True)
    assert configs and all(c.train.amp and c.train.compile for c in configs)
    assert not any(c.train.amp or c.train.compile for c in plan_study(STUDIES.get("identity_toy"), [0], steps=5, preset="quick", device="cpu"))


def test_identity_maps_of_a_sweep_give_each_rate_its_own_pair_of_rows(tmp_path):
    import numpy as np
    from PIL import Image

    from inference_zoo.studies.identity_toy import maps_figure

    def publish(labels):
        folder = tmp_path / str(len(labels))
        (folder / "samples").mkdir(parents=True)
        rows = []
        for label in labels:
            line = np.linspace(-2, 2, 50)[:, None]
            np.savez(folder / "samples" / f"identity__{label}__seed0.npz", x_test=line, z_encoded=line,
                     z_prior=line, x_generated=-line)
            rows += [dict(study="identity_toy", dataset="identity", method=label, seed=0, metric=m, value=v)
                     for m, v in (("recon_mse", 0.0), ("corr_x_encoding", 1.0))]
        return Image.open(maps_figure(folder, rows)).size

    one = publish(["ali", "vae"])
    swept = publish(["ali@lr=0.001", "vae@lr=0.001", "ali@lr=0.01", "vae@lr=0.01"])
    three = publish([f"{m}@lr={lr}" for lr in ("0.001", "0.01", "0.1") for m in ("ali", "vae")])
    assert swept[0] == one[0] == three[0]  # still one column per method
    assert abs((three[1] - swept[1]) - (swept[1] - one[1])) <= 1  # a pair of rows per rate, the same height
    assert swept[1] - one[1] > 0.5 * one[1]


def test_a_study_takes_strategy_options_and_sweeps_over_its_own():
    from inference_zoo.experiment.study import STUDIES, plan_study

    spec = STUDIES.get("identity_toy")
    configs = plan_study(spec, [0, 1], steps=5, device="cpu", options={"vae": {"likelihood_std": [0.1, 0.3]}})
    vae = [c for c in configs if c.method == "vae"]
    assert [(c.label, c.seed, c.options["likelihood_std"]) for c in vae] == [
        ("vae@likelihood_std=0.1", 0, 0.1), ("vae@likelihood_std=0.1", 1, 0.1),
        ("vae@likelihood_std=0.3", 0, 0.3), ("vae@likelihood_std=0.3", 1, 0.3)]
    assert {c.label for c in configs if c.method != "vae"} == set(spec.methods) - {"vae"}  # the rest as before
    # a subset of the study's methods: one method's sweep alone
    only = plan_study(spec, [0], steps=5, device="cpu", methods=["vae"], options={"vae": {"likelihood_std": [0.1, 0.3]}})
    assert [c.label for c in only] == ["vae@likelihood_std=0.1", "vae@likelihood_std=0.3"]
    with pytest.raises(UserError, match=r"study identity_toy has no method gan \(did you mean bigan\?\); valid: ali"):
        plan_study(spec, [0], steps=5, device="cpu", methods=["gan"])


def test_the_identity_toy_judges_a_seed_by_the_encoders_mean_map_where_it_has_one():
    from inference_zoo.studies.identity_toy import solution_counts

    # a perfect inverse plus unit-variance encoder noise: one draw looks non-invertible, the mean map is the identity
    noisy_inverse = {"recon_mse": 1.0, "corr_x_encoding": 0.7, "recon_mse_mean_code": 0.01, "corr_x_mean_code": 0.99}
    flipped = {"recon_mse": 1.0, "corr_x_encoding": -0.7, "recon_mse_mean_code": 0.02, "corr_x_mean_code": -0.98}
    coupling = {"recon_mse": 2.0, "corr_x_encoding": 0.0, "recon_mse_mean_code": 1.0, "corr_x_mean_code": 0.0}
    earlier = {"recon_mse": 1.0, "corr_x_encoding": 0.7}  # a run published before the mean map existed
    counts = solution_counts({0: noisy_inverse, 1: flipped, 2: coupling, 3: earlier})
    assert counts == {"identity": 1, "flip": 1, "non-invertible": 2}


def test_evaluation_reports_the_mean_map_on_the_identity_toy(tmp_path):
    from conftest import tiny_config
    from inference_zoo.experiment.runs import run_group

    rows = run_group([tiny_config(m, data="identity", steps=10) for m in ("ali", "bigan")],
                     [tmp_path / "ali", tmp_path / "bigan"])
    ali, bigan = ({r["metric"]: r["value"] for r in run_rows} for run_rows in rows)
    for values in (ali, bigan):
        assert -1 <= values["corr_x_mean_code"] <= 1 and values["recon_mse_mean_code"] >= 0
    # a deterministic encoder's mean map is the encoder itself
    assert bigan["corr_x_mean_code"] == pytest.approx(bigan["corr_x_encoding"], abs=1e-5)  # float32 mean of 32 equal draws
    assert bigan["recon_mse_mean_code"] == pytest.approx(bigan["recon_mse"], rel=1e-4)
    assert ali["corr_x_mean_code"] != ali["corr_x_encoding"]  # ALI's encoder injects noise


def test_provenance_names_python_m_inference_zoo_as_the_izoo_command():
    from inference_zoo.core.environment import command_line

    assert command_line(["/opt/bin/izoo", "study", "x"]) == "izoo study x"
    assert command_line(["/home/u/checkout/inference_zoo/__main__.py", "study", "x"]) == "izoo study x"
    assert command_line(["studies/x.py", "--seeds", "2"]) == "python studies/x.py --seeds 2"


def test_a_study_that_publishing_would_refuse_fails_before_training_anything(tmp_path, capsys):
    import inference_zoo

    pub = tmp_path / "pub"
    base = ["study", "identity_toy", "--preset", "quick", "--device", "cpu", "--no-progress", "--threads", "1",
            "--seeds", "1", "--methods", "vae", "--publish", str(pub)]
    assert main([*base, "--steps", "5", "--out", str(tmp_path / "a")]) == 0
    before = (pub / "results.csv").read_bytes()
    capsys.readouterr()
    assert main([*base, "--steps", "6", "--out", str(tmp_path / "b")]) == 2  # another config for a published cell
    err = capsys.readouterr().err.strip()
    assert err == (f"izoo: error: {pub} already holds cell identity/vae/seed0 of identity_toy trained with other "
                   "settings (steps 6 vs 5); publish elsewhere with --publish DIR, or replace it with --overwrite")
    assert not list((tmp_path / "b").rglob("results.csv"))  # nothing trained
    with pytest.raises(UserError, match="trained with other settings"):  # the Python API: the same check
        inference_zoo.study("identity_toy", seeds=1, methods=["vae"], preset="quick", steps=6, device="cpu",
                            out=tmp_path / "b", publish=pub)
    assert not list((tmp_path / "b").rglob("results.csv"))
    assert main([*base, "--steps", "5", "--out", str(tmp_path / "c")]) == 0  # the same settings: published again
    assert (pub / "results.csv").read_bytes() == before
    # a run folder already holding the cell with other settings: refused before training more, without "merge"
    assert main([*base[:-1], str(tmp_path / "elsewhere"), "--steps", "6", "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    assert main([*base, "--steps", "6", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"izoo: error: {pub} already holds cell identity/vae/seed0 with another config (")
    assert "merge" not in err and err.endswith("replace it with --overwrite") and "\n" not in err
    assert main([*base, "--steps", "6", "--out", str(tmp_path / "b"), "--overwrite"]) == 0
    assert (pub / "results.csv").read_bytes() != before
