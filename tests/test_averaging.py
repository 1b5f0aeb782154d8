"""The weight average (train.ema_decay): the maths on a hand-computed case, evaluation only,
member-independent in a stack, and exact on resume."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from conftest import stopped_after_updates, tiny_config
from inference_zoo.engine.averaging import WeightAverage
from inference_zoo.experiment.runs import run_group
from inference_zoo.engine.stack.engine import resolve_engine


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(1, 1, bias=False)
        self.decoder = nn.Linear(1, 1, bias=False)
        self.discriminator = nn.Linear(1, 1, bias=False)


def test_the_average_follows_its_recurrence_and_covers_encoder_and_decoder_only():
    toy = Toy()
    for p in toy.parameters():
        nn.init.constant_(p, 1.0)
    average = WeightAverage(toy, decay=0.5)
    assert set(average.shadow) == {"encoder.weight", "decoder.weight"}
    with torch.no_grad():
        toy.encoder.weight.fill_(3.0)
    average.update()  # 0.5 * 1 + 0.5 * 3
    with torch.no_grad():
        toy.encoder.weight.fill_(5.0)
    average.update()  # 0.5 * 2 + 0.5 * 5
    assert average.shadow["encoder.weight"].item() == 3.5 and average.shadow["decoder.weight"].item() == 1.0
    with average.applied():
        assert toy.encoder.weight.item() == 3.5
    assert toy.encoder.weight.item() == 5.0  # live weights back after evaluation


def _config(method, seed, ema, engine="stacked", steps=30):
    c = tiny_config(method, seed=seed, steps=steps, batch_size=21, checkpoint_every=10)
    c = dataclasses.replace(c, train=dataclasses.replace(c.train, ema_decay=ema))
    return resolve_engine(c, engine, 2)


def _load(run):
    return torch.load(run / "checkpoint.pt", weights_only=True)


@pytest.mark.parametrize("engine", ["single", "stacked"])
def test_the_average_changes_evaluation_not_training(tmp_path, engine):
    for ema in (0.0, 0.9):
        run_group([_config("ali", s, ema, engine) for s in (0, 1)], [tmp_path / f"{ema}/seed{s}" for s in (0, 1)])
    live, averaged = _load(tmp_path / "0.0/seed1"), _load(tmp_path / "0.9/seed1")
    assert all(torch.equal(live["model"][k], averaged["model"][k]) for k in live["model"])
    assert set(averaged["ema"]) == {k for k in averaged["model"] if k.split(".")[0] in ("encoder", "decoder")
                                    and "running" not in k and "num_batches" not in k}
    rows = {ema: (tmp_path / f"{ema}/seed1/results.csv").read_text().split("train_seconds")[0] for ema in (0.0, 0.9)}
    assert rows[0.0] != rows[0.9]


def test_a_members_average_equals_its_seed_trained_alone(tmp_path):
    run_group([_config("vae", s, 0.9) for s in (0, 1, 2)], [tmp_path / f"stack/seed{s}" for s in (0, 1, 2)])
    run_group([_config("vae", 2, 0.9)], [tmp_path / "alone"])
    a, b = _load(tmp_path / "alone"), _load(tmp_path / "stack/seed2")
    assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])
    assert (tmp_path / "alone/results.csv").read_text().split("train_seconds")[0] == \
        (tmp_path / "stack/seed2/results.csv").read_text().split("train_seconds")[0]


def test_a_resumed_run_continues_its_average(tmp_path):
    """Stop a stacked run after its step-20 checkpoint, resume: the same average as uninterrupted."""
    import inference_zoo.engine.train as engine  # the one training loop, for both engines

    run_group([_config("ali", 0, 0.9)], [tmp_path / "whole"])
    with stopped_after_updates(engine, 25):
        run_group([_config("ali", 0, 0.9)], [tmp_path / "resumed"])
    assert _load(tmp_path / "resumed")["step"] == 20
    run_group([_config("ali", 0, 0.9)], [tmp_path / "resumed"])
    a, b = _load(tmp_path / "whole"), _load(tmp_path / "resumed")
    assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
