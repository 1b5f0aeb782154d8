"""The one training loop: devices, optimisers, AMP, checkpoints, resume, logging, progress.

Strategies only return losses per optimiser group (``Strategy.step``); this module turns them into
gradients and Adam steps (``update``). All groups of a phase are updated from the same minibatch and
the same forward pass (as in the ALI and BiGAN code), each group's gradient taken w.r.t. its own
parameters.

``train_runs`` trains a list of runs through their phases. How the runs share a model is its
layout (``layouts.py``): ``OneRun`` trains one run's own strategy (the "single" engine: torch's global generator
for noise, torch's Adam), ``stacked.Stack`` K seeds of a strategy as one model (the "stacked"
engine). The loop itself (minibatches, updates, learning-rate schedule, weight average, logging,
divergence checks, curve points, checkpoints, shared phases) is the same for both.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import torch

from .averaging import WeightAverage
from . import distributed
from .layouts import Layout, OneRun
from .compiling import compiled_networks
from ..core.config import RunConfig, lr_factor, validate_train
from ..data import build_dataset, labelled_subset
from ..core.environment import resolve_device
from ..core.errors import Diverged, Stopped, UserError, did_you_mean
from ..nets import ARCHITECTURES, NetworkFactory
from .run_folder import RunFolder
from ..core.seeding import generator
from ..strategies import STRATEGIES, Phase, StepOutput, Strategy, params_of

#: told (phase, step, steps of the phase, logged means) at each log step
Progress = Callable[[str, int, int, dict[str, float]], None]
#: (strategy, config, dataset, held-out (x, labels), phase, step, seconds) -> tidy curve rows
Evaluator = Callable[[Strategy, RunConfig, Any, tuple[torch.Tensor, torch.Tensor], str, int, float], list[dict[str, Any]]]


class Watcher(Protocol):
    """Watches runs' curves: told each curve point's rows, asked after every run of a stack has
    reported at that point whether a run should stop there (a tuner's pruner)."""

    def report(self, config: RunConfig, rows: list[dict[str, Any]], point: int) -> None:
        """``rows``: the run's curve point number ``point`` (1, 2, ...; a resumed run goes on counting)."""

    def stopped(self, config: RunConfig) -> bool: ...


def build_strategy(config: RunConfig, x_dim: int | None = None, *, shapes: dict[str, Any] | None = None) -> Strategy:
    """The strategy of a config, with its networks initialised from the config's seed.

    Networks need one sample's shape (images: (C, H, W)) and, for conditional models, the number
    of classes: ``shapes`` ({"x_shape", "n_classes"}, as a run folder's model.json records them),
    or else the dataset's."""
    cls = STRATEGIES.get(config.method)
    if shapes is None:
        data = build_dataset(config.data)
        shapes = {"x_shape": data.x_shape, "n_classes": data.n_classes}
    x_shape = tuple(shapes["x_shape"])
    arch = ARCHITECTURES.get(config.arch.name)(config.arch, math.prod(x_shape), x_shape, shapes["n_classes"])
    options = resolve_options(cls, config.options)
    return cls(NetworkFactory(arch, config.seed), options)


def resolve_options(cls: type[Strategy], given: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls.Options)}
    unknown = sorted(set(given) - names)
    if unknown:
        valid = ", ".join(sorted(names)) or "none"
        raise UserError(f"strategy {cls.name}: unknown option(s) {', '.join(unknown)}"
                        f"{did_you_mean(unknown[0], sorted(names))}; valid: {valid}")
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
    """One run being trained: its config, folder (``RunFolder``), dataset and strategy, and where
    its training stands. ``run()`` trains it alone; ``stacked.StackedTrainer`` trains several."""

    def __init__(self, config: RunConfig, run_dir: str | Path, shared_dir: str | Path | None = None,
                 progress: Progress | None = None, evaluator: Evaluator | None = None,
                 watcher: Watcher | None = None) -> None:
        """``evaluator`` computes the metrics of the curve points (``train.eval_every``); the
        experiment layer passes its final evaluation (``experiment.evaluate.curve_rows``).
        ``watcher`` sees those rows and may stop the run at a curve point."""
        validate_train(config.train)
        if config.train.eval_every and evaluator is None:
            raise ValueError("train.eval_every needs an evaluator for the curve points")
        self.config = config
        self.processes = distributed.size()  # > 1: trained data-parallel; process 0 writes
        self.folder = RunFolder(config, run_dir, shared_dir, read_only=not distributed.is_writer())
        self.progress = progress
        self.evaluator = evaluator
        self.watcher = watcher
        self.device = resolve_device(config.train.device)
        self.dataset = build_dataset(config.data)
        self.strategy = build_strategy(config, self.dataset.x_dim).to(self.device)
        if getattr(self.strategy, "labelled_examples", 0):  # semi-supervised: its labelled subset
            self.strategy.attach_labelled(*labelled_subset(self.dataset, self.strategy.labelled_examples, config.seed))
        # where training stands: the phase and step to go on from, and the checkpoint to resume
        # mid-phase from (optimiser, generator and average states)
        self.start_phase, self.start_step = 0, 0
        self.resume_state: dict[str, Any] | None = None
        self.reused: list[str] = []  # shared phases loaded instead of trained
        self.diverged: Diverged | None = None
        self.stopped: Stopped | None = None  # by the watcher, at a curve point
        self.averaged: dict[str, torch.Tensor] | None = None  # the last phase's weight average (ema_decay)
        self._seconds_before = 0.0  # training time of earlier processes (from the checkpoint)
        self._held_out: tuple[torch.Tensor, torch.Tensor] | None = None  # built at the first curve point
        self._started = time.perf_counter()

    @property
    def run_dir(self) -> Path:
        return self.folder.path

    def run(self) -> TrainResult:
        """Train this run alone (the single engine); a divergence or a stop is raised."""
        if self.config.train.engine == "stacked":
            raise ValueError("a stacked-engine config is trained by inference_zoo.engine.stack.engine.StackedTrainer")
        layout = distributed.DataParallel if self.processes > 1 else OneRun
        outcome = train_runs([self], layout, self.progress)[0]
        if isinstance(outcome, (Diverged, Stopped)):
            raise outcome
        return outcome

    def begin(self) -> None:
        """Start the run folder, or resume from its checkpoint."""
        model = {"x_shape": list(self.dataset.x_shape), "n_classes": self.dataset.n_classes}
        checkpoint = self.folder.begin(self.device, [p.name for p in self.strategy.phases(self.config.train.steps)], model)
        if checkpoint is not None:
            self.strategy.load_state_dict(checkpoint["model"])
            self._seconds_before = float(checkpoint.get("seconds", 0.0))
            self.averaged = checkpoint.get("ema") or None
            self.start_phase, self.start_step = checkpoint["phase"], checkpoint["step"]
            self.resume_state = checkpoint if checkpoint["step"] else None

    def start_clock(self) -> None:
        self._started = time.perf_counter()

    def elapsed(self) -> float:
        """Training wall time so far, earlier processes' included (a resumed run's checkpoint tells)."""
        return self._seconds_before + time.perf_counter() - self._started

    def train_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The seed's training set (x, labels), on the device: minibatches are drawn on the device."""
        cfg = self.config
        train_x, train_y = self.dataset.sample(cfg.data.n_train, generator(cfg.seed, "data", "train", device="cpu"))
        return train_x.to(self.device), train_y.to(self.device)

    def reuse_shared(self, index: int, phase: Phase) -> bool:
        """Load a shared phase (the GAN of latent/posthoc) trained earlier for this seed, if any."""
        if not self.folder.load_shared(phase, self.strategy):
            return False
        self.checkpoint(index + 1, 0, {}, {})
        return True

    def save_shared(self, phase: Phase) -> None:
        self.folder.save_shared(phase, self.strategy)

    def checkpoint(self, phase_index: int, step: int, optimizers: dict[str, Any], rng: dict[str, Any],
                   ema: dict[str, torch.Tensor] | None = None) -> None:
        self.folder.checkpoint(self.strategy.state_dict(), phase_index, step, optimizers, rng, self.elapsed(), ema)

    def log(self, record: dict[str, Any]) -> None:
        self.folder.log(record)

    def evaluate_point(self, phase: str, step: int) -> None:
        """Append the evaluator's metrics for the weights now in ``self.strategy`` to curve.csv."""
        if self.folder.read_only:
            return
        if self._held_out is None:
            self._held_out = held_out_split(self.config)
        rows = self.evaluator(self.strategy, self.config, self.dataset, self._held_out, phase, step, self.elapsed())
        point = self.folder.add_curve_rows(rows)
        if self.watcher is not None:
            self.watcher.report(self.config, rows, point)

    def ended(self) -> bool:
        return self.diverged is not None or self.stopped is not None


