import os

import numpy as np
import pytest

from inference_zoo.core.errors import UserError

from inference_zoo.viz import (
    SAMPLE_KEYS,
    load_samples,
    mode_colours,
    plot_mixture_comparison,
    save_figure,
)
from inference_zoo.viz.style import plt

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_samples(dim, n=300, m=200, n_modes=25, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_modes, n) if dim == 2 else np.zeros(n, dtype=np.int64)
    gen_labels = rng.integers(0, n_modes, m) if dim == 2 else np.zeros(m, dtype=np.int64)
    return {
        "x_test": rng.standard_normal((n, dim)),
        "x_test_label": labels,
        "z_encoded": rng.standard_normal((n, dim)),
        "x_reconstructed": rng.standard_normal((n, dim)),
        "z_prior": rng.standard_normal((m, dim)),
        "x_generated": rng.standard_normal((m, dim)),
        "x_generated_label": gen_labels,
    }


@pytest.mark.parametrize("dim", [2, 1])
def test_round_trip_and_byte_stable_png(tmp_path, dim):
    npz = tmp_path / "samples.npz"
    np.savez(npz, **fake_samples(dim))
    samples = load_samples(npz)
    assert set(SAMPLE_KEYS) <= set(samples)
    for key, value in fake_samples(dim).items():
        np.testing.assert_array_equal(samples[key], value)

    columns = [("ali", samples), ("vae", fake_samples(dim, seed=1))]
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    plot_mixture_comparison(columns, first, title="toy")
    plot_mixture_comparison(columns, second, title="toy")
    data = first.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert data == second.read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png", "samples.npz"]


def test_load_samples_missing_key(tmp_path):
    samples = fake_samples(2)
    del samples["z_prior"]
    npz = tmp_path / "samples.npz"
    np.savez(npz, **samples)
    with pytest.raises(UserError, match="z_prior"):
        load_samples(npz)


