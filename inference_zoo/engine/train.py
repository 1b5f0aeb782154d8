"""The one training loop: devices, optimisers, AMP, checkpoints, resume, logging, progress.

Strategies only return losses per optimiser group (``Strategy.step``); this module turns them into
gradients and Adam steps. All groups of a phase are updated from the same minibatch and the same
forward pass (as in the ALI and BiGAN code), each group's gradient taken w.r.t. its own parameters.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ..strategies import noise
from .averaging import WeightAverage
from .compiling import compiled_networks
from ..core.config import RunConfig, lr_factor, refuse_changed_config, validate_train
from ..data import build_dataset
from ..core.environment import environment, resolve_device
from ..core.errors import Diverged, UserError
from ..core.fileio import load_torch, save_torch, write_json
from ..core.results import read_curve, write_curve
from ..nets import ARCHITECTURES, NetworkFactory
from ..core.seeding import derive_seed, generator
from ..strategies import STRATEGIES, Phase, StepOutput, Strategy, params_of

CHECKPOINT_FORMAT = 1

#: (strategy, config, dataset, held-out (x, labels), phase, step, seconds) -> tidy curve rows
Evaluator = Callable[[Strategy, RunConfig, Any, tuple[torch.Tensor, torch.Tensor], str, int, float], list[dict[str, Any]]]


def build_strategy(config: RunConfig, x_dim: int) -> Strategy:
    """The strategy of a config, with its networks initialised from the config's seed."""
    cls = STRATEGIES.get(config.method)
    data = build_dataset(config.data)  # images: networks need (C, H, W); conditional models the classes
    arch = ARCHITECTURES.get(config.arch.name)(config.arch, x_dim, data.x_shape, data.n_classes)
    options = resolve_options(cls, config.options)
    return cls(NetworkFactory(arch, config.seed), options)


def resolve_options(cls: type[Strategy], given: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls.Options)}
    unknown = sorted(set(given) - names)
    if unknown:
        valid = ", ".join(sorted(names)) or "none"
        raise UserError(f"strategy {cls.name}: unknown option(s) {', '.join(unknown)}; valid: {valid}")
    try:
        return cls.Options(**given)
    except (TypeError, ValueError) as exc:  # plugins may validate options with plain ValueError
        raise UserError(f"strategy {cls.name}: {exc}") from None


