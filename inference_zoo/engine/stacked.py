"""The stacked engine: K runs of one strategy (same config but the seed and learning rate) trained
as one model.

Each member is the run it replaces: its own initial weights (built by its own ``NetworkFactory``),
training set, minibatch indices (its own data generator) and noise (its own generator, seeded as
the single engine seeds the global one), its own BatchNorm statistics, Adam state and learning
rate. Only the arithmetic is shared: batched matmuls, torch's Adam over each member's
slice at its own rate (``member_adam.py``), one discriminator pass over real and
fake pairs, and one backward chain through that discriminator for both players' losses
(``shared_backward.py``). A member's numbers do not depend on its stack-mates: they equal the
same seed trained alone in this engine bit for bit (``tests/test_stack_independence.py``; what
it takes is in ``strategies.base.member_rows`` and ``member_adam.py``). They match the single
engine's to float tolerance only, since the shared chain sums in another order.

Each member keeps a normal run folder: its checkpoint holds the member's own state dict (loadable
by the single-run strategy), optimiser states, generator states and log, written at the same
steps as a single run's. A member whose loss or weights turn non-finite is dropped at that log
step, keeping its last good checkpoint (a single run would stop there); the others go on.
"""
from __future__ import annotations

import contextlib
import dataclasses
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
from ..core.config import ENGINES, RunConfig, lr_factor
from ..core.environment import environment
from ..core.errors import UserError
from ..core.fileio import write_json
from .member_adam import MemberAdam
from ..core.seeding import derive_seed, generator
from ..core.threads import follow_free_cores
from .shared_backward import both_players_logits
from .stacking import (NotStackable, member_optimizer_state, member_state, stack_strategies,
                       stacked_optimizer_state, stacked_state)
from ..strategies import Phase, params_of
from ..strategies.adversarial import one_discriminator_pass
from ..core.errors import Diverged
from .train import Evaluator, Trainer, TrainResult, build_strategy, eval_due, update

#: Members above this share no speed-up on small models (the matmuls are already large) and only
#: add memory; a larger group is trained as several stacks.
MAX_MEMBERS = 32

GroupProgress = Callable[[str, int, int, dict[str, float]], None]


def stack_key(config: RunConfig) -> str:
    """Runs with equal keys can share a stack: everything but the seed, the learning rate (each
    member steps with its own, ``member_adam.py``), the variant naming it and the device is equal."""
    d = config.to_dict()
    d.pop("seed")
    d.pop("variant")
    d["train"].pop("device")
    d["train"].pop("lr")
    return repr(sorted(d.items()))


def can_stack(config: RunConfig, x_dim: int) -> str | None:
    """None if the config's strategy and architecture can be stacked, else the reason why not."""
    try:
        strategy = build_strategy(config, x_dim)
        stack_strategies([strategy, strategy])
    except NotStackable as exc:
        return str(exc)
    return None


ENGINE_CHOICES = ("auto", *ENGINES)


def resolve_engine(config: RunConfig, requested: str, x_dim: int) -> RunConfig:
    """The config with ``train.engine`` set: "auto" is "stacked" where possible, else "single"."""
    if requested not in ENGINE_CHOICES:
        raise UserError(f"engine must be one of {', '.join(ENGINE_CHOICES)}, got {requested!r}")
    engine = requested
    if requested != "single":
        reason = can_stack(config, x_dim)
        if reason is not None and requested == "stacked":
            raise UserError(f"{config.method} cannot use the stacked engine: {reason}")
        engine = "single" if reason is not None else "stacked"
    return dataclasses.replace(config, train=dataclasses.replace(config.train, engine=engine))


@dataclass
class _Member:
    trainer: Trainer
    start_phase: int
    start_step: int
    checkpoint: dict[str, Any] | None
    diverged: Diverged | None = None
    reused: list[str] | None = None


