"""A trained run for downstream use: ``load_run`` (from its run folder or an export folder) and
``izoo export RUN_DIR --format safetensors``.

An export folder holds

    model.safetensors   every weight of the strategy (encoder, decoder, discriminator...), the
                        weight average already in place where the run kept one; or model.pt
    config.json         the run's resolved config: what rebuilds the networks
    model.json          what the networks were built for (one sample's shape, the classes)

and nothing that needs the training data, the optimiser or izoo's checkpoint format:
``load_run(export_folder)`` reads it back, and other tools read the safetensors file as it is
(its metadata repeats the config and the model shapes as JSON).
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ..core.config import RunConfig
from ..core.errors import UserError
from ..core.fileio import atomic_write, load_torch, read_json_object, save_torch, write_json

if TYPE_CHECKING:
    import torch

#: what ``izoo export --format`` writes, and the weights file of each
FORMATS = {"safetensors": "model.safetensors", "pt": "model.pt"}
EXPORT_FORMAT = "inference_zoo.export/1"


def _safetensors():
    try:
        import safetensors.torch
    except ImportError:
        raise UserError("--format safetensors needs the safetensors package: "
                        "pip install 'inference-zoo[export]' (or use --format pt)") from None
    return safetensors.torch


def export_run(run_dir: str | Path, out: str | Path | None = None, format: str = "safetensors",
               averaged: bool = True, overwrite: bool = False) -> Path:
    """Write a finished run's weights and the JSON that rebuilds its networks to ``out`` (default
    ``RUN_DIR/export``); return the weights file. ``averaged``: the weight average in place of the
    live encoder and decoder where the run kept one (as its evaluation used)."""
    if format not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / "export"
    if out.exists() and not out.is_dir():
        raise UserError(f"export target {out} exists and is not a folder")
    written = [out / name for name in (*FORMATS.values(), "config.json", "model.json")]
    if not overwrite and any(p.exists() for p in written):
        raise UserError(f"{out} already holds an export; pass --overwrite to replace it")
    if format == "safetensors":
        save_file = _safetensors()
    strategy = load_run(run_dir, averaged=averaged)
    config = read_json_object(run_dir / "config.json", "it is not a run folder of izoo")
    model = read_json_object(run_dir / "model.json", "train the run again") if (run_dir / "model.json").is_file() else {}
    # own contiguous copies: safetensors refuses tensors that share memory
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in strategy.state_dict().items()}
    weights = out / FORMATS[format]
    for other in written:
        if other.name in FORMATS.values() and other != weights:
            other.unlink(missing_ok=True)  # one weights file per export folder
    if format == "safetensors":
        metadata = {"format": EXPORT_FORMAT, "method": str(config.get("method")), "averaged": str(averaged).lower(),
                    "config": json.dumps(config, sort_keys=True), "model": json.dumps(model, sort_keys=True)}
        blob = save_file.save(tensors, metadata=metadata)
        atomic_write(weights, lambda f: f.write(blob))
    else:
        save_torch(weights, {"format": EXPORT_FORMAT, "averaged": averaged, "model": tensors})
    write_json(out / "config.json", config)
    if model:
        write_json(out / "model.json", model)
    return weights


def is_export(folder: Path) -> bool:
    return any((folder / name).is_file() for name in FORMATS.values()) and not (folder / "checkpoint.pt").is_file()


def read_export_weights(folder: Path) -> dict[str, Any]:
    """The state dict of an export folder (safetensors or pt)."""
    if (folder / FORMATS["safetensors"]).is_file():
        path = folder / FORMATS["safetensors"]
        try:
            return _safetensors().load_file(str(path))
        except UserError:
            raise
        except Exception as exc:  # the library raises its own error types for damaged files
            raise UserError(f"cannot read {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; "
                            "export the run again") from None
    state = load_torch(folder / FORMATS["pt"])
    if not isinstance(state, dict) or state.get("format") != EXPORT_FORMAT:
        raise UserError(f"{folder / FORMATS['pt']} is not an izoo export; export the run again")
    return state["model"]


class LoadedRun:
    """A trained run for downstream use, as ``load_run`` gives it back.

    ``encode``, ``decode`` and ``reconstruct`` take a batch [n, *shape] or one point [*shape], as a
    torch tensor or as numpy reads it (an array, a list), and give back the same kind: a tensor for
    a tensor, a numpy array otherwise; one point for one point. ``mean=True`` encodes without noise
    and ``generator`` (a ``torch.Generator``) draws the noise, for codes that repeat. The rest is
    the strategy's, in eval mode (``strategy``: ``prior``, ``parameters()``, ``classify``, ...).
    """

    def __init__(self, strategy, config: RunConfig, folder: Path) -> None:
        self.strategy, self.config, self.folder = strategy, config, folder

    def __getattr__(self, name: str) -> Any:
        if name == "strategy":  # not set yet (a copy being made)
            raise AttributeError(name)
        return getattr(self.strategy, name)

    def __repr__(self) -> str:
        s = self.strategy
        return (f"LoadedRun({self.config.label} on {self.config.data.label()}, seed {self.config.seed}: "
                f"x {list(s.x_shape)} <-> z [{s.z_dim}], on {s.device}; {self.folder})")

    def encode(self, x: Any, *labels: Any, mean: bool = False, generator: torch.Generator | None = None) -> Any:
        """z ~ q(z|x). ``mean``: the code at zero noise: a Gaussian encoder's mean (the VAE's, the
        image encoders'); for an encoder that takes noise as an input (ALI's MLP), its code at
        noise 0, not the average of its draws; a deterministic encoder's code (BiGAN's) as it is.
        ``generator``: where the noise is drawn. ``labels``: what a conditional strategy encodes
        with (y)."""
        return self._apply(self.strategy.encode, "encode", x, self.strategy.x_shape, labels, mean, generator)

    def decode(self, z: Any, *labels: Any) -> Any:
        """The generator's x for z (its mean, for likelihood-based decoders)."""
        return self._apply(self.strategy.decode, "decode", z, (self.strategy.z_dim,), labels)

    def reconstruct(self, x: Any, *, mean: bool = False, generator: torch.Generator | None = None) -> Any:
        """decode(encode(x)), ``mean`` and ``generator`` as ``encode`` takes them."""
        return self._apply(self.strategy.reconstruct, "reconstruct", x, self.strategy.x_shape, (), mean, generator)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples x = decode(z), z ~ p(z), as a tensor; ``generator``: where z is drawn."""
        with self._noise(False, generator):
            return self.strategy.sample(n)

    @contextlib.contextmanager
    def _noise(self, mean: bool, generator: torch.Generator | None) -> Iterator[None]:
        import torch

        from ..nets.noise import GeneratorNoise, ZeroNoise, noise_from

        if generator is not None and not isinstance(generator, torch.Generator):
            raise UserError(f"generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)), "
                            f"got {type(generator).__name__}")
        if not mean and generator is None:
            yield
            return
        with noise_from(self.strategy, ZeroNoise() if mean else GeneratorNoise(generator)):
            yield

    def _apply(self, function: Callable, what: str, value: Any, shape: tuple[int, ...], labels: tuple = (),
               mean: bool = False, generator: torch.Generator | None = None) -> Any:
        """``function`` on ``value`` (a batch or one point of ``shape``, a tensor or numpy's), given back alike."""
        import numpy as np
        import torch

        parameter = next(self.strategy.parameters())
        is_tensor = isinstance(value, torch.Tensor)
        try:
            t = value if is_tensor else torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError, RuntimeError):
            raise UserError(f"{what} takes a tensor or an array of numbers, got {type(value).__name__}") from None
        t = t.to(parameter.device, parameter.dtype)
        one = tuple(t.shape) == tuple(shape)
        if not one and tuple(t.shape[1:]) != tuple(shape):
            dims = ", ".join(map(str, shape))
            raise UserError(f"{what} takes a batch [n, {dims}] or one point [{dims}], got shape {list(t.shape)}")
        ys = [torch.as_tensor(y if isinstance(y, torch.Tensor) else np.asarray(y), device=parameter.device)
              for y in labels]
        with self._noise(mean, generator):
            out = function(t.unsqueeze(0) if one else t, *(y.reshape(1) if one else y for y in ys))
        out = out[0] if one else out
        return out if is_tensor else out.detach().cpu().numpy()


