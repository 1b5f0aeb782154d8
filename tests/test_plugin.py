"""A strategy from a separate pip package reaches the CLI through the entry-point group
``inference_zoo.strategies``; broken plugins are reported, not fatal.

Packages are pip-installed (offline, no deps) into temporary ``--target`` folders put on
PYTHONPATH of a CLI subprocess, so the test environment itself is never modified.
"""
from __future__ import annotations

import csv
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "izoo_plugin_example"


def pip_install(package: Path, target: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
           "--disable-pip-version-check", "--quiet", "--target", str(target), str(package)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def izoo(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "inference_zoo.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def write_package(root: Path, dist: str, module: str, entry_points: dict[str, str], source: str,
                  group: str = "inference_zoo.strategies") -> Path:
    root.mkdir(parents=True)
    lines = "\n".join(f'{name} = "{value}"' for name, value in entry_points.items())
    (root / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{dist}"
        version = "0.0.1"

        [project.entry-points."{group}"]
        """) + lines + f'\n\n[tool.setuptools]\npy-modules = ["{module}"]\n')
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    return root


@pytest.fixture(scope="module")
def example_site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("example")
    # Build from a copy: an in-tree setuptools build leaves build/ and *.egg-info in the repo.
    source = shutil.copytree(EXAMPLE, root / "src", ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__"))
    site = root / "site"
    pip_install(source, site)
    return site


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("broken")
    site = root / "site"
    fails = write_package(root / "fails", "izoo-broken-plugin", "izoo_broken_plugin",
                          {"broken": "izoo_broken_plugin:Nope"},
                          'raise ImportError("izoo_broken_plugin needs a library that is not installed")\n')
    wrong = write_package(root / "wrong", "izoo-wrong-plugin", "izoo_wrong_plugin",
                          {"wrongclass": "izoo_wrong_plugin:NotAStrategy",
                           "incomplete": "izoo_wrong_plugin:Incomplete"},
                          '''\
                          from inference_zoo import Strategy


                          class NotAStrategy:
                              """Looks like a strategy but does not subclass inference_zoo.Strategy."""

                              name = "wrongclass"


                          class Incomplete(Strategy):
                              """Subclasses Strategy but forgets step()."""

                              name = "incomplete"

                              def phases(self, steps):
                                  return []

                              def encode(self, x):
                                  return x

                              def decode(self, z):
                                  return z
                          ''')
    not_a_dataset = write_package(root / "data", "izoo-wrong-dataset", "izoo_wrong_dataset",
                                  {"notdata": "izoo_wrong_dataset:Table"}, "class Table:\n    pass\n",
                                  group="inference_zoo.datasets")
    pip_install(fails, site)
    pip_install(wrong, site)
    pip_install(not_a_dataset, site)
    return site


def test_example_installs_entry_point(example_site: Path) -> None:
    assert (example_site / "izoo_plugin_example" / "__init__.py").is_file()
    eps = list(example_site.glob("izoo_plugin_example-*.dist-info/entry_points.txt"))
    assert len(eps) == 1
    assert 'ae = izoo_plugin_example:AutoEncoder' in eps[0].read_text()


def test_list_shows_plugin(example_site: Path) -> None:
    done = izoo(example_site, "list")
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    for name in ("ae", "ali_cycle", "spiral", "mlp_leaky"):  # strategies, a dataset, an architecture
        assert any(row[:1] == [name] for row in rows), done.stdout
    assert "AE (plugin): deterministic autoencoder" in done.stdout
    assert "failed to load" not in done.stdout


def test_compare_runs_plugin(example_site: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = izoo(example_site, "compare", "--methods", "ae,vae", "--data", "ring", "--steps", "20",
                "--seeds", "1", "--n-train", "500", "--device", "cpu", "--no-progress", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    with open(out / "results.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames is not None
        assert {"study", "dataset", "method", "seed", "metric", "value"} <= set(reader.fieldnames)
        rows = list(reader)
    assert {r["method"] for r in rows} >= {"ae", "vae"}
    recon = [float(r["value"]) for r in rows if r["method"] == "ae" and r["metric"] == "recon_mse"]
    assert len(recon) == 1 and math.isfinite(recon[0]), rows


def test_an_adversarial_plugin_trains_stacked_on_plugin_data_and_networks(example_site: Path, tmp_path: Path) -> None:
    common = ["compare", "--methods", "ali_cycle", "--data", "spiral:modes=6", "--preset", "quick", "--steps", "20",
              "--n-train", "500", "--device", "cpu", "--no-progress", "--threads", "1", "-a", "name=mlp_leaky",
              "-a", "encoder_hidden=16x16", "-a", "decoder_hidden=16x16", "-a", "discriminator_hidden=16x16",
              "--engine", "stacked"]
    stack = izoo(example_site, *common, "--seeds", "2", "--out", str(tmp_path / "stack"))
    assert stack.returncode == 0, stack.stdout + stack.stderr
    assert "ali_cycle: stacked engine" in stack.stdout
    alone = izoo(example_site, *common, "--seeds", "1-1", "--out", str(tmp_path / "alone"))
    assert alone.returncode == 0, alone.stdout + alone.stderr
    import torch

    a = torch.load(tmp_path / "stack/runs/spiral_modes=6/ali_cycle/seed1/checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "alone/runs/spiral_modes=6/ali_cycle/seed1/checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # the plugin keeps the stacking contract
    rows = (tmp_path / "stack/results.csv").read_text()
    assert "modes_3sigma" in rows  # the plugin dataset's modes reach the coverage metrics


BROKEN = {
    "broken": "ImportError: izoo_broken_plugin needs a library that is not installed",
    "wrongclass": "must subclass inference_zoo.Strategy",
    "incomplete": "Incomplete does not implement step",
    "notdata": "must subclass inference_zoo.Dataset",
}


def test_broken_plugins_are_reported_not_fatal(broken_site: Path) -> None:
    done = izoo(broken_site, "list")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert any(row[:1] == ["ali"] for row in rows), done.stdout
    for name, reason in BROKEN.items():
        report = [line for line in done.stdout.splitlines() if f"{name}: plugin failed to load" in line]
        assert len(report) == 1 and reason in report[0], done.stdout
        assert [name] not in [row[:1] for row in rows], f"{name} listed as a working strategy"


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_compare_with_broken_plugin_is_one_line_error(broken_site: Path, tmp_path: Path, name: str) -> None:
    what = ["--methods", "vae", "--data", name] if name == "notdata" else ["--methods", name, "--data", "ring"]
    done = izoo(broken_site, "compare", *what, "--steps", "1",
                "--device", "cpu", "--no-progress", "--out", str(tmp_path / "out"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("izoo: error:") and repr(name) in lines[0] and "failed to load" in lines[0]
    assert not (tmp_path / "out").exists()


def test_names_that_cannot_be_folder_names_or_labels_are_refused() -> None:
    from inference_zoo.core.registry import Registry

    registry: Registry[int] = Registry("strategy")
    registry.add("my_ali-2.0", 1)
    for bad in ("ali@lr=0.1", "a/b", "", "two words"):
        with pytest.raises(ValueError, match="may hold only letters, digits"):
            registry.add(bad, 2)


def test_a_broken_stacking_promise_is_caught_and_the_plugin_trains_one_run_at_a_time(tmp_path: Path) -> None:
    """A plugin declaring stackable = True whose loss mixes the members (a variance over every
    axis, not over the batch axis only) is checked before it trains stacked: it trains one run at a
    time and the terminal says why; the verdict is cached per machine."""
    root = tmp_path / "pkg"
    package = write_package(root / "mixer", "izoo-mixer-plugin", "izoo_mixer_plugin", {"mixer": "izoo_mixer_plugin:Mixer"},
                            '''\
                            from inference_zoo import Phase, StepOutput, Strategy


                            class Mixer(Strategy):
                                name = "mixer"
                                description = "an autoencoder whose loss averages over stacked members too"
                                stackable = True

                                def __init__(self, nets, options=None):
                                    super().__init__(nets, options)
                                    self.encoder = nets.encoder("encoder", out_dim=self.z_dim)
                                    self.decoder = nets.decoder("decoder")

                                def phases(self, steps):
                                    return [Phase(self.name, steps, {"ae": ("encoder", "decoder")})]

                                def step(self, phase, x):
                                    z = self.encoder(x)
                                    error = self.sum_x((x - self.decoder(z)).pow(2)).mean(-1)
                                    spread = (z.reshape(-1, z.shape[-1]).var(0) - 1).pow(2).sum()  # over members too
                                    loss = error + spread
                                    return StepOutput({"ae": loss})
                            ''')
    site = tmp_path / "site"
    pip_install(package, site)
    env_cache = Path(os.environ["XDG_CACHE_HOME"])  # the session's own (conftest.py)
    args = ("compare", "--methods", "mixer", "--data", "ring", "--steps", "10", "--seeds", "2", "--n-train", "300",
            "--device", "cpu", "--no-progress")
    done = izoo(site, *args, "--out", str(tmp_path / "out"))
    again = izoo(site, *args, "--out", str(tmp_path / "again"))
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if line.strip().startswith("mixer:"))
    assert "one run at a time" in line and "differs from itself alone" in line, line
    assert (env_cache / "inference_zoo" / "stacking_checks.json").is_file()
    assert again.returncode == 0 and "differs from itself alone" in again.stdout
    import json

    config = json.loads((tmp_path / "out/runs/ring/mixer/seed1/config.json").read_text())
    assert config["train"]["engine"] == "single"
