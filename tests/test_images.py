"""Image studies: feature metrics on hand-computed cases, conv architectures, image datasets, the
image compare path end to end (FakeData through the CLI, never a download), conditional ALI."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from inference_zoo import metrics as M
from inference_zoo.cli import main
from inference_zoo.data import build_dataset, parse_data_spec
from inference_zoo.core.errors import UserError
from inference_zoo.nets import ARCHITECTURES, ArchConfig, NetworkFactory
from inference_zoo.nets.conv import halvings
from inference_zoo.core.seeding import generator
from inference_zoo.core.results import cell_path, safe_name
from inference_zoo.viz.image_figures import tile

TINY_FAKE = "fake:side=16,train_size=48,test_size=24,classes=3"
TINY_CONV = ["-a", "z_dim=4", "-a", "encoder_hidden=8x8x8x8", "-a", "decoder_hidden=8x8x8x8",
             "-a", "discriminator_hidden=8x8x8x8"]


def run_cli(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- metrics: hand-computed cases -----------------------------------------------------------------
def test_nearest_neighbour_accuracy_by_hand():
    # train points 0 (label 0) and 10 (label 1); test 1 -> 0 right, 9 -> 1 right, 6 -> 1 wrong
    assert M.nearest_neighbour_accuracy([[0.0], [10.0]], [0, 1], [[1.0], [9.0], [6.0]], [0, 1, 0]) == pytest.approx(2 / 3)
    # a tie (5 is 5 away from both) goes to the lowest index
    assert M.nearest_neighbour_accuracy([[0.0], [10.0]], [0, 1], [[5.0]], [0]) == 1.0
    # image-shaped features are flattened
    a = np.zeros((2, 1, 2, 2))
    a[1] += 1
    assert M.nearest_neighbour_accuracy(a, [3, 4], a[::-1], [4, 3]) == 1.0


def test_linear_probe_separable_and_single_class():
    rng = np.random.default_rng(0)
    train = np.concatenate([rng.normal(-3, 0.3, (30, 2)), rng.normal(3, 0.3, (30, 2))])
    labels = np.repeat([0, 1], 30)
    assert M.linear_probe_accuracy(train, labels, [[-3.0, -3.0], [3.0, 3.0], [2.5, 3.5]], [0, 1, 1]) == 1.0
    assert M.linear_probe_accuracy(train, labels, [[-3.0, -3.0]], [1]) == 0.0
    assert math.isnan(M.linear_probe_accuracy(train, np.zeros(60), train, np.zeros(60)))


def test_one_classifier_scores_inputs_and_their_reconstructions():
    """recon_same_class by hand: a classifier fitted on well-separated classes keeps a perfect
    reconstruction's class, and a reconstruction moved to the other class loses it."""
    rng = np.random.default_rng(0)
    train = np.concatenate([rng.normal(-3, 0.3, (30, 2)), rng.normal(3, 0.3, (30, 2))])
    labels = np.repeat([0, 1], 30)
    x = np.array([[-3.0, -3.0], [3.0, 3.0], [-2.8, -3.1], [3.1, 2.9]])
    y = [0, 1, 0, 1]
    swapped = -x  # every reconstruction lands in the other class
    half = np.array([x[0], x[1], -x[2], -x[3]])
    own, same, none, halfway = M.linear_classifier_accuracies(train, labels, [(x, y), (x, y), (swapped, y), (half, y)])
    assert (own, same, none, halfway) == (1.0, 1.0, 0.0, 0.5)


def test_interpolation_path_ratio_and_nearest_distance_by_hand():
    straight = np.linspace(0, 1, 5).reshape(1, 5, 1)  # a straight cross-fade: ratio 1
    assert M.interpolation_path_ratio(straight) == pytest.approx(1.0)
    detour = np.array([0.0, 2.0, 1.0]).reshape(1, 3, 1)  # 0 -> 2 -> 1: length 3, direct 1
    assert M.interpolation_path_ratio(detour) == pytest.approx(3.0)
    both = np.concatenate([straight[:, [0, 2, 4]], detour])
    assert M.interpolation_path_ratio(both) == pytest.approx(2.0)
    assert math.isnan(M.interpolation_path_ratio(np.zeros((1, 3, 2))))  # ends coincide
    # nearest of (1, 1) and (3, 3) to (0, 0) is (1, 1): per-pixel MSE 1; to (3, 3.5): (3, 3), 0.125
    assert M.nearest_distance_mse([[0.0, 0.0], [3.0, 3.5]], [[1.0, 1.0], [3.0, 3.0]]) == pytest.approx((1 + 0.125) / 2)