def held_out_split(config: RunConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed held-out set of a seed (the same for every method)."""
    dataset = build_dataset(config.data)
    return dataset.held_out(config.data.n_test, generator(config.seed, "data", "test", device="cpu"))


@dataclass
class TrainResult:
    strategy: Strategy
    seconds: float
    reused_phases: list[str]
    averaged: dict[str, torch.Tensor] | None = None  # train.ema_decay: the weights to evaluate


def evaluated_strategy(result: TrainResult) -> Strategy:
    """The strategy as evaluated: with its averaged weights where the run keeps an average."""
    if result.averaged:
        result.strategy.load_state_dict(result.averaged, strict=False)
    return result.strategy


class Trainer:
    """Trains one run into ``run_dir``; resumes from ``run_dir/checkpoint.pt`` when present.

    ``shared_dir`` (optional) holds phases with a ``shared_key`` (the GAN of latent/posthoc) so
    they are trained once per seed and reused.
    """

    def __init__(self, config: RunConfig, run_dir: str | Path, shared_dir: str | Path | None = None,
                 progress: Callable[[str, int, int, dict[str, float]], None] | None = None,
                 evaluator: Evaluator | None = None) -> None:
        """``evaluator`` computes the metrics of the curve points (``train.eval_every``); the
        experiment layer passes its final evaluation (``experiment.evaluate.curve_rows``)."""
        validate_train(config.train)
        self.config = config
        self.run_dir = Path(run_dir)
        self.shared_dir = Path(shared_dir) if shared_dir is not None else None
        self.progress = progress
        if config.train.eval_every and evaluator is None:
            raise ValueError("train.eval_every needs an evaluator for the curve points")
        self.evaluator = evaluator
        self.device = resolve_device(config.train.device)
        self.dataset = build_dataset(config.data)
        self.strategy = build_strategy(config, self.dataset.x_dim).to(self.device)
        self._seconds_before = 0.0  # training time of earlier processes (from the checkpoint)
        self.averaged: dict[str, torch.Tensor] | None = None  # the last phase's weight average (ema_decay)
        self._held_out: tuple[torch.Tensor, torch.Tensor] | None = None  # built at the first curve point
        self._started = time.perf_counter()

    def start_clock(self) -> None:
        self._started = time.perf_counter()

    def elapsed(self) -> float:
        """Training wall time so far, earlier processes' included (a resumed run's checkpoint tells)."""
        return self._seconds_before + time.perf_counter() - self._started

    # ----------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        if self.config.train.engine == "stacked":
            raise ValueError("a stacked-engine config is trained by inference_zoo.engine.stacked.StackedTrainer")
        start_phase, start_step, checkpoint = self.begin()
        train = self.train_data()
        t0 = time.perf_counter()
        self.start_clock()
        reused: list[str] = []
        for index, phase in enumerate(self.strategy.phases(self.config.train.steps)):
            if index < start_phase:
                continue
            if start_step == 0 and self.reuse_shared(index, phase):
                reused.append(phase.name)
                continue
            with compiled_networks(self.strategy, self.config.train.compile, self.device):
                self._train_phase(index, phase, train, start_step, checkpoint)
            self.save_shared(phase)
            start_step, checkpoint = 0, None
        return TrainResult(self.strategy, time.perf_counter() - t0, reused, self.averaged)

    def begin(self) -> tuple[int, int, dict[str, Any] | None]:
        """Start the run folder, or resume it: (phase index, step, mid-phase checkpoint or None)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.run_dir.glob(".*.tmp"):  # an atomic write cut short by a kill
            leftover.unlink(missing_ok=True)
        start_phase, start_step, checkpoint, resumed = self._load_resume_point()
        if not resumed:
            write_json(self.run_dir / "config.json", self.config.to_dict())
            write_json(self.run_dir / "env.json", environment(self.device))
            (self.run_dir / "metrics.jsonl").write_text("")
        return start_phase, start_step, checkpoint

    def train_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The seed's training set (x, labels), on the device: minibatches are drawn on the device."""
        cfg = self.config
        train_x, train_y = self.dataset.sample(cfg.data.n_train, generator(cfg.seed, "data", "train", device="cpu"))
        return train_x.to(self.device), train_y.to(self.device)

    def reuse_shared(self, index: int, phase: Phase) -> bool:
        """Load a shared phase (the GAN of latent/posthoc) trained earlier for this seed, if any."""
        cache = self._shared_path(phase)
        if cache is None or not cache.is_file():
            return False
        self._load_shared(phase, cache)
        self.checkpoint(index + 1, 0, {}, {})
        return True

    def save_shared(self, phase: Phase) -> None:
        cache = self._shared_path(phase)
        if cache is not None and not cache.is_file():
            save_torch(cache, self._phase_state(phase))

    # ----------------------------------------------------------------------------------------
    def _train_phase(self, index: int, phase: Phase, train: tuple[torch.Tensor, torch.Tensor], start_step: int,
                     checkpoint: dict[str, Any] | None) -> None:
        cfg, strategy = self.config, self.strategy
        groups = {g: params_of(strategy, names) for g, names in phase.groups.items()}
        optimizers = {g: self._adam(params) for g, params in groups.items()}
        data_rng = generator(cfg.seed, "batches", phase.name, device=self.device)
        torch.manual_seed(derive_seed(cfg.seed, "phase", phase.name))
        average = WeightAverage(strategy, cfg.train.ema_decay) if cfg.train.ema_decay else None
        if checkpoint is not None:
            for g, opt in optimizers.items():
                opt.load_state_dict(checkpoint["optimizers"][g])
            _set_rng_state(checkpoint["rng"], data_rng)
            if average is not None:
                average.load(checkpoint["ema"])

        strategy.train()
        for name in phase.frozen:
            getattr(strategy, name).eval().requires_grad_(False)
        autocast = (torch.autocast(self.device.type, dtype=torch.bfloat16) if cfg.train.amp
                    else contextlib.nullcontext())
        running: dict[str, torch.Tensor] = {}
        train_x, train_y = train
        schedule = cfg.train.lr_schedule != "constant"
        for step in range(start_step, phase.steps):
            if schedule:
                for opt in optimizers.values():
                    for group in opt.param_groups:
                        group["lr"] = cfg.train.lr * lr_factor(cfg.train, step, phase.steps)
            idx = torch.randint(train_x.shape[0], (cfg.train.batch_size,), device=self.device, generator=data_rng)
            with autocast:
                out = strategy.step(phase.name, train_x[idx], *((train_y[idx],) if strategy.uses_labels else ()))
            update(out, groups, optimizers, running)
            if average is not None:
                average.update()
            done = step + 1
            if done % cfg.train.log_every == 0 or done == phase.steps:
                n = cfg.train.log_every if done % cfg.train.log_every == 0 else done % cfg.train.log_every
                means = {k: float(v) / n for k, v in running.items()}
                running = {}
                self._check_finite(phase, done, means, groups)
                self.log({"phase": phase.name, "step": done, **means})
                if self.progress is not None:
                    self.progress(phase.name, done, phase.steps, means)
            if eval_due(cfg.train, done, phase.steps):  # before the checkpoint: a resume never skips it
                with average.applied() if average is not None else contextlib.nullcontext():
                    self.evaluate_point(phase.name, done)
                strategy.train()
                for name in phase.frozen:
                    getattr(strategy, name).eval()
            if done % cfg.train.checkpoint_every == 0 or done == phase.steps:
                ema = average.state() if average is not None else None
                if done == phase.steps:
                    self.averaged = ema
                    self.checkpoint(index + 1, 0, {}, {}, ema=ema)
                else:
                    self.checkpoint(index, done, {g: opt.state_dict() for g, opt in optimizers.items()},
                                    _rng_state(data_rng), ema=ema)
        for name in phase.frozen:
            getattr(strategy, name).requires_grad_(True)

    def _adam(self, params: list[torch.nn.Parameter]) -> torch.optim.Adam:
        t = self.config.train
        return torch.optim.Adam(params, lr=t.lr, betas=(t.beta1, t.beta2), foreach=True)

    def _check_finite(self, phase: Phase, step: int, means: dict[str, float], groups) -> None:
        bad = [k for k, v in means.items() if not math.isfinite(v)]
        for g, params in groups.items():
            if any(not torch.isfinite(p).all() for p in params):
                bad.append(f"parameters of {'+'.join(phase.groups[g])}")
        if bad:
            raise Diverged.non_finite(self.config.label, self.config.seed, bad, f"in phase {phase.name!r} by step {step}")

    def log(self, record: dict[str, Any]) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    # --- checkpoints ----------------------------------------------------------------------
    def checkpoint(self, phase_index: int, step: int, optimizers: dict[str, Any], rng: dict[str, Any],
                   model: dict[str, torch.Tensor] | None = None, ema: dict[str, torch.Tensor] | None = None) -> None:
        """Write checkpoint.pt: at a phase boundary (step 0) no optimiser or RNG state is needed."""
        state = {
            "format": CHECKPOINT_FORMAT,
            "phase": phase_index,
            "step": step,
            "model": self.strategy.state_dict() if model is None else model,
            "optimizers": optimizers,
            "rng": rng,
            "seconds": self.elapsed(),
            "ema": ema or {},  # train.ema_decay: the weight average (averaging.py)
            "config": json.dumps(self.config.to_dict(), sort_keys=True),
        }
        save_torch(self.run_dir / "checkpoint.pt", state)

    def _load_resume_point(self) -> tuple[int, int, dict[str, Any] | None, bool]:
        """(phase index, step, mid-phase checkpoint or None, whether this is a resumed run)."""
        path = self.run_dir / "checkpoint.pt"
        if not path.exists():
            return 0, 0, None, False
        checkpoint = load_torch(path)
        saved = json.loads(checkpoint["config"])
        refuse_changed_config(saved, self.config, self.run_dir)
        self.strategy.load_state_dict(checkpoint["model"])
        self._seconds_before = float(checkpoint.get("seconds", 0.0))
        self.averaged = checkpoint.get("ema") or None
        self._truncate_log(checkpoint["phase"], checkpoint["step"])
        return checkpoint["phase"], checkpoint["step"], checkpoint if checkpoint["step"] else None, True

    def _truncate_log(self, phase_index: int, step: int) -> None:
        """Drop log lines written after the checkpoint, so a resumed run logs each step once."""
        path = self.run_dir / "metrics.jsonl"
        if not path.exists():
            if phase_index or step:
                raise UserError(f"{path} is missing: the training log up to the checkpoint (phase "
                                f"{phase_index}, step {step}) is lost; restore it, or delete {self.run_dir} "
                                "to train the run again")
            return
        order = {p.name: i for i, p in enumerate(self.strategy.phases(self.config.train.steps))}
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
                raise UserError(f"{path} line {n + 1} is damaged; restore the file, or delete {self.run_dir} "
                                "to train the run again") from None
            if keep:
                kept.append(line)
        path.write_text("".join(line + "\n" for line in kept))
        curve = self.run_dir / "curve.csv"
        if curve.is_file():
            write_curve(curve, [r for r in read_curve(curve)
                                if (order.get(r["phase"], -1), r["step"]) <= (phase_index, step)])

    # --- quality against steps (train.eval_every) ------------------------------------------
    def evaluate_point(self, phase: str, step: int) -> None:
        """Append the evaluator's metrics for the weights now in ``self.strategy`` to curve.csv."""
        path = self.run_dir / "curve.csv"
        earlier = read_curve(path) if path.is_file() else []
        if self._held_out is None:
            self._held_out = held_out_split(self.config)
        with noise.one_run():  # a stacked engine's member noise streams are for training only
            rows = self.evaluator(self.strategy, self.config, self.dataset, self._held_out, phase, step, self.elapsed())
        write_curve(path, earlier + rows)

    # --- shared phases ----------------------------------------------------------------------
    def _shared_path(self, phase: Phase) -> Path | None:
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
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        return self.shared_dir / f"{phase.name}-seed{cfg.seed}-{digest}.pt"

    def _phase_state(self, phase: Phase) -> dict[str, torch.Tensor]:
        """The weights (and buffers) a phase trains, keyed as in the strategy's state dict."""
        trained = {name for names in phase.groups.values() for name in names}
        return {k: v for k, v in self.strategy.state_dict().items() if k.split(".")[0] in trained}

    def _load_shared(self, phase: Phase, path: Path) -> None:
        states = load_torch(path)
        expected = self._phase_state(phase)
        if set(states) != set(expected):
            raise UserError(f"shared phase file {path} does not match strategy {self.config.method}")
        self.strategy.load_state_dict(states, strict=False)


def eval_due(train: Any, done: int, phase_steps: int) -> bool:
    """Whether a curve point is due after ``done`` steps of a phase (``train.eval_every``)."""
    return bool(train.eval_every) and (done % train.eval_every == 0 or done == phase_steps)


def update(out: StepOutput, groups: dict[str, list[torch.nn.Parameter]], optimizers: dict[str, torch.optim.Optimizer],
           running: dict[str, Any]) -> None:
    """One training update, shared by both engines: each group's gradient of its own loss (summed
    over stacked members, whose parameters are disjoint) from the one forward pass, then every
    group's optimiser step; adds the step's losses and logs to ``running``."""
    ordered = list(groups)
    for i, g in enumerate(ordered):
        grads = torch.autograd.grad(out.losses[g].sum(), groups[g], retain_graph=i < len(ordered) - 1, allow_unused=True)
        for p, grad in zip(groups[g], grads):
            p.grad = grad
    for opt in optimizers.values():
        opt.step()
    for key, value in {**{f"loss_{g}": out.losses[g] for g in ordered}, **out.logs}.items():
        running[key] = running.get(key, 0.0) + value.detach().float()


def _rng_state(data_rng: torch.Generator) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "data": data_rng.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], data_rng: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    data_rng.set_state(state["data"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