def train_runs(runs: list[Trainer], layout: type[Layout], progress: Progress | None = None
               ) -> list[TrainResult | Diverged | Stopped]:
    """Train every run through its phases; return each one's TrainResult, or the Diverged or
    Stopped that ended it early (the others go on; it keeps its last good checkpoint)."""
    for run in runs:
        run.begin()
    layout.begin(runs)
    data = [run.train_data() for run in runs]
    t0 = time.perf_counter()
    for run in runs:
        run.start_clock()
    for index, phase in enumerate(runs[0].strategy.phases(runs[0].config.train.steps)):
        todo = []
        for i, run in enumerate(runs):
            if run.ended() or run.start_phase > index:
                continue
            if run.start_step == 0 and run.reuse_shared(index, phase):
                run.reused.append(phase.name)
                continue
            todo.append(i)
        # runs resumed at different steps (only after a crash between their checkpoint writes)
        # train as separate groups, each from its own step
        for step in sorted({runs[i].start_step for i in todo}):
            group = [i for i in todo if runs[i].start_step == step]
            _train_phase(index, phase, [runs[i] for i in group], [data[i] for i in group], layout, progress)
        for i in todo:
            run = runs[i]
            if not run.ended():
                run.save_shared(phase)
            run.start_phase, run.start_step, run.resume_state = index + 1, 0, None
    seconds = time.perf_counter() - t0
    return [run.diverged or run.stopped or TrainResult(run.strategy, seconds, run.reused, run.averaged) for run in runs]