def load_run(run_dir: str | Path, device: str = "cpu", averaged: bool = True) -> LoadedRun:
    """A trained run (``LoadedRun``: the strategy in eval mode on ``device``), from its folder
    alone (config.json and checkpoint.pt; no training data), or from an export folder
    (``izoo export``): ``encode``, ``decode``, ``sample(n)``, ``reconstruct``.

    ``averaged``: where the run kept a weight average (``ema_decay``), load the averaged encoder and
    decoder, as its evaluation did (an export holds the weights it was exported with)."""
    from ..core.environment import resolve_device
    from ..engine.train import build_strategy

    run_dir = Path(run_dir)
    config = RunConfig.from_dict(read_json_object(run_dir / "config.json", "it is not a run folder of izoo"))
    model = read_json_object(run_dir / "model.json", "train the run again") if (run_dir / "model.json").is_file() else {}
    strategy = build_strategy(config, shapes=model or None)
    if is_export(run_dir):
        _load_weights(strategy, read_export_weights(run_dir), run_dir)
    else:
        checkpoint = load_torch(run_dir / "checkpoint.pt")
        phases = strategy.phases(config.train.steps)
        if checkpoint["phase"] < len(phases):
            raise UserError(f"{run_dir} holds an unfinished run (phase {checkpoint['phase'] + 1} of {len(phases)}); "
                            "finish it with --resume first")
        strategy.load_state_dict(checkpoint["model"])
        if averaged and checkpoint.get("ema"):
            strategy.load_state_dict(checkpoint["ema"], strict=False)
    strategy = strategy.to(resolve_device(device)).eval()
    for p in strategy.parameters():
        p.requires_grad_(False)
    return LoadedRun(strategy, config, run_dir)


def _load_weights(strategy, state: dict, where: Path) -> None:
    try:
        strategy.load_state_dict(state)
    except RuntimeError as exc:  # missing, unexpected or mis-shaped weights
        raise UserError(f"{where}: the weights do not fit the networks its config.json builds "
                        f"({str(exc).splitlines()[0]}); export the run again") from None


__all__ = ["FORMATS", "LoadedRun", "export_run", "is_export", "load_run", "read_export_weights"]
