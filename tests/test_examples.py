"""The one-page ALI loop in examples/ is the engine's arithmetic: run beside izoo's ALI and the
engine's update from the same weights, minibatches and noise, it gives the same weights."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import torch

from inference_zoo.core.presets import get_preset
from inference_zoo.engine.layouts import OneRun
from inference_zoo.engine.train import build_strategy, update
from inference_zoo.experiment.compare import plan_compare
from inference_zoo.strategies import params_of

ROOT = Path(__file__).resolve().parents[1]


def load_example():
    spec = importlib.util.spec_from_file_location("ali_loop", ROOT / "examples" / "ali_loop.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_loop_takes_the_engines_steps():
    example = load_example()
    config = plan_compare(["ali"], "grid", "paper", [0], engine="single", device="cpu", lr=1e-3)[0]
    strategy = build_strategy(config, 2)
    phase = strategy.phases(config.train.steps)[0]
    groups = {g: params_of(strategy, names) for g, names in phase.groups.items()}
    optimizers = OneRun.optimizers(SimpleNamespace(train=config.train), groups)  # the single engine's Adam
    encoder, decoder, discriminator = example.networks()
    mine = [*encoder.state_dict().values(), *decoder.state_dict().values(), *discriminator.state_dict().values()]
    theirs = [*strategy.encoder.state_dict().values(), *strategy.decoder.state_dict().values(),
              *strategy.discriminator.state_dict().values()]
    assert [t.shape for t in mine] == [t.shape for t in theirs]  # the same networks, layer for layer
    with torch.no_grad():
        for a, b in zip(mine, theirs):
            a.copy_(b)
    initial = [t.clone() for t in mine]
    betas = (config.train.beta1, config.train.beta2)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.train.lr, betas=betas)
    opt_g = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=config.train.lr, betas=betas)
    strategy.train()
    data = example.grid(1000, torch.Generator().manual_seed(1))
    for step in range(5):
        x = data[step * 100:(step + 1) * 100]
        torch.manual_seed(step)
        update(strategy.step(phase.name, x), groups, optimizers, {})
        torch.manual_seed(step)  # the same noise: z first, then the encoder's eps
        example.ali_step(encoder, decoder, discriminator, x, opt_d, opt_g)
    pairs = [(encoder, strategy.encoder), (decoder, strategy.decoder), (discriminator, strategy.discriminator)]
    for mine_net, engine_net in pairs:
        for a, b in zip(mine_net.state_dict().values(), engine_net.state_dict().values()):
            assert torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-6)
    assert all(not torch.equal(a, b) for a, b in zip(mine, initial) if a.is_floating_point() and a.dim() == 2)  # trained


TUTORIAL = ROOT / "examples" / "tutorial.ipynb"


def test_the_tutorial_is_committed_without_outputs():
    import nbformat

    notebook = nbformat.read(TUTORIAL, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_the_tutorial_notebook_runs_and_shows_its_table_figures_and_codes(tmp_path):
    """Executed in a kernel as a reader would run it, in a folder of its own (nothing lands in the
    repository): each step shows what its cell is there for."""
    import base64

    import nbformat
    from nbclient import NotebookClient

    from inference_zoo.cli import main

    notebook = nbformat.read(TUTORIAL, as_version=4)
    NotebookClient(notebook, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(tmp_path)}}).execute()
    tagged = {tag: cell for cell in notebook.cells for tag in cell.metadata.get("tags", [])}

    def text(tag: str) -> str:
        return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in tagged[tag].outputs)

    assert all(o.output_type != "error" for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "methods ali, vae; datasets ring; 2 seed(s)" in text("compare")
    table = text("summary").splitlines()
    assert table[0].split() == ["method", "ali", "vae"]
    assert [line.split()[0] for line in table[2:]] == ["modes_3sigma", "hq_fraction", "reverse_kl", "recon_mse", "prior_mmd"]
    (png,) = [o.data["image/png"] for o in tagged["figure"].outputs if "image/png" in o.get("data", {})]
    assert base64.b64decode(png).startswith(b"\x89PNG")  # the reader's own figure shows in the notebook
    assert "LoadedRun(vae on ring, seed 0" in text("load") and "G(E(x)):" in text("load")
    out = tmp_path / "runs" / "tutorial"
    figure = (out / "comparison-ring.png").read_bytes()
    assert main(["figures", str(out)]) == 0  # drawn in the kernel or by the command: the same bytes
    assert (out / "comparison-ring.png").read_bytes() == figure