def _train_phase(index: int, phase: Phase, runs: list[Trainer], data: list[tuple[torch.Tensor, torch.Tensor]],
                 layout: type[Layout], progress: Progress | None) -> None:
    """Train ``runs`` through one phase; a divergence or a stop goes on without those runs."""
    while runs:
        ended, finished = _train_group(index, phase, runs, data, layout, progress)
        if finished:
            return
        keep = [i for i in range(len(runs)) if i not in ended]
        runs, data = [runs[i] for i in keep], [data[i] for i in keep]


def _train_group(index: int, phase: Phase, runs: list[Trainer], data: list[tuple[torch.Tensor, torch.Tensor]],
                 layout_cls: type[Layout], progress: Progress | None) -> tuple[list[int], bool]:
    """Train from the runs' common step; stop at the phase end or when runs diverge.

    Returns (positions of the diverged or stopped runs, whether the phase is finished). Those
    keep their last checkpoint; the others' ``start_step``/``resume_state`` say where to go on from.
    """
    cfg = runs[0].config.train
    device = runs[0].device
    layout = layout_cls(runs, phase, data)
    model = layout.model
    groups = {g: params_of(model, names) for g, names in phase.groups.items()}
    optimizers = layout.optimizers(groups)
    members = [run.config.train for run in runs]  # a stack's members may differ in MEMBER_SETTINGS
    decays = [t.ema_decay for t in members]
    average = WeightAverage(model, decays, stacked=layout.stacked) if any(decays) else None
    scheduled = any(t.lr_schedule != "constant" for t in members)
    start = runs[0].start_step
    if start:
        layout.resume(optimizers, groups, average)
    uses_labels = type(model).uses_labels
    running: dict[str, torch.Tensor] = {}
    diverged: list[int] = []
    finished = start >= phase.steps
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if cfg.amp else contextlib.nullcontext())
    with _phase_mode(model, phase) as train_mode, compiled_networks(model, cfg.compile, device):
        for step in range(start, phase.steps):
            if scheduled:
                layout.set_lr_factors(optimizers, [lr_factor(t, step, phase.steps) for t in members])
            x, y = layout.batch()
            with autocast:
                out = model.step(phase.name, x, *((y,) if uses_labels else ()))
            update(out, groups, optimizers, running, layout.reduce_gradients)
            if average is not None:
                average.update()
            layout.after_update()
            done = step + 1
            if done % cfg.log_every and done != phase.steps:
                continue
            diverged = _log_point(phase, done, runs, running, groups, layout, progress)
            running = {}
            finished = done == phase.steps
            curve_point = eval_due(cfg, done, phase.steps)
            saving = finished or done % cfg.checkpoint_every == 0 or bool(diverged)
            if saving or curve_point:
                _hand_back(index, phase, done, runs, diverged, layout, optimizers, average, train_mode,
                           curve_point=curve_point, saving=saving)
            if curve_point and not finished:
                diverged += _stopped_by_watchers(index, phase, done, runs, diverged)
            if diverged:
                break
    return diverged, finished


