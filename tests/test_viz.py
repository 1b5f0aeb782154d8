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


def drawn_texts(monkeypatch, module, draw) -> tuple[list[str], list[str]]:
    """Draw a figure with ``module``'s save_figure caught: (every visible text, those that reach
    outside the figure)."""
    caught = []
    monkeypatch.setattr(module, "save_figure", lambda fig, path, *a, **k: caught.append(fig) or path)
    draw()
    (fig,) = caught
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    box = fig.bbox
    texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_window_extent"))
             if t.get_visible() and t.get_text().strip()]
    outside = [t.get_text() for t in texts
               if (e := t.get_window_extent(renderer)).x0 < box.x0 - 1 or e.x1 > box.x1 + 1 or e.y1 > box.y1 + 1 or e.y0 < box.y0 - 1]
    plt.close(fig)
    return [t.get_text() for t in texts], outside


def test_fit_text_breaks_a_title_at_its_parts_then_at_spaces():
    from inference_zoo.viz.style import TEXT_MARGIN, fit_text, text_width

    parts = ["digits: seed 0, 2000 steps:", "G((1-t) E(x_a) + t E(x_b)), t = 0 ... 1"]
    assert fit_text(parts, 20, 10) == " ".join(parts)  # room for one line
    assert fit_text(parts, 3.2, 10) == "\n".join(parts)
    narrow = fit_text("one two three four five six seven", 1.2, 10)
    assert narrow.count("\n") >= 2 and all(text_width(line, 10) <= 1.2 - TEXT_MARGIN for line in narrow.split("\n"))


def test_the_interpolations_title_fits_a_one_method_figure(tmp_path, monkeypatch):
    from inference_zoo.viz import image_figures

    rng = np.random.default_rng(0)
    columns = [("ali", {"interpolation": rng.random((4, 10, 1, 8, 8))})]
    texts, outside = drawn_texts(monkeypatch, image_figures, lambda: image_figures.interpolations_figure(
        columns, tmp_path / "i.png", "digits: seed 0, 2000 steps"))
    assert "digits: seed 0, 2000 steps:\nG((1-t) E(x_a) + t E(x_b)), t = 0 ... 1" in texts and outside == []


@pytest.mark.parametrize("dim", [2, 1])
def test_the_comparison_grid_has_a_key_for_its_colours_or_histograms(tmp_path, monkeypatch, dim):
    from inference_zoo.viz import mixture_figure

    texts, outside = drawn_texts(monkeypatch, mixture_figure, lambda: plot_mixture_comparison(
        [("ali", fake_samples(dim))], tmp_path / "c.png", n_modes=25 if dim == 2 else 1, title="grid: seed 0, 3000 steps"))
    key = " ".join(" ".join(texts).split())
    assert (mixture_figure.COLOUR_KEY in key) == (dim == 2) and (mixture_figure.HISTOGRAM_KEY in key) == (dim == 1)
    assert outside == []


@pytest.mark.parametrize("methods", [["vae"], ["ali", "bigan", "latent", "posthoc", "vae"]])
def test_identity_maps_have_a_key_for_seeds_lines_and_solution_counts(tmp_path, monkeypatch, methods):
    from inference_zoo.studies import identity_toy

    (tmp_path / "samples").mkdir()
    rows = []
    line = np.linspace(-2, 2, 50)[:, None]
    for method in methods:
        for seed in (0, 1, 5):
            np.savez(tmp_path / "samples" / f"identity__{method}__seed{seed}.npz", x_test=line, z_encoded=line,
                     z_prior=line, x_generated=-line)
            rows += [dict(study="identity_toy", dataset="identity", method=method, seed=seed, metric=m, value=v)
                     for m, v in (("recon_mse", 0.0), ("corr_x_encoding", 1.0))]
    texts, outside = drawn_texts(monkeypatch, identity_toy, lambda: identity_toy.maps_figure(tmp_path, rows))
    assert {"seed", "0", "1", "5", "z = x: the identity", "z = -x: the sign flip"} <= set(texts)
    assert f"{methods[0]}\nid 3 / flip 0 / piecewise 0 / none 0" in texts
    assert identity_toy.COUNTS_KEY == " ".join(next(t for t in texts if t.startswith("Above each column")).split())
    assert outside == []