def test_tile_layout():
    images = np.zeros((2, 3, 1, 2, 2), dtype=np.float32)
    images[1, 2] = 1.0
    mosaic = tile(images)
    assert mosaic.shape == (2 * 3 - 1, 3 * 3 - 1)  # 1-pixel white gaps between tiles
    assert mosaic[3:5, 6:8].min() == 1.0 and mosaic[0:2, 0:2].max() == 0.0 and mosaic[2, 0] == 1.0


# --- architectures --------------------------------------------------------------------------------
@pytest.mark.parametrize("name,shape,widths", [
    ("dcgan", (1, 8, 8), (8,)), ("dcgan", (1, 28, 28), (8, 8)), ("dcgan", (3, 32, 32), (8, 8, 8)),
    ("dcgan", (3, 64, 64), (4, 4, 4, 4)), ("mlp", (1, 8, 8), (16,)),
    ("ali32", (3, 32, 32), None),
])
def test_image_architectures_map_between_images_and_codes(name, shape, widths):
    if name == "ali32":
        config = ArchConfig(name="ali32", z_dim=6, encoder_hidden=(4,) * 6, decoder_hidden=(4,) * 6,
                            discriminator_hidden=(4,) * 7)
    else:
        config = ArchConfig(name=name, z_dim=6, encoder_hidden=widths, decoder_hidden=widths, discriminator_hidden=widths)
    nets = NetworkFactory(ARCHITECTURES.get(name)(config, 0, shape), seed=0)
    x, z = torch.rand(3, *shape), torch.randn(3, 6)
    assert nets.encoder("e", out_dim=6, noise_dim=6)(x).shape == (3, 6)
    assert nets.encoder("e", out_dim=12)(x).shape == (3, 12)
    out = nets.decoder()(z)
    assert out.shape == (3, *shape)
    if name != "mlp":
        assert 0 <= out.min() and out.max() <= 1  # sigmoid: pixels in [0, 1]
    assert nets.discriminator("d")(x).shape == (3,)
    assert nets.joint_discriminator("j")(x, z).shape == (3,)


def test_architecture_errors_are_user_errors():
    assert halvings(28) == (2, 7) and halvings(32) == (3, 4) and halvings(64) == (4, 4) and halvings(8) == (1, 4)
    ali32 = ArchConfig(name="ali32", encoder_hidden=(4,) * 6, decoder_hidden=(4,) * 6, discriminator_hidden=(4,) * 7)
    with pytest.raises(UserError, match="ali32 is for 32x32 images"):
        ARCHITECTURES.get("ali32")(ali32, 0, (1, 28, 28)).decoder()
    with pytest.raises(UserError, match="need 3 encoder widths"):
        ARCHITECTURES.get("dcgan")(ArchConfig(name="dcgan", encoder_hidden=(8,)), 0, (3, 32, 32)).encoder(4, 0)
    with pytest.raises(UserError, match="square images"):
        ARCHITECTURES.get("dcgan")(ArchConfig(name="dcgan"), 0, (2,)).decoder()


# --- datasets -------------------------------------------------------------------------------------
def test_digits_fixed_split_in_unit_range():
    ds = build_dataset(parse_data_spec("digits"))
    assert ds.x_shape == (1, 8, 8) and ds.n_classes == 10 and ds.default_preset == "digits"
    x_train, _ = ds.sample(10**6, generator(0, "data", "train"))
    x_test, y_test = ds.held_out(10**6, generator(0, "data", "test"))
    assert x_train.shape == (1437, 1, 8, 8) and x_test.shape == (360, 1, 8, 8)
    assert x_train.min() == 0 and x_train.max() == 1 and set(y_test.tolist()) == set(range(10))
    other_seed, _ = ds.held_out(10**6, generator(5, "data", "test"))
    assert torch.equal(x_test, other_seed)  # the test split does not depend on the seed
    subset, _ = ds.sample(100, generator(0, "data", "train"))
    assert subset.shape == (100, 1, 8, 8)


