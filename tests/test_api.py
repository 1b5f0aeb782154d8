"""The Python API: compare and study return tidy DataFrames, read_results reads any results
folder, load_run gives a trained strategy back from its folder alone."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import inference_zoo as izoo
from inference_zoo.core.errors import UserError

SMALL = {"encoder_hidden": (16, 16), "decoder_hidden": (16, 16), "discriminator_hidden": (16, 16)}


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "cmp"
    return izoo.compare(methods=["bigan", "vae"], data="grid", seeds=2, steps=30, out=out, arch=SMALL)


def test_compare_returns_the_tidy_rows_and_their_summary(compared):
    results, summary = compared.results, compared.summary
    assert list(results.columns) == ["study", "dataset", "method", "seed", "metric", "value"]
    assert set(results["method"]) == {"bigan", "vae"} and set(results["seed"]) == {0, 1}
    recon = results[(results.method == "vae") & (results.metric == "recon_mse")]["value"]
    row = summary[(summary.method == "vae") & (summary.metric == "recon_mse")].iloc[0]
    assert row["n"] == 2 and row["mean"] == pytest.approx(recon.mean())
    assert izoo.read_results(compared.folder).equals(results)  # the folder's table is the same rows
    assert any(p.name == "comparison-grid.png" for p in compared.figures)


def test_load_run_needs_only_the_run_folder_and_reproduces_its_reconstruction(compared, monkeypatch):
    import inference_zoo.engine.train as train_module
    from inference_zoo.core.config import RunConfig
    from inference_zoo.core.fileio import read_json_object
    from inference_zoo.engine.train import held_out_split

    run = compared.folder / "runs/grid/bigan/seed0"
    x, _ = held_out_split(RunConfig.from_dict(read_json_object(run / "config.json")))

    def no_data(*args, **kwargs):
        raise AssertionError("load_run built the dataset")

    monkeypatch.setattr(train_module, "build_dataset", no_data)
    bigan = izoo.load_run(run)
    assert not bigan.training and not any(p.requires_grad for p in bigan.parameters())
    with torch.no_grad():
        mse = float(((x.double() - bigan.reconstruct(x).double()) ** 2).mean())
        assert bigan.sample(7).shape == (7, 2) and bigan.encode(x[:5]).shape == (5, 2)
    recorded = compared.results
    recorded = recorded[(recorded.method == "bigan") & (recorded.seed == 0) & (recorded.metric == "recon_mse")]
    assert mse == pytest.approx(float(recorded["value"].iloc[0]), rel=1e-5)


def test_study_runs_its_cells_and_publishes_where_asked(tmp_path):
    res = izoo.study("identity_toy", seeds=2, methods=["ali", "vae"], preset="quick", steps=20,
                     out=tmp_path / "run", publish=tmp_path / "pub")
    assert set(res.results["method"]) == {"ali", "vae"} and set(res.results["seed"]) == {0, 1}
    assert (tmp_path / "pub/study.json").is_file() and (tmp_path / "pub/results.csv").is_file()
    assert izoo.read_results(tmp_path / "pub")["value"].tolist() == res.results["value"].tolist()


def test_mistakes_are_one_line_errors(tmp_path, compared):
    with pytest.raises(UserError, match=r"no setting .stepz. \(did you mean steps\?\)"):
        izoo.compare(methods=["vae"], stepz=10, out=tmp_path / "x")
    with pytest.raises(UserError, match="no results table"):
        izoo.read_results(tmp_path)
    with pytest.raises(UserError, match="not empty; pass resume=True to continue it or overwrite=True to replace"):
        izoo.compare(methods=["vae"], steps=5, out=compared.folder, arch=SMALL)
    np.testing.assert_equal(izoo.read_results(compared.folder / "runs/grid/vae/seed1")["seed"].unique(), [1])


@pytest.mark.parametrize("kwargs,message", [
    ({"methods": ["ALI"]}, r"unknown strategy 'ALI' \(did you mean ali\?\); valid: ali, alice"),
    ({"data": "rng"}, r"unknown dataset 'rng' \(did you mean ring\?\)"),
    ({"preset": "quik"}, r"unknown preset 'quik' \(did you mean quick\?\); valid: "),
    ({"arch": {"decoder_hiden": (8,)}}, r"unknown arch key 'decoder_hiden' \(did you mean decoder_hidden\?\)"),
    ({"options": {"ali": {"generator_los": "minimax"}}},
     r"strategy ali: unknown option\(s\) generator_los \(did you mean generator_loss\?\); valid: generator_loss"),
    ({"options": {"ALI": {"generator_loss": "minimax"}}}, r"options for 'ALI', which is not run \(did you mean ali\?\)"),
    ({"n_train": 10}, r"^n_train \(10\) must be at least the batch size"),  # the command line's --n-train
    ({"resume": True, "overwrite": True}, "resume and overwrite exclude each other"),
])
def test_a_mistake_from_python_names_the_near_miss_in_pythons_words(kwargs, message, tmp_path):
    with pytest.raises(UserError, match=message):
        izoo.compare(**{"methods": ["ali"], "steps": 5, "out": tmp_path / "o", **kwargs})
    assert not (tmp_path / "o").exists()
    with pytest.raises(UserError, match=r"unknown study 'identity_to' \(did you mean identity_toy\?\)"):
        izoo.study("identity_to")


def test_dir_lists_the_public_api():
    names = dir(izoo)
    assert {"compare", "study", "tune", "read_results", "load_run", "settings", "Results", "__version__"} <= set(names)
    assert set(izoo.__all__) <= set(names) and all(getattr(izoo, n) is not None for n in izoo.__all__)
    assert "Any" not in names and "annotations" not in names


def test_results_repr_is_a_short_summary(compared):
    text = repr(compared)
    lines = text.splitlines()
    assert lines[0] == (f"Results({compared.folder}: {len(compared.rows)} rows; methods bigan, vae; "
                        "datasets grid; 2 seed(s))")
    assert lines[2].split() == ["dataset", "method", "modes_3sigma", "hq_fraction", "reverse_kl",
                                "modes_responsibility", "recon_mse"]
    summary = compared.summary
    mean = summary[(summary.method == "vae") & (summary.metric == "modes_3sigma")]["mean"].iloc[0]
    assert lines[4].split()[:3] == ["grid", "vae", f"{mean:.3g}"]
    assert len(lines) == 5 and len(text) < 1000
    empty = izoo.Results(compared.folder, [])
    assert repr(empty) == f"Results({compared.folder}: 0 rows; methods -; datasets -; 0 seed(s))"


def test_a_loaded_run_takes_numpy_and_single_points_and_encodes_its_mean_or_repeatably(compared):
    from inference_zoo.nets.noise import GLOBAL

    run = compared.folder / "runs/grid/vae/seed0"
    vae = izoo.load_run(run)
    assert repr(vae) == f"LoadedRun(vae on grid, seed 0: x [2] <-> z [2], on cpu; {run})"
    x = np.array([[0.5, -1.0], [2.0, 1.0], [0.0, 0.0]])  # float64: read as the networks' float32
    z = vae.encode(x)
    assert isinstance(z, np.ndarray) and z.shape == (3, 2) and z.dtype == np.float32  # numpy in, numpy out
    posterior_mean = vae.strategy.posterior(torch.as_tensor(x, dtype=torch.float32))[0].numpy()
    np.testing.assert_array_equal(vae.encode(x, mean=True), posterior_mean)
    # one point in, one out (to rounding: the BLAS may pick another kernel for one row than for three)
    np.testing.assert_allclose(vae.encode(x[1], mean=True), posterior_mean[1], rtol=1e-5, atol=1e-7)
    seeded = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    np.testing.assert_array_equal(vae.encode(x, generator=seeded()), vae.encode(x, generator=seeded()))
    assert not np.array_equal(vae.encode(x, generator=seeded()), posterior_mean)
    assert vae.strategy.noise is GLOBAL  # the noise is drawn where it was before
    assert torch.equal(vae.sample(5, generator=seeded()), vae.sample(5, generator=seeded()))
    decoded = vae.decode(torch.zeros(4, 2))
    assert isinstance(decoded, torch.Tensor) and decoded.shape == (4, 2)  # a tensor in, a tensor out
    assert vae.decode([0.0, 0.0]).shape == (2,) and vae.reconstruct(x[0], mean=True).shape == (2,)
    bigan = izoo.load_run(compared.folder / "runs/grid/bigan/seed0")  # a deterministic encoder
    np.testing.assert_array_equal(bigan.encode(x, mean=True), bigan.encode(x))

    for call, message in [(lambda: vae.encode(np.zeros((3, 3))), r"encode takes a batch \[n, 2\] or one point \[2\], "
                                                                 r"got shape \[3, 3\]"),
                          (lambda: vae.encode(np.zeros(3)), r"got shape \[3\]"),
                          (lambda: vae.decode(torch.zeros(2, 1, 2)), r"decode takes .* got shape \[2, 1, 2\]"),
                          (lambda: vae.encode("x"), "encode takes a tensor or an array of numbers, got str"),
                          (lambda: vae.encode(x, generator=0), r"generator must be a torch.Generator")]:
        with pytest.raises(UserError, match=message):
            call()