def test_plot_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError):
        plot_mixture_comparison([], tmp_path / "x.png")
    with pytest.raises(ValueError):
        plot_mixture_comparison([("a", fake_samples(2)), ("b", fake_samples(1))], tmp_path / "x.png")
    bad = fake_samples(2)
    bad["x_generated"] = bad["x_generated"][:, :1]
    with pytest.raises(ValueError):
        plot_mixture_comparison([("a", bad)], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("suffix", [".png", ".pdf", ".svg"])
def test_save_figure_atomic_and_stable(tmp_path, suffix):
    outputs = []
    for name in ("one", "two"):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        save_figure(fig, tmp_path / f"{name}{suffix}")
        assert not plt.fignum_exists(fig.number)
        outputs.append((tmp_path / f"{name}{suffix}").read_bytes())
    assert outputs[0] == outputs[1]
    assert sorted(os.listdir(tmp_path)) == [f"one{suffix}", f"two{suffix}"]


def test_save_figure_removes_temp_file_on_error(tmp_path):
    fig, _ = plt.subplots()
    with pytest.raises(ValueError):
        save_figure(fig, tmp_path / "plot.notaformat")
    assert os.listdir(tmp_path) == []


def test_mode_colours():
    labels = np.arange(25)
    colours = mode_colours(labels, 25)
    assert colours.shape == (25, 4)
    np.testing.assert_array_equal(colours, mode_colours(labels, 25))
    assert len({tuple(c) for c in colours.round(3)}) == 25
    with pytest.raises(ValueError):
        mode_colours(np.array([25]), 25)


def test_sweep_points_group_swept_labels_by_metric_series_and_value():
    from inference_zoo.viz.sweep_figure import sweep_points, swept_settings

    def row(method, seed, metric, value, dataset="grid"):
        return dict(study="s", dataset=dataset, method=method, seed=seed, metric=metric, value=value)

    rows = [row("ali@lr=0.001", 0, "recon_mse", 1.0), row("ali@lr=0.001", 1, "recon_mse", 3.0),
            row("ali@lr=0.0001", 0, "recon_mse", 2.0), row("vae", 0, "recon_mse", 9.0),
            row("ali@lr=0.001", 0, "recon_mse", 5.0, dataset="ring")]
    assert swept_settings(rows, "grid") == ["lr"]
    assert sweep_points(rows, "grid", "lr") == {"recon_mse": {"ali": {"0.001": "ali@lr=0.001", "0.0001": "ali@lr=0.0001"}}}
    assert swept_settings([row("vae", 0, "recon_mse", 9.0)], "grid") == []  # no sweep, no figure
    # a grid of two settings: for each, a series per value of the other
    grid = [row(f"vae@likelihood_std={s},lr={lr}", 0, "recon_mse", 1.0) for s in ("0.05", "0.5") for lr in ("0.001", "0.01")]
    assert swept_settings(grid, "grid") == ["likelihood_std", "lr"]
    assert sweep_points(grid, "grid", "likelihood_std")["recon_mse"] == {
        "vae@lr=0.001": {"0.05": "vae@likelihood_std=0.05,lr=0.001", "0.5": "vae@likelihood_std=0.5,lr=0.001"},
        "vae@lr=0.01": {"0.05": "vae@likelihood_std=0.05,lr=0.01", "0.5": "vae@likelihood_std=0.5,lr=0.01"}}
    assert set(sweep_points(grid, "grid", "lr")["recon_mse"]) == {"vae@likelihood_std=0.05", "vae@likelihood_std=0.5"}


def test_a_sweep_panel_with_nothing_finite_to_draw_still_gets_a_log_axis(tmp_path):
    """A short run may have no sample near a mode: reverse KL is nan for every seed and value."""
    from inference_zoo.viz.sweep_figure import plot_sweeps

    rows = [dict(study="s", dataset="grid", method=f"vae@likelihood_std={v}", seed=0, metric=metric, value=value)
            for v in ("0.05", "0.5") for metric, value in (("reverse_kl", "nan"), ("recon_mse", "1.5"))]
    (path,) = plot_sweeps(rows, tmp_path)
    assert path.name == "sweep-grid-likelihood_std.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_tables_name_shared_swept_settings_once_and_give_each_column_its_values():
    from inference_zoo.experiment.display import _column_headers

    labels = ["vae@likelihood_std=0.05,lr=0.001", "vae@likelihood_std=0.5,lr=0.001"]
    assert _column_headers(labels) == (["0.05, 0.001", "0.5, 0.001"], ["likelihood_std", "lr"])
    # columns that do not share their settings keep their whole variants; no sweep keeps the names
    assert _column_headers(["ali@lr=0.001", "ali@generator_loss=minimax"]) == (["lr=0.001", "generator_loss=minimax"], [])
    assert _column_headers(["ali", "vae"]) == (["ali", "vae"], [])


@pytest.mark.parametrize("fmt", ["pdf", "svg"])
def test_figures_command_redraws_published_figures_in_another_format(tmp_path, fmt):
    """``izoo figures --format pdf`` writes each figure beside its PNG, the same bytes on every call."""
    from pathlib import Path
    import shutil

    from inference_zoo.cli import main

    published = Path(__file__).resolve().parents[1] / "figures"
    copies = []
    for name in ("one", "two"):
        root = tmp_path / name
        for study in ("ali_16k_steps", "image_features_8k_steps"):
            shutil.copytree(published / study, root / study)
        assert main(["figures", str(root), "--format", fmt]) == 0
        copies.append(root)
    drawn = sorted(p.relative_to(copies[0]) for p in copies[0].rglob(f"*.{fmt}"))
    pngs = sorted(p.relative_to(copies[0]).with_suffix(f".{fmt}") for p in copies[0].rglob("*.png"))
    assert drawn == pngs and len(drawn) == 6
    for path in drawn:
        assert (copies[0] / path).read_bytes() == (copies[1] / path).read_bytes()
    for png in copies[0].rglob("*.png"):  # the PNGs are left as published
        assert png.read_bytes() == (published / png.relative_to(copies[0])).read_bytes()


def test_figures_command_rejects_an_unknown_format(tmp_path, capsys):
    from inference_zoo.cli import main

    assert main(["figures", str(tmp_path), "--format", "jpg"]) == 2
    assert "--format must be one of png, pdf, svg" in capsys.readouterr().err