@contextlib.contextmanager
def _phase_mode(model: Strategy, phase: Phase) -> Iterator[Callable[[], None]]:
    """The model in training mode with the phase's frozen networks in eval mode and without
    gradients (restored after); yields the function that sets the modes again (after an evaluation)."""
    def train_mode() -> None:
        model.train()
        for name in phase.frozen:
            getattr(model, name).eval()

    train_mode()
    for name in phase.frozen:
        getattr(model, name).requires_grad_(False)
    try:
        yield train_mode
    finally:
        for name in phase.frozen:
            getattr(model, name).requires_grad_(True)


def _log_point(phase: Phase, done: int, runs: list[Trainer], running: dict[str, torch.Tensor],
               groups: dict[str, list[torch.nn.Parameter]], layout: Layout, progress: Progress | None) -> list[int]:
    """At a log step: each run's mean losses since the last one into its log, the live runs' mean
    to ``progress``; returns the positions of the runs that diverged (``_check_finite``)."""
    cfg = runs[0].config.train
    n = cfg.log_every if done % cfg.log_every == 0 else done % cfg.log_every
    means = {key: [float(v) / n for v in total.reshape(-1).tolist()]
             for key, total in layout.reduce_logs(running).items()}
    diverged = _check_finite(phase, done, runs, means, groups, layout)
    for j, run in enumerate(runs):
        if j not in diverged:
            run.log({"phase": phase.name, "step": done, **{key: v[j] for key, v in means.items()}})
    alive = [j for j in range(len(runs)) if j not in diverged]
    if progress is not None and alive:
        progress(phase.name, done, phase.steps, {key: sum(v[j] for j in alive) / len(alive)
                                                 for key, v in means.items()})
    return diverged