def test_missing_torchvision_data_is_one_line_and_never_downloads(capsys, tmp_path):
    code, out, err = run_cli(["compare", "--data", "cifar10", "--data-root", str(tmp_path / "none"),
                              "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err + out
    assert "dataset cifar10: cannot read it under" in err and "--download" in err
    assert not (tmp_path / "none").exists() or not any((tmp_path / "none").iterdir())


def test_data_spec_booleans_and_options():
    assert build_dataset(parse_data_spec("fake:side=16,channels=1")).x_shape == (1, 16, 16)
    with pytest.raises(UserError, match="channels 1 or 3"):
        parse_data_spec("fake:channels=2")


# --- end to end -----------------------------------------------------------------------------------
def test_fake_image_compare_through_the_cli(capsys, tmp_path):
    """The cifar10 command's code path (dcgan preset, image evaluation and figures) on FakeData."""
    out = tmp_path / "cmp"
    argv = ["compare", "--methods", "ali,latent,posthoc,vae", "--data", TINY_FAKE, "--steps", "3",
            "--batch-size", "8", "--device", "cpu", "--no-progress", "--out", str(out), *TINY_CONV]
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    values = {(r["method"], r["metric"]): float(r["value"]) for r in rows}
    for method in ("ali", "latent", "posthoc", "vae"):
        assert values[(method, "diverged")] == 0
        for metric in ("recon_mse", "probe_linear_acc", "probe_1nn_acc", "interp_path_ratio", "interp_mid_nn_mse"):
            assert math.isfinite(values[(method, metric)]), (method, metric)
        assert 0 <= values[(method, "probe_1nn_acc")] <= 1
    samples = np.load(cell_path(out, rows[0]["dataset"], "vae", 0) / "samples.npz")
    assert samples["x_test"].shape == (24, 3, 16, 16) and samples["interpolation"].shape == (8, 9, 3, 16, 16)
    figures = sorted(p.name for p in out.glob("*.png"))
    stem = safe_name(rows[0]["dataset"])
    assert figures == sorted([*(f"{kind}-{stem}.png" for kind in ("samples", "reconstructions", "interpolations")),
                              *(f"arithmetic-{stem}-{m}.png" for m in ("ali", "latent", "posthoc", "vae"))])
    before = {p: p.read_bytes() for p in out.glob("*.png")}
    for p in before:
        p.unlink()
    assert main(["figures", str(out)]) == 0  # redrawn from the stored arrays alone, byte-identically
    assert {p: p.read_bytes() for p in out.glob("*.png")} == before
    assert "probe_linear_acc" in stdout


def test_conditional_ali_end_to_end_on_digits(capsys, tmp_path):
    out = tmp_path / "cali"
    argv = ["compare", "--methods", "cali", "--data", "digits", "--steps", "3", "--batch-size", "16",
            "--device", "cpu", "--no-progress", "--out", str(out), "-a", "z_dim=4"]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    with open(out / "results.csv") as f:
        rows = {r["metric"]: float(r["value"]) for r in csv.DictReader(f)}
    assert rows["diverged"] == 0 and math.isfinite(rows["recon_mse"])
    assert "probe_linear_acc" not in rows  # its encoder is given the label: no feature probe
    samples = np.load(out / "runs" / "digits" / "cali" / "seed0" / "samples.npz")
    assert samples["class_samples"].shape == (10, 8, 1, 8, 8)
    assert (out / "class-samples-digits-cali.png").is_file()


def test_latent_arithmetic_on_digits_moves_codes_towards_the_target_class(capsys, tmp_path):
    out = tmp_path / "arith"
    code, _, err = run_cli(["compare", "--methods", "vae,cali", "--data", "digits", "--steps", "150",
                            "--batch-size", "32", "--device", "cpu", "--no-progress", "--out", str(out),
                            "-a", "z_dim=8"], capsys)
    assert code == 0, err
    samples = np.load(out / "runs" / "digits" / "vae" / "seed0" / "samples.npz")
    assert samples["arith_pairs"].tolist() == [[a, (a + 1) % 10] for a in range(10)]
    assert samples["arith_frames"].shape == (10, 6, 1, 8, 8) and samples["arith_target_prob"].shape == (10, 6)
    probs = samples["arith_target_prob"].mean(0)
    # class-a images are not class b before the edit; the edit makes them so (VAE, 150 steps)
    assert probs[0] < 0.1 and probs[4] > 0.5 and np.all(np.diff(probs) >= -0.05)
    with open(out / "results.csv") as f:
        rows = {(r["method"], r["metric"]): float(r["value"]) for r in csv.DictReader(f)}
    assert rows[("vae", "arith_target_prob")] == pytest.approx(float(samples["arith_target_prob"][:, 4].mean()), abs=1e-6)
    assert ("cali", "arith_target_prob") not in rows  # handed the label: nothing to judge
    figure = out / "arithmetic-digits-vae.png"
    before = figure.read_bytes()
    figure.unlink()
    assert main(["figures", str(out)]) == 0 and figure.read_bytes() == before  # from the stored arrays
    assert not (out / "arithmetic-digits-cali.png").exists()


@pytest.mark.parametrize("arch", [[], ["--preset", "ali32"]])
def test_hierarchical_ali_on_images_reconstructs_through_each_level(capsys, tmp_path, arch):
    out = tmp_path / "hali"
    data = "digits" if not arch else "fake:side=32,train_size=16,test_size=8,classes=2"
    code, _, err = run_cli(["compare", "--methods", "hali", "--data", data, "--steps", "2", "--batch-size", "8",
                            "--device", "cpu", "--no-progress", "--out", str(out), *arch], capsys)
    assert code == 0, err
    with open(out / "results.csv") as f:
        rows = {r["metric"]: float(r["value"]) for r in csv.DictReader(f)}
    assert math.isfinite(rows["recon_mse_z1"]) and 0 <= rows["recon_same_class_z1"] <= 1
    assert len(list(out.glob("levels-*-hali.png"))) == 1


def test_the_smile_vector_on_celeba_through_fake_attributes(capsys, tmp_path, monkeypatch):
    """CelebA's code path with one binary attribute (here "Smiling") on FakeData images: the
    arithmetic runs both ways between the attribute's classes, the smile vector and its inverse."""
    import torchvision

    names = ["5_o_Clock_Shadow", "Male", "Smiling", ""]

    class FakeCelebA(torch.utils.data.Dataset):
        def __init__(self, root, split, target_type, transform, download):
            train = split == "train"
            self.images = torchvision.datasets.FakeData(32 if train else 12, (3, 24, 24), num_classes=2,
                                                        transform=transform, random_offset=0 if train else 500)
            self.attr_names, self.target_transform = names, None

        def __len__(self):
            return len(self.images)

        def __getitem__(self, i):
            image, label = self.images[i]
            attrs = torch.zeros(len(names), dtype=torch.long)
            attrs[names.index("Smiling")] = int(label)
            return image, self.target_transform(attrs) if self.target_transform else attrs

    monkeypatch.setattr(torchvision.datasets, "CelebA", FakeCelebA)
    out = tmp_path / "celeba"
    code, _, err = run_cli(["compare", "--methods", "ali", "--data", "celeba:side=16,attribute=Smiling",
                            "--steps", "2", "--batch-size", "8", "--device", "cpu", "--no-progress",
                            "--out", str(out), "--data-root", str(tmp_path), *TINY_CONV], capsys)
    assert code == 0, err
    stem = safe_name("celeba:attribute=Smiling,side=16")
    samples = np.load(cell_path(out, "celeba:attribute=Smiling,side=16", "ali", 0) / "samples.npz")
    assert samples["arith_pairs"].tolist() == [[0, 1], [1, 0]]
    assert (out / f"arithmetic-{stem}-ali.png").is_file()


def test_conditional_ali_uses_the_label():
    from inference_zoo.core.config import RunConfig
    from inference_zoo.engine.train import build_strategy

    config = RunConfig(method="cali", data=parse_data_spec("digits"),
                       arch=ArchConfig(name="dcgan", z_dim=4, encoder_hidden=(8,), decoder_hidden=(8,),
                                       discriminator_hidden=(8,)))
    cali = build_strategy(config, 64).eval()
    z = torch.randn(2, 4)
    with torch.no_grad():
        a, b = cali.decode(z, torch.tensor([0, 0])), cali.decode(z, torch.tensor([0, 1]))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[1], b[1])
    assert cali.step("cali", torch.rand(5, 1, 8, 8), torch.arange(5)).losses["generator"].shape == ()
    with pytest.raises(ValueError, match="pass the labels"):
        cali.encode(torch.rand(2, 1, 8, 8))


def test_image_study_publishes_and_redraws_byte_identically(capsys, tmp_path):
    argv = ["study", "image_features", "--seeds", "1", "--steps", "2", "--device", "cpu", "--no-progress",
            "--out", str(tmp_path / "runs"), "--publish", str(tmp_path / "figs" / "image_features")]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    folder = tmp_path / "figs" / "image_features"
    table = (folder / "results_table.md").read_text()
    assert "| digits | cali | 1 |" in table and "*raw pixels*" in table
    pngs = {p.name: p.read_bytes() for p in folder.glob("*.png")}
    assert {"samples-digits.png", "reconstructions-digits.png", "interpolations-digits.png",
            "class-samples-digits-cali.png", "features_per_seed.png"} <= set(pngs)
    for name in pngs:
        (folder / name).unlink()
    assert main(["figures", str(tmp_path / "figs")]) == 0
    assert {p.name: p.read_bytes() for p in folder.glob("*.png")} == pngs


def test_imagefolder_reads_class_folders_with_a_fixed_split(tmp_path):
    from PIL import Image

    from inference_zoo.data.images import set_data_location

    rng = np.random.default_rng(0)
    for k in range(2):
        (tmp_path / f"class{k}").mkdir()
        for i in range(10):
            pixels = (rng.uniform(size=(12, 12, 3)) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / f"class{k}" / f"{i}.png")
    set_data_location(tmp_path)
    try:
        ds = build_dataset(parse_data_spec("imagefolder:side=8,test_fraction=0.25"))
        x_train, y_train = ds.sample(10**6, generator(0, "data", "train"))
        x_test, _ = ds.held_out(10**6, generator(0, "data", "test"))
    finally:
        set_data_location(None)
    assert ds.x_shape == (3, 8, 8) and ds.n_classes == 2
    assert x_train.shape == (15, 3, 8, 8) and x_test.shape == (5, 3, 8, 8)
    assert 0 <= x_train.min() and x_train.max() <= 1 and set(y_train.tolist()) == {0, 1}


def _write_idx(path, array: np.ndarray) -> None:
    """An MNIST-format (idx) file: magic 0x08 (uint8) + rank, big-endian sizes, then the bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_mnist_through_torchvision_from_local_files(capsys, tmp_path):
    """The real torchvision MNIST class on tiny idx files written here: the --data-root path
    that a machine with the data takes (no download)."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("t10k", 12)):
        _write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    out = tmp_path / "cmp"
    argv = ["compare", "--methods", "vae", "--data", "mnist", "--data-root", str(tmp_path), "--steps", "2",
            "--batch-size", "8", "--device", "cpu", "--no-progress", "--out", str(out), *TINY_CONV]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    with open(out / "results.csv") as f:
        rows = {r["metric"]: float(r["value"]) for r in csv.DictReader(f)}
    assert rows["diverged"] == 0 and math.isfinite(rows["probe_1nn_acc"])
    samples = np.load(cell_path(out, "mnist", "vae", 0) / "samples.npz")
    assert samples["x_test"].shape == (12, 1, 28, 28) and samples["x_test"].max() <= 1.0
