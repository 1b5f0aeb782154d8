"""izoo verify: a sample of a published study's cells re-trained from their recorded configs and
compared, metric by metric, with what was published."""
from __future__ import annotations

import csv
import json
import shutil
import statistics
from pathlib import Path

import pytest
import torch

import inference_zoo as izoo
from inference_zoo.cli import main
from inference_zoo.core.results import read_rows
from inference_zoo.experiment.verify import (SPREAD_FLOOR, cell_config, compare_cell, has_digest,
                                             read_published_study, sample_cells, seed_spread)
from inference_zoo.studies.base import config_digest


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A tiny identity-toy study (ali and vae, 2 seeds each, stacked), published with the project's API."""
    root = tmp_path_factory.mktemp("verify")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        izoo.study("identity_toy", seeds=2, methods=["ali", "vae"], preset="quick", steps=5, device="cpu",
                   engine="stacked", out=root / "runs", publish=root / "published")
    finally:
        torch.set_num_threads(threads)
    return root / "published"


def run_cli(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cells_of(folder):
    return list(dict.fromkeys((r["dataset"], r["method"], r["seed"]) for r in read_rows(folder / "results.csv")))


def test_verify_finds_every_metric_of_the_retrained_cells_identical(published, tmp_path, capsys):
    before = {p: p.read_bytes() for p in published.rglob("*") if p.is_file()}
    out = tmp_path / "verify"
    code, stdout, err = run_cli(["verify", str(published), "--cells", "2", "--out", str(out), "--threads", "1"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader((out / "verify.csv").open()))
    assert list(rows[0]) == ["cell", "metric", "published", "new", "difference", "spread", "verdict"]
    assert {r["cell"].split("/")[1] for r in rows} == {"ali", "vae"}  # two cells: one per method
    assert {r["verdict"] for r in rows} == {"identical"}
    assert not {"train_seconds", "eval_seconds"} & {r["metric"] for r in rows}
    assert "verified (identity_toy, 2 cells, 20 metrics): 20 identical" in stdout
    record = json.loads((out / "verify.json").read_text())
    assert record["verified"] and record["unconfirmed_configs"] == [] and record["commit"] is not None
    assert {"cpu", "torch", "threads", "platform"} <= set(record["machine"])
    for run in record["cells_dirs"]:  # each re-trained with the engine its recorded config names
        assert json.loads((Path(run) / "config.json").read_text())["train"]["engine"] == "stacked"
    assert {p: p.read_bytes() for p in published.rglob("*") if p.is_file()} == before  # never written into


def test_a_tampered_published_value_is_outside_the_spread(published, tmp_path, capsys):
    folder = tmp_path / "published"
    shutil.copytree(published, folder)
    tampered = sample_cells(cells_of(folder), 2, seed=0)[0]
    rows = read_rows(folder / "results.csv")
    for row in rows:
        if (row["dataset"], row["method"], row["seed"]) == tampered and row["metric"] == "recon_mse":
            row["value"] += 100.0
    with (folder / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    code, stdout, err = run_cli(["verify", str(folder), "--cells", "2", "--out", str(tmp_path / "v"),
                                 "--threads", "1"], capsys)
    assert code == 1, err
    verdicts = {(r["cell"], r["metric"]): r["verdict"] for r in csv.DictReader((tmp_path / "v" / "verify.csv").open())}
    name = f"{tampered[0]}/{tampered[1]}/seed{tampered[2]}"
    assert verdicts.pop((name, "recon_mse")) == "outside spread"
    assert set(verdicts.values()) == {"identical"}
    assert "NOT verified" in stdout and "1 outside spread" in stdout


def test_verify_from_python_returns_the_rows(published):
    result = izoo.verify(published, cells=1, seed=1)  # a temporary folder, removed
    assert result.passed and result.out is None and len(result.cells) == 1
    assert result.counts["identical"] == len(result.rows) == 10


def test_sampling_is_seeded_and_spread_over_the_methods():
    cells = [("grid", method, seed) for method in ("ali", "ali@lr=0.001", "vae") for seed in range(4)]
    three = sample_cells(cells, 3, seed=0)
    assert three == sample_cells(cells, 3, seed=0)  # deterministic
    assert len({c[1] for c in three}) == 3  # one per method label (a variant is a group of its own)
    assert any(sample_cells(cells, 3, seed=s) != three for s in range(1, 10))
    five = sample_cells(cells, 5, seed=2)
    assert len(five) == 5 and sorted(sum(c[1] == m for c in five) for m in ("ali", "ali@lr=0.001", "vae")) == [1, 2, 2]
    assert five == [c for c in cells if c in five]  # in the study's order
    assert sample_cells(cells, 100, seed=0) == cells


def test_the_spread_is_twice_the_std_of_the_other_seeds():
    values = {0: 1.0, 1: 1.2, 2: 0.9, 3: 1.5}
    rows = {("d", "ali", s): [{"metric": "m", "value": v}, {"metric": "train_seconds", "value": 9.0}]
            for s, v in values.items()}
    cell = ("d", "ali", 3)
    assert seed_spread(rows, cell, "m") == pytest.approx(2 * statistics.stdev([1.0, 1.2, 0.9]))
    assert seed_spread({cell: rows[cell]}, cell, "m") == SPREAD_FLOOR  # no other seed: the floor
    verdicts = [r["verdict"] for value in (1.5, 1.6, 2.0)
                for r in compare_cell(rows, cell, [{"metric": "m", "value": value}])]
    assert verdicts == ["identical", "within spread", "outside spread"]  # timings are left out
    assert [r["verdict"] for r in compare_cell(rows, cell, [])] == ["missing"]


def test_a_value_inside_the_other_seeds_published_range_is_within_spread():
    """Seeds that split between two outcomes (an encoder learning x or -x): a re-trained seed that
    lands on the other outcome is inside the study's published distribution, though far from its
    own published value and from 2 standard deviations of the others."""
    values = {0: -0.94, 1: 0.97, 2: 0.98, 3: -0.9, 4: 0.96, 5: 0.95}
    rows = {("d", "latent", s): [{"metric": "corr", "value": v}] for s, v in values.items()}
    cell = ("d", "latent", 3)
    verdicts = [r["verdict"] for value in (0.92, 0.99)
                for r in compare_cell(rows, cell, [{"metric": "corr", "value": value}])]
    assert verdicts == ["within spread", "outside spread"]


def test_a_cells_config_is_rebuilt_and_matched_to_its_recorded_digest(published):
    study, piece, example = read_published_study(published)
    for cell, provenance in piece.provenance.items():
        config, confirmed = cell_config(study, example, cell, provenance["config"])
        assert confirmed and config.train.engine == "stacked" and config.seed == cell[2]
        assert not cell_config(study, example, cell, "0" * 16)[1]
    saved = config.saved_dict()  # as config.json holds it
    del saved["train"]["ema_decay"], saved["eval"]["label_counts"]  # as an older izoo saved it
    assert has_digest(config, config_digest(saved))


@pytest.mark.parametrize("damage,argv,message", [
    (None, ["{missing}"], "does not exist"),
    (None, ["{empty}"], "is not a published study folder (no study.json)"),
    (None, ["{folder}", "--cells", "0"], "--cells must be a whole number >= 1, got 0"),
    (None, ["{folder}", "--cells", "two"], "Invalid value for '--cells'"),
    (None, ["{folder}", "--out", "{folder}/verify"], "overlaps the published folder"),
    (None, ["{folder}", "--out", "{full}"], "is not empty; pass --overwrite"),
    ("results.csv", ["{folder}"], "results.csv: truncated"),
    ("study.json", ["{folder}"], "study.json (not valid JSON)"),
    ("example_config", ["{folder}"], "records no cell config"),
    ("study name", ["{folder}"], "unknown study 'nope'"),
])
def test_bad_input_is_one_line_and_exit_code_2(published, tmp_path, capsys, damage, argv, message):
    folder = tmp_path / "published"
    shutil.copytree(published, folder)
    (tmp_path / "empty").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine\n")
    if damage == "results.csv":
        text = (folder / "results.csv").read_text()
        (folder / "results.csv").write_text(text[: len(text) // 2])
    elif damage == "study.json":
        (folder / "study.json").write_text("{not json")
    elif damage in ("example_config", "study name"):
        record = json.loads((folder / "study.json").read_text())
        if damage == "example_config":
            del record["example_config"]
        else:
            record["study"] = "nope"
        (folder / "study.json").write_text(json.dumps(record))
    paths = {"missing": tmp_path / "missing", "empty": tmp_path / "empty", "folder": folder, "full": tmp_path / "full"}
    code, out, err = run_cli(["verify", *(a.format(**paths) for a in argv)], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("izoo: error:") and "Traceback" not in err
    assert message in err