def _hand_back(index: int, phase: Phase, done: int, runs: list[Trainer], diverged: list[int], layout: Layout,
               optimizers: dict[str, torch.optim.Optimizer], average: WeightAverage | None,
               train_mode: Callable[[], None], *, curve_point: bool, saving: bool) -> None:
    """Each surviving run's state, as its own run's: evaluated at a curve point (before the
    checkpoint, so a resume never skips it), then checkpointed where ``saving``; its resume point
    kept in ``start_step``/``resume_state``."""
    finished = done == phase.steps
    state = layout.state()
    opt_states = {g: opt.state_dict() for g, opt in optimizers.items()} if saving and not finished else {}
    averages = average.state() if average is not None else None
    for j, run in enumerate(runs):
        if j in diverged:
            continue
        live = layout.run_state(state, j)
        ema = layout.run_state(averages, j) if averages is not None and run.config.train.ema_decay else None
        if curve_point:
            run.strategy.load_state_dict({**live, **(ema or {})})  # evaluated as at the end
            run.evaluate_point(phase.name, done)
        run.strategy.load_state_dict(live)  # a stacked run's own strategy holds its weights
        if curve_point:
            train_mode()
        if not saving:
            continue
        if finished:  # a phase boundary needs no optimiser or generator state
            run.averaged = ema
            run.checkpoint(index + 1, 0, {}, {}, ema=ema)
            run.start_step, run.resume_state = 0, None
            continue
        run_opt = {g: layout.run_optimizer_state(opt_states[g], g, j) for g in optimizers}
        rng = layout.rng_state(j)
        if done % run.config.train.checkpoint_every == 0:
            run.checkpoint(index, done, run_opt, rng, ema=ema)
        run.start_step, run.resume_state = done, {"optimizers": run_opt, "rng": rng, "ema": ema}


def _check_finite(phase: Phase, step: int, runs: list[Trainer], means: dict[str, list[float]],
                  groups: dict[str, list[torch.nn.Parameter]], layout: Layout) -> list[int]:
    """Positions of runs with a non-finite logged mean or weight; marks them diverged."""
    bad: dict[int, list[str]] = {}
    for key, values in means.items():
        for j, v in enumerate(values):
            if not math.isfinite(v):
                bad.setdefault(j, []).append(key)
    for g, params in groups.items():
        for j, ok in enumerate(layout.finite(params)):
            if not ok:
                bad.setdefault(j, []).append(f"parameters of {'+'.join(phase.groups[g])}")
    for j, what in bad.items():
        c = runs[j].config
        runs[j].diverged = Diverged.non_finite(c.label, c.seed, what, f"in phase {phase.name!r} by step {step}")
    return sorted(bad)


def _stopped_by_watchers(index: int, phase: Phase, done: int, runs: list[Trainer], diverged: list[int]) -> list[int]:
    """Positions of the runs their watchers stop at this curve point; marks them stopped."""
    out = []
    for j, run in enumerate(runs):
        if j in diverged or run.watcher is None or not run.watcher.stopped(run.config):
            continue
        before = sum(p.steps for p in run.strategy.phases(run.config.train.steps)[:index])
        c = run.config
        run.stopped = Stopped(f"{c.label} seed {c.seed}: stopped at step {done} of phase {phase.name!r}", before + done)
        out.append(j)
    return out


def eval_due(train: Any, done: int, phase_steps: int) -> bool:
    """Whether a curve point is due after ``done`` steps of a phase (``train.eval_every``)."""
    return bool(train.eval_every) and (done % train.eval_every == 0 or done == phase_steps)


def update(out: StepOutput, groups: dict[str, list[torch.nn.Parameter]], optimizers: dict[str, torch.optim.Optimizer],
           running: dict[str, Any], reduce_gradients: Callable[[dict[str, list[torch.nn.Parameter]]], None] | None = None
           ) -> None:
    """One training update, for every layout: each group's gradient of its own loss (summed over
    stacked members, whose parameters are disjoint) from the one forward pass, then every group's
    optimiser step; adds the step's losses and logs to ``running``."""
    ordered = list(groups)
    for i, g in enumerate(ordered):
        grads = torch.autograd.grad(out.losses[g].sum(), groups[g], retain_graph=i < len(ordered) - 1, allow_unused=True)
        for p, grad in zip(groups[g], grads):
            p.grad = grad
    if reduce_gradients is not None:
        reduce_gradients(groups)
    for opt in optimizers.values():
        opt.step()
    for key, value in {**{f"loss_{g}": out.losses[g] for g in ordered}, **out.logs}.items():
        running[key] = running.get(key, 0.0) + value.detach().float()