class StackedTrainer:
    """Trains configs (equal ``stack_key``, ``train.engine == "stacked"``) into their run folders."""

    def __init__(self, configs: list[RunConfig], run_dirs: list[str | Path], shared_dir: str | Path | None = None,
                 progress: GroupProgress | None = None, evaluator: Evaluator | None = None) -> None:
        if len({stack_key(c) for c in configs}) != 1:
            raise ValueError("a stack needs configs that differ only in their seeds and learning rates")
        if any(c.train.engine != "stacked" for c in configs):
            raise ValueError("StackedTrainer trains engine='stacked' configs")
        self.configs = configs
        self.trainers = [Trainer(c, d, shared_dir, evaluator=evaluator) for c, d in zip(configs, run_dirs)]
        self.progress = progress
        self.device = self.trainers[0].device

    def run(self) -> list[TrainResult | Diverged]:
        """Train every member; return each one's TrainResult, or the Diverged that stopped it."""
        members = [_Member(t, *t.begin(), reused=[]) for t in self.trainers]
        self._record_stack(members)
        data = [t.train_data() for t in self.trainers]
        t0 = time.perf_counter()
        for t in self.trainers:
            t.start_clock()
        for index, phase in enumerate(self.trainers[0].strategy.phases(self.configs[0].train.steps)):
            todo = []
            for i, m in enumerate(members):
                if m.diverged is not None or m.start_phase > index:
                    continue
                if m.start_step == 0 and m.trainer.reuse_shared(index, phase):
                    m.reused.append(phase.name)
                    continue
                todo.append(i)
            # members resumed at different steps (only after a crash between their checkpoint
            # writes) train as separate stacks, each from its own step
            for step in sorted({members[i].start_step for i in todo}):
                self._train_phase(index, phase, [members[i] for i in todo if members[i].start_step == step],
                                  [data[i] for i in todo if members[i].start_step == step])
            for i in todo:
                m = members[i]
                if m.diverged is None:
                    m.trainer.save_shared(phase)
                m.start_phase, m.start_step, m.checkpoint = index + 1, 0, None
        seconds = time.perf_counter() - t0
        return [m.diverged or TrainResult(m.trainer.strategy, seconds, m.reused, m.trainer.averaged) for m in members]

    def _record_stack(self, members: list[_Member]) -> None:
        """Note in each member's env.json which seeds (and learning rates) it was stacked with, and
        from where."""
        seeds = [m.trainer.config.seed for m in members]
        lrs = [m.trainer.config.train.lr for m in members]
        for m in members:
            path = m.trainer.run_dir / "env.json"
            try:  # informational: an unreadable one (a kill mid-edit by hand) is started afresh
                env = json.loads(path.read_text()) if path.is_file() else {}
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                env = None
            if not isinstance(env, dict):
                env = environment(self.device)
            env["stacks"] = env.get("stacks", []) + [{"seeds": seeds, "lrs": lrs, "phase": m.start_phase,
                                                      "step": m.start_step}]
            write_json(path, env)

    # ----------------------------------------------------------------------------------------
    def _train_phase(self, index: int, phase: Phase, members: list[_Member],
                     data: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Train ``members`` through one phase; a divergence restarts the loop without the diverged."""
        while members:
            diverged, finished = self._train_stack(index, phase, members, data)
            if finished:
                return
            keep = [i for i in range(len(members)) if i not in diverged]
            members, data = [members[i] for i in keep], [data[i] for i in keep]

    def _train_stack(self, index: int, phase: Phase, members: list[_Member],
                     data: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[list[int], bool]:
        """Train from the members' common step; stop at the phase end or when members diverge.

        Returns (positions of the diverged members, whether the phase is finished). Diverged
        members keep their last checkpoint; survivors' ``start_step``/``checkpoint`` say where to
        go on from.
        """
        cfg = self.configs[0].train
        device = self.device
        k = len(members)
        strategies = [m.trainer.strategy for m in members]
        stacked = stack_strategies(strategies).to(device)
        shapes = {key: v.shape for key, v in strategies[0].state_dict().items()}
        groups = {g: params_of(stacked, names) for g, names in phase.groups.items()}
        member_shapes = {g: [p.shape for p in params_of(strategies[0], names)] for g, names in phase.groups.items()}
        lrs = [m.trainer.config.train.lr for m in members]
        optimizers = {g: _adam(params, lrs, (cfg.beta1, cfg.beta2), device) for g, params in groups.items()}
        average = WeightAverage(stacked, cfg.ema_decay, stacked=True) if cfg.ema_decay else None
        ema_shapes = {name: shapes[name] for name in average.shadow} if average is not None else {}
        seeds = [m.trainer.config.seed for m in members]
        data_rngs = [generator(s, "batches", phase.name, device=device) for s in seeds]
        noise_rngs = [torch.Generator(device=device).manual_seed(derive_seed(s, "phase", phase.name)) for s in seeds]
        start = members[0].start_step
        if start:
            for g, opt in optimizers.items():
                opt.load_state_dict(stacked_optimizer_state([m.checkpoint["optimizers"][g] for m in members], groups[g]))
            if average is not None:
                average.load(stacked_state([m.checkpoint["ema"] for m in members], average.shadow))
            for m, d_rng, n_rng in zip(members, data_rngs, noise_rngs):
                d_rng.set_state(m.checkpoint["rng"]["data"])
                n_rng.set_state(m.checkpoint["rng"]["noise"])

        train_x = torch.stack([x for x, _ in data])
        train_y = torch.stack([y for _, y in data])
        n_train, rows = train_x.shape[1], torch.arange(k, device=device)[:, None]
        stacked.train()
        for name in phase.frozen:
            getattr(stacked, name).eval().requires_grad_(False)
        uses_labels = type(stacked).uses_labels
        ordered = list(groups)
        running: dict[str, torch.Tensor] = {}
        diverged: list[int] = []
        finished = start >= phase.steps
        autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if cfg.amp else contextlib.nullcontext())
        with (noise.member_generators(noise_rngs), compiled_networks(stacked, cfg.compile, device),
              one_discriminator_pass(batch_axis=1, both_players=both_players_logits)):
            for step in range(start, phase.steps):
                if cfg.lr_schedule != "constant":
                    for opt in optimizers.values():
                        opt.scale = lr_factor(cfg, step, phase.steps)
                idx = torch.stack([torch.randint(n_train, (cfg.batch_size,), device=device, generator=g)
                                   for g in data_rngs])
                x = train_x[rows, idx]
                with autocast:
                    out = stacked.step(phase.name, x, *((train_y[rows, idx],) if uses_labels else ()))
                update(out, groups, optimizers, running)
                if average is not None:
                    average.update()
                follow_free_cores()
                done = step + 1
                if done % cfg.log_every and done != phase.steps:
                    continue
                n = cfg.log_every if done % cfg.log_every == 0 else done % cfg.log_every
                means = {key: [float(x) / n for x in v.tolist()] for key, v in running.items()}
                running = {}
                diverged = self._check_members(phase, done, members, means, groups)
                for j, m in enumerate(members):
                    if j not in diverged:
                        m.trainer.log({"phase": phase.name, "step": done, **{key: v[j] for key, v in means.items()}})
                if self.progress is not None:
                    alive = [j for j in range(k) if j not in diverged]
                    if alive:
                        self.progress(phase.name, done, phase.steps,
                                      {key: sum(v[j] for j in alive) / len(alive) for key, v in means.items()})
                finished = done == phase.steps
                curve_point = eval_due(cfg, done, phase.steps)
                saving = finished or done % cfg.checkpoint_every == 0 or bool(diverged)
                if not (saving or curve_point):
                    continue
                # a checkpoint step, or members to drop: write each survivor's state as its own run's
                model = {key: v.detach() for key, v in stacked.state_dict().items()}
                opt_states = {g: opt.state_dict() for g, opt in optimizers.items()} if saving and not finished else {}
                averages = average.state() if average is not None else None
                for j, m in enumerate(members):
                    if j in diverged:
                        continue
                    live = member_state(model, j, shapes)
                    ema = member_state(averages, j, ema_shapes) if averages is not None else None
                    if curve_point:
                        m.trainer.strategy.load_state_dict({**live, **(ema or {})})  # evaluated as at the end
                        m.trainer.evaluate_point(phase.name, done)
                    m.trainer.strategy.load_state_dict(live)
                    if not saving:
                        continue
                    if finished:  # a phase boundary needs no optimiser or generator state
                        m.trainer.averaged = ema
                        m.trainer.checkpoint(index + 1, 0, {}, {}, ema=ema)
                        m.start_step, m.checkpoint = 0, None
                        continue
                    state = {g: member_optimizer_state(opt_states[g], j, member_shapes[g], lrs[j]) for g in ordered}
                    rng = {"data": data_rngs[j].get_state(), "noise": noise_rngs[j].get_state()}
                    if done % cfg.checkpoint_every == 0:
                        m.trainer.checkpoint(index, done, state, rng, ema=ema)
                    m.start_step, m.checkpoint = done, {"optimizers": state, "rng": rng, "ema": ema}
                if diverged:
                    break
        return diverged, finished

    def _check_members(self, phase: Phase, step: int, members: list[_Member], means: dict[str, list[float]],
                       groups: dict[str, list[torch.nn.Parameter]]) -> list[int]:
        """Positions of members with a non-finite logged mean or weight; marks them diverged."""
        bad: dict[int, list[str]] = {}
        for key, values in means.items():
            for j, v in enumerate(values):
                if not math.isfinite(v):
                    bad.setdefault(j, []).append(key)
        for g, params in groups.items():
            finite = torch.stack([torch.isfinite(p).flatten(1).all(1) for p in params]).all(0).tolist()
            for j, ok in enumerate(finite):
                if not ok:
                    bad.setdefault(j, []).append(f"parameters of {'+'.join(phase.groups[g])}")
        for j, what in bad.items():
            c = members[j].trainer.config
            members[j].diverged = Diverged.non_finite(c.label, c.seed, what, f"in phase {phase.name!r} by step {step}")
        return sorted(bad)


def _adam(params: list[torch.nn.Parameter], lrs: list[float], betas: tuple[float, float],
          device: torch.device) -> torch.optim.Optimizer:
    """Torch's Adam on each member's slice (fused where this build has it), at the member's rate."""
    return MemberAdam(params, lrs, betas, kernel=_fused_or_foreach(device))


def _fused_or_foreach(device: torch.device) -> dict[str, bool]:
    """One fused Adam kernel over the stacked tensors where this torch build has it."""
    try:
        torch.optim.Adam([torch.zeros(1, device=device, requires_grad=True)], fused=True)
    except (RuntimeError, ValueError):
        return {"foreach": True}
    return {"fused": True}
