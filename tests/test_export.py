"""izoo export (safetensors / pt) and load_run on an export folder; TensorBoard logging."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from inference_zoo import load_run
from inference_zoo.cli import main
from inference_zoo.core.errors import UserError
from inference_zoo.experiment.export import export_run
from inference_zoo.experiment.runs import run_one

from conftest import tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    run_one(tiny_config("ali", steps=10, ema_decay=0.9), root / "run")
    return root / "run"


def _outputs(strategy) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.linspace(-4, 4, 20).reshape(10, 2)
    torch.manual_seed(0)  # the encoder injects noise
    return strategy.encode(x), strategy.decode(strategy.prior(10))


@pytest.mark.parametrize("fmt", ["safetensors", "pt"])
def test_an_export_loads_to_the_same_networks(trained, tmp_path, fmt):
    weights = export_run(trained, tmp_path / fmt, fmt)
    assert weights.name == f"model.{fmt}"
    assert sorted(p.name for p in (tmp_path / fmt).iterdir()) == ["config.json", "model.json", weights.name]
    for a, b in zip(_outputs(load_run(trained)), _outputs(load_run(tmp_path / fmt))):
        assert torch.equal(a, b)


def test_the_live_weights_are_exported_on_request(trained, tmp_path):
    export_run(trained, tmp_path / "live", averaged=False)
    live, averaged = load_run(trained, averaged=False), load_run(tmp_path / "live")
    assert all(torch.equal(a, b) for a, b in zip(_outputs(live), _outputs(averaged)))
    assert not torch.equal(_outputs(load_run(trained))[1], _outputs(live)[1])  # the average differs


def test_the_safetensors_file_stands_alone(trained, tmp_path):
    from safetensors import safe_open

    export_run(trained, tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert meta["format"] == "inference_zoo.export/1" and meta["method"] == "ali" and meta["averaged"] == "true"
    assert json.loads(meta["config"]) == json.loads((trained / "config.json").read_text())
    assert keys == set(load_run(trained).state_dict())


def test_an_export_is_not_overwritten_without_asking(trained, tmp_path, capsys):
    out = tmp_path / "exp"
    assert main(["export", str(trained), "--out", str(out)]) == 0
    before = (out / "model.safetensors").read_bytes()
    assert main(["export", str(trained), "--out", str(out), "--format", "pt"]) == 2
    assert "already holds an export; pass --overwrite" in capsys.readouterr().err
    assert (out / "model.safetensors").read_bytes() == before
    assert main(["export", str(trained), "--out", str(out), "--format", "pt", "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.json", "model.pt"]
    import inference_zoo

    with pytest.raises(UserError, match="already holds an export; pass overwrite=True"):  # Python's words
        inference_zoo.export_run(trained, out)
    with pytest.raises(UserError, match="^format must be one of safetensors, pt"):
        inference_zoo.export_run(trained, out, format="onnx")


def test_damaged_or_mismatched_exports_are_one_line(trained, tmp_path):
    export_run(trained, tmp_path / "bad")
    (tmp_path / "bad" / "model.safetensors").write_bytes(b"\x10\x00\x00\x00garbage")
    with pytest.raises(UserError, match="cannot read .*model.safetensors"):
        load_run(tmp_path / "bad")
    export_run(trained, tmp_path / "other")
    config = json.loads((tmp_path / "other" / "config.json").read_text())
    config["arch"]["encoder_hidden"] = [8, 8]
    (tmp_path / "other" / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="do not fit the networks"):
        load_run(tmp_path / "other")
    with pytest.raises(UserError, match="--format must be one of safetensors, pt"):
        export_run(trained, tmp_path / "x", "onnx")


def test_tensorboard_events_follow_the_log_and_the_curve(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tiny_config("latent", steps=10, eval_every=5, tensorboard=True)
    run_one(config, tmp_path / "run", tmp_path / "shared")
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/gan/loss_discriminator", "train/regress/loss_encoder", "eval/regress/modes_3sigma"} <= tags
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    gan = [r for r in logged if r["phase"] == "gan"]
    assert [(e.step, pytest.approx(e.value)) for e in events.Scalars("train/gan/loss_discriminator")] == \
        [(r["step"], r["loss_discriminator"]) for r in gan]
    assert [e.step for e in events.Scalars("eval/regress/modes_3sigma")] == [5, 10]
    # where the log goes is not part of a run's identity: the run resumes (here: is found finished) without it
    plain = dataclasses.replace(config, train=dataclasses.replace(config.train, tensorboard=False))
    assert run_one(plain, tmp_path / "run", tmp_path / "shared")


def test_export_run_is_public_and_an_unfinished_run_is_refused(tmp_path):
    import inference_zoo
    from conftest import stopped_after_updates
    from inference_zoo.engine import train

    assert inference_zoo.export_run.__wrapped__ is export_run  # its errors in Python's words
    config = tiny_config("ali", steps=20, checkpoint_every=5)
    with stopped_after_updates(train, 12):
        run_one(config, tmp_path / "run")
    with pytest.raises(UserError, match="unfinished run"):
        export_run(tmp_path / "run", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_tensorboard_without_the_package_is_one_line(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if it were not installed
    assert main(["compare", "--methods", "ali", "--steps", "2", "--tensorboard", "--out", str(tmp_path / "o")]) == 2
    assert "pip install 'inference-zoo[tensorboard]'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
