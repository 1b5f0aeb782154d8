"""Semi-supervised ALI: the labelled subset, the K+1-class discriminator, end to end on digits."""
from __future__ import annotations

import csv
import dataclasses
import math

import pytest
import torch

from inference_zoo import load_run
from inference_zoo.cli import main
from inference_zoo.core.errors import UserError
from inference_zoo.data import build_dataset, labelled_subset, parse_data_spec
from inference_zoo.engine.train import build_strategy
from inference_zoo.strategies import params_of

from conftest import tiny_config


def test_the_labelled_subset_is_balanced_and_fixed_by_the_seed():
    digits = build_dataset(parse_data_spec("digits"))
    x, y = labelled_subset(digits, 30, seed=0)
    assert x.shape == (30, 1, 8, 8) and torch.bincount(y).tolist() == [3] * 10
    again, _ = labelled_subset(digits, 30, seed=0)
    other, _ = labelled_subset(digits, 30, seed=1)
    assert torch.equal(x, again) and not torch.equal(x, other)
    train, _ = digits.sample(10**6, torch.Generator())  # the whole training split
    flat = train.reshape(len(train), -1)
    assert all((flat == image.reshape(1, -1)).all(1).any() for image in x)  # from the training split
    for bad in (0, 5, 25):
        with pytest.raises(UserError, match="multiple of the 10 classes"):
            labelled_subset(digits, bad, seed=0)


def test_the_discriminator_has_a_logit_per_class_and_generated_is_the_rest():
    config = dataclasses.replace(tiny_config("ssali", data="grid:modes=4", steps=2), options={"labels": 8})
    ssali = build_strategy(config, x_dim=2)
    x, z = torch.randn(5, 2), torch.randn(5, 2)
    logits = ssali.discriminator(x, z)
    assert logits.shape == (5, 4)
    assert torch.allclose(ssali.data_logit(x, z), torch.log(torch.exp(logits).sum(-1)), atol=1e-5)
    ssali.attach_labelled(torch.randn(8, 2), torch.arange(8) % 4)
    out = ssali.step("ssali", torch.randn(16, 2))
    assert set(out.losses) == {"discriminator", "generator"} and 0 <= out.logs["label_acc"] <= 1
    # the labels' cross-entropy reaches D only through D's loss: the generator side's loss has no
    # path to it, and D's loss is what the engine differentiates for D's parameters
    out.losses["discriminator"].backward()
    assert all(p.grad is not None for p in params_of(ssali, ("discriminator",)))


def test_semi_supervised_ali_on_digits_end_to_end(tmp_path, capsys):
    out = tmp_path / "ss"
    assert main(["compare", "--methods", "ssali", "--data", "digits", "--steps", "3", "--batch-size", "16",
                 "-o", "labels=20", "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
    with open(out / "results.csv") as f:
        values = {r["metric"]: float(r["value"]) for r in csv.DictReader(f)}
    assert 0 <= values["classifier_error"] <= 1 and math.isfinite(values["recon_mse"])
    run = out / "runs" / "digits" / "ssali" / "seed0"
    strategy = load_run(run)  # the labelled subset travels with the weights
    x, y = labelled_subset(build_dataset(parse_data_spec("digits")), 20, seed=0)
    assert torch.equal(strategy.labelled_x, x) and torch.equal(strategy.labelled_y, y)
    assert strategy.classify(x).shape == (20,)


def test_semi_supervised_ali_refuses_unlabelled_data(capsys, tmp_path):
    assert main(["compare", "--methods", "ssali", "--data", "identity", "--steps", "1", "--out", str(tmp_path)]) == 2
    assert "at least two classes" in capsys.readouterr().err


def test_the_semi_supervised_study_publishes_error_against_labels(tmp_path, capsys):
    from inference_zoo.studies.semi_supervised import LABEL_COUNTS

    published = tmp_path / "figs" / "semi_supervised"
    assert main(["study", "semi_supervised", "--seeds", "1", "--steps", "2", "--device", "cpu", "--no-progress",
                 "--out", str(tmp_path / "runs"), "--publish", str(published)]) == 0
    with open(published / "results.csv") as f:
        rows = list(csv.DictReader(f))
    methods = {r["method"] for r in rows}
    assert methods == {f"ssali@labels={n}" for n in LABEL_COUNTS} | {"ali", "bigan", "vae"}
    metrics = {(r["method"], r["metric"]) for r in rows}
    for n in LABEL_COUNTS:
        assert (f"ssali@labels={n}", "classifier_error") in metrics and (f"ssali@labels={n}", "supervised_error") in metrics
        assert all((m, f"label_probe_error_{n}") in metrics for m in ("ali", "bigan", "vae"))
    table = (published / "results_table.md").read_text()
    assert "| ssali (K+1 D) |" in table and "| supervised, pixels only |" in table and "7.42 ± 0.65 %" in table
    figure = (published / "error_vs_labels.png").read_bytes()
    (published / "error_vs_labels.png").unlink()
    assert main(["figures", str(tmp_path / "figs")]) == 0
    assert (published / "error_vs_labels.png").read_bytes() == figure


def test_the_figures_take_the_dataset_and_label_counts_from_the_rows(tmp_path):
    from inference_zoo.studies.semi_supervised import figures

    rows = [{"study": "semi_supervised", "dataset": "mnist5k", "method": method, "seed": seed, "metric": metric,
             "value": value}
            for seed in (0, 1)
            for method, metric, value in (("ssali@labels=100", "classifier_error", 0.2 + seed / 10),
                                          ("ssali@labels=1000", "classifier_error", 0.1),
                                          ("ssali@labels=1000", "supervised_error", 0.3),
                                          ("vae", "label_probe_error_100", 0.4), ("vae", "label_probe_error_1000", 0.2))]
    with open(tmp_path / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    figures(tmp_path)
    table = (tmp_path / "results_table.md").read_text()
    assert "on mnist5k:" in table and "| classifier | 100 labels | 1000 labels |" in table
    assert "| ssali (K+1 D) | 25.0 ± 5.0 | 10.0 ± 0.0 |" in table  # mean ± s.e. of 20 % and 30 %, in %
    assert "| vae codes + linear probe | 40.0 ± 0.0 | 20.0 ± 0.0 |" in table
