"""One run's folder and its checkpoint format.

    config.json     the resolved config          env.json      versions, commit, device, command
    model.json      what the networks were built for (one sample's shape, the classes)
    checkpoint.pt   weights, optimiser and generator states, the weight average, training seconds
    metrics.jsonl   the training log (a line per log step)
    curve.csv       metrics at chosen steps (train.eval_every)
    tensorboard/    the log and the curve points as TensorBoard events (train.tensorboard)
    (train.mlflow)  the config, the log, the curve points, the rows and the files as an MLflow run
                    (mlflow_sink.py: a tracking store, not a file here)
    results.csv, samples.npz   written by the experiment layer once the run is evaluated

A checkpoint holds plain tensors and JSON only (loaded with ``weights_only=True``). Phases with a
``shared_key`` (the GAN of latent/posthoc) are cached in a shared folder, named by everything
that decides their weights, so every strategy that declares the key reuses them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from ..core.config import RunConfig, refuse_changed_config
from ..core.environment import environment
from ..core.errors import UserError
from ..core.fileio import load_torch, save_torch, write_json
from ..core.results import read_curve, write_curve
from ..strategies import Phase, Strategy
from .mlflow_sink import MlflowRun, check_uri

CHECKPOINT_FORMAT = 1


class RunFolder:
    def __init__(self, config: RunConfig, run_dir: str | Path, shared_dir: str | Path | None = None,
                 read_only: bool = False) -> None:
        """``read_only``: a data-parallel run's other processes read the checkpoint, write nothing."""
        self.config = config
        self.read_only = read_only
        self.path = Path(run_dir)
        self.shared_dir = Path(shared_dir) if shared_dir is not None else None
        self._events = None  # the TensorBoard writer, opened at the first record
        self._mlflow: MlflowRun | None = None  # the MLflow run, opened by begin()
        if config.train.tensorboard:
            tensorboard_writer_class()  # a missing package is one line now, not at the first log step
        if config.train.mlflow:
            check_uri(config.train.mlflow)  # likewise a missing mlflow package or a URI MLflow does not take

    def begin(self, device: torch.device, phase_order: list[str], model: dict[str, Any]) -> dict[str, Any] | None:
        """Start the folder, or open it for a resume: the checkpoint to resume from, or None.

        A resume drops the log lines and curve points written after the checkpoint, so a resumed
        run logs each step once; a checkpoint of another config is refused, naming the keys."""
        checkpoint_path = self.path / "checkpoint.pt"
        if self.read_only:
            return load_torch(checkpoint_path) if checkpoint_path.exists() else None
        self.path.mkdir(parents=True, exist_ok=True)
        for leftover in self.path.glob(".*.tmp"):  # an atomic write cut short by a kill
            leftover.unlink(missing_ok=True)
        if not checkpoint_path.exists():
            write_json(self.path / "config.json", self.config.saved_dict())
            write_json(self.path / "model.json", model)  # so the run loads without its data (api.load_run)
            write_json(self.path / "env.json", environment(device))
            (self.path / "metrics.jsonl").write_text("")
            self._open_mlflow(fresh=True)
            return None
        checkpoint = load_torch(checkpoint_path)
        refuse_changed_config(json.loads(checkpoint["config"]), self.config, self.path)
        if not (self.path / "model.json").is_file():  # a run started before the file existed
            write_json(self.path / "model.json", model)
        self._truncate(phase_order, checkpoint["phase"], checkpoint["step"])
        self._open_mlflow(fresh=False)
        return checkpoint

    def _open_mlflow(self, fresh: bool) -> None:
        """train.mlflow: the folder's MLflow run, before the run trains (a bad store is one line now)."""
        if self.config.train.mlflow:
            self._mlflow = MlflowRun.open(self.config, self.path, fresh=fresh)

    def checkpoint(self, model: dict[str, torch.Tensor], phase_index: int, step: int, optimizers: dict[str, Any],
                   rng: dict[str, Any], seconds: float, ema: dict[str, torch.Tensor] | None = None) -> None:
        """Write checkpoint.pt: at a phase boundary (step 0) no optimiser or generator state is needed."""
        if self.read_only:
            return
        save_torch(self.path / "checkpoint.pt", {
            "format": CHECKPOINT_FORMAT,
            "phase": phase_index,
            "step": step,
            "model": model,
            "optimizers": optimizers,
            "rng": rng,
            "seconds": seconds,
            "ema": ema or {},  # train.ema_decay: the weight average (averaging.py)
            "config": json.dumps(self.config.saved_dict(), sort_keys=True),
        })

    def log(self, record: dict[str, Any]) -> None:
        if self.read_only:
            return
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        self._add_events(f"train/{record['phase']}", record["step"],
                         {k: v for k, v in record.items() if k not in ("phase", "step")})

    def add_curve_rows(self, rows: list[dict[str, Any]]) -> int:
        """Append one curve point's rows; return how many points the run's curve now holds (a
        resumed run counts the points it kept from before)."""
        if self.read_only:
            return 0
        path = self.path / "curve.csv"
        curve = (read_curve(path) if path.is_file() else []) + rows
        write_curve(path, curve)
        for row in rows:
            self._add_events(f"eval/{row['phase']}", row["step"], {row["metric"]: row["value"]})
        return len({(str(r["phase"]), int(r["step"])) for r in curve})

    def _add_events(self, prefix: str, step: int, values: dict[str, Any]) -> None:
        """TensorBoard scalars and MLflow metrics ``prefix/name`` at ``step`` (steps count within a
        phase, as in the log)."""
        if self._mlflow is not None:
            self._mlflow.log(prefix, step, values)
        if not self.config.train.tensorboard:
            return
        if self._events is None:
            self._events = tensorboard_writer_class()(log_dir=str(self.path / "tensorboard"))
        for name, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._events.add_scalar(f"{prefix}/{name}", value, step)
        self._events.flush()

    def _truncate(self, phase_order: list[str], phase_index: int, step: int) -> None:
        path = self.path / "metrics.jsonl"
        if not path.exists():
            if phase_index or step:
                raise UserError(f"{path} is missing: the training log up to the checkpoint (phase "
                                f"{phase_index}, step {step}) is lost; restore it, or delete {self.path} "
                                "to train the run again")
            return
        order = {name: i for i, name in enumerate(phase_order)}
        kept = []
        lines = path.read_text(errors="replace").splitlines()
        for n, line in enumerate(lines):
            try:
                record = json.loads(line)
                i = order.get(record.get("phase"), -1)
                keep = i < phase_index or (i == phase_index and record["step"] <= step)
            except (json.JSONDecodeError, AttributeError, KeyError, TypeError):
                if n == len(lines) - 1:  # a line cut short by a kill: written after the checkpoint
                    continue
                raise UserError(f"{path} line {n + 1} is damaged; restore the file, or delete {self.path} "
                                "to train the run again") from None
            if keep:
                kept.append(line)
        path.write_text("".join(line + "\n" for line in kept))
        curve = self.path / "curve.csv"
        if curve.is_file():
            write_curve(curve, [r for r in read_curve(curve)
                                if (order.get(r["phase"], -1), r["step"]) <= (phase_index, step)])

    # --- shared phases ----------------------------------------------------------------------
    def shared_path(self, phase: Phase) -> Path | None:
        if phase.shared_key is None or self.shared_dir is None:
            return None
        cfg = self.config
        t = cfg.train
        identity = {
            "key": phase.shared_key, "steps": phase.steps, "seed": cfg.seed,
            "data": dataclasses.asdict(cfg.data), "arch": dataclasses.asdict(cfg.arch),
            "train": {"batch_size": t.batch_size, "lr": t.lr, "beta1": t.beta1, "beta2": t.beta2, "amp": t.amp},
        }
        if t.engine != "single":  # keeps the names of caches written before engines existed
            identity["train"]["engine"] = t.engine
        if t.compile:  # likewise for caches written before the option existed
            identity["train"]["compile"] = True
        if t.lr_schedule != "constant":  # a schedule changes the phase's weights (an average does not)
            identity["train"].update(lr_schedule=t.lr_schedule, lr_floor=t.lr_floor)
            if t.lr_decay_start:
                identity["train"]["lr_decay_start"] = t.lr_decay_start
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        return self.shared_dir / f"{phase.name}-seed{cfg.seed}-{digest}.pt"

    def load_shared(self, phase: Phase, strategy: Strategy) -> bool:
        """Load a shared phase trained earlier for this seed into ``strategy``, if there is one."""
        path = self.shared_path(phase)
        if path is None or not path.is_file():
            return False
        states = load_torch(path)
        if set(states) != set(phase_state(phase, strategy)):
            raise UserError(f"shared phase file {path} does not match strategy {self.config.method}")
        strategy.load_state_dict(states, strict=False)
        return True

    def save_shared(self, phase: Phase, strategy: Strategy) -> None:
        path = self.shared_path(phase)
        if path is not None and not path.is_file() and not self.read_only:
            save_torch(path, phase_state(phase, strategy))


def phase_state(phase: Phase, strategy: Strategy) -> dict[str, torch.Tensor]:
    """The weights (and buffers) a phase trains, keyed as in the strategy's state dict."""
    trained = {name for names in phase.groups.values() for name in names}
    return {k: v for k, v in strategy.state_dict().items() if k.split(".")[0] in trained}


def tensorboard_writer_class() -> type:
    """torch's TensorBoard ``SummaryWriter``; it needs the tensorboard package (an optional extra)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError("--tensorboard needs the tensorboard package: pip install 'inference-zoo[tensorboard]'") from None
    return SummaryWriter
