"""The stacked engine: K runs of one strategy (same config but the seed, the ``MEMBER_SETTINGS``
and the strategy's ``member_options``) trained as one model.

Each member is the run it replaces: its own initial weights (built by its own ``NetworkFactory``),
training set, minibatch indices (its own data generator) and noise (its own generator, seeded as
the single engine seeds the global one), its own BatchNorm statistics, Adam state and learning
rate. Only the arithmetic is shared: batched matmuls, torch's Adam over each member's
slice at its own rate (``adam.py``), one discriminator pass over real and
fake pairs, and one backward chain through that discriminator for both players' losses
(``backward.py``). A member's numbers do not depend on its stack-mates: they equal the
same seed trained alone in this engine bit for bit (``tests/test_stack_independence.py``; what
it takes is in ``strategies.base.member_rows`` and ``adam.py``). They match the single
engine's to float tolerance only, since the shared chain sums in another order.

Each member keeps a normal run folder: its checkpoint holds the member's own state dict (loadable
by the single-run strategy), optimiser states, generator states and log, written at the same
steps as a single run's. A member whose loss or weights turn non-finite is dropped at that log
step, keeping its last good checkpoint (a single run would stop there); the others go on.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
from pathlib import Path

import torch

from ...nets.noise import MemberNoise, use_noise
from ...core import __version__
from ...core.config import ENGINES, RunConfig
from ...core.environment import cpu_model, environment
from ...core.errors import UserError, did_you_mean
from ...core.fileio import write_json
from .adam import MemberAdam
from ...core.seeding import derive_seed, generator
from ...core.threads import follow_free_cores
from .backward import both_players_logits
from .layers import (NotStackable, member_optimizer_state, member_state, stack_strategies,
                       stacked_optimizer_state, stacked_state)
from ...strategies import STRATEGIES, Phase, params_of
from ...strategies.adversarial import JointPass
from ...core.errors import Diverged, Stopped
from ..layouts import Layout
from ..train import Evaluator, Progress, Trainer, TrainResult, Watcher, build_strategy, train_runs

#: Members above this share no speed-up on small models (the matmuls are already large) and only
#: add memory; a larger group is trained as several stacks.
MAX_MEMBERS = 32


#: the training settings each member of a stack holds on its own: its optimiser step (``adam.py``),
#: its schedule's factor and its weight average (``averaging.py``)
MEMBER_SETTINGS = ("lr", "beta1", "beta2", "lr_schedule", "lr_decay_start", "lr_floor", "ema_decay")


def stack_key(config: RunConfig) -> str:
    """Runs with equal keys can share a stack: everything but the seed, the ``MEMBER_SETTINGS``,
    the strategy's ``member_options`` (up to what stack-mates must share), the variant naming
    them and the device is equal."""
    d = config.to_dict()
    d.pop("seed")
    d.pop("variant")
    d["train"].pop("device")
    for name in MEMBER_SETTINGS:
        d["train"].pop(name)
    cls = STRATEGIES.get(config.method)
    if cls.member_options:
        defaults = dataclasses.asdict(cls.Options())
        for name, shared in cls.member_options.items():
            value = d["options"].pop(name, defaults[name])
            d["options"][f"{name} (shared)"] = shared(value) if shared is not None else None
    return repr(sorted(d.items()))


def can_stack(config: RunConfig, x_dim: int) -> str | None:
    """None if the config's strategy and architecture can be stacked, else the reason why not.

    A plugin strategy's ``stackable = True`` is a promise the engine checks before relying on it
    (``promise_check``)."""
    try:
        strategy = build_strategy(config, x_dim)
        stack_strategies([strategy, strategy])
    except NotStackable as exc:
        return str(exc)
    if not type(strategy).__module__.startswith("inference_zoo."):
        return promise_check(config)
    return None


#: steps of the plugin check: enough for every loss term, noise draw and Adam state to have acted
PROMISE_STEPS = 6
_promises: dict[str, str | None] = {}


def _promise_key(config: RunConfig) -> str:
    """The plugin's class and source, the settings that shape its arithmetic, the machine."""
    from ...strategies import STRATEGIES

    cls = STRATEGIES.get(config.method)
    try:
        source = hashlib.sha256(Path(inspect.getsourcefile(cls) or "").read_bytes()).hexdigest()[:16]
    except (OSError, TypeError):
        source = "unknown"
    d = config.saved_dict()  # where the runs are logged is no part of it
    d.pop("seed")
    d.pop("variant")
    d["train"] = {k: v for k, v in d["train"].items() if k not in ("steps", "lr", "device", "log_every",
                                                                   "checkpoint_every", "eval_every")}
    machine = (cpu_model(), torch.__version__, torch.get_num_threads())
    return hashlib.sha256(repr((__version__, PROMISE_STEPS, cls.__module__, cls.__qualname__, source, sorted(d.items()), machine))
                          .encode()).hexdigest()[:24]


def _promise_cache() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "inference_zoo" / "stacking_checks.json"


def promise_check(config: RunConfig) -> str | None:
    """None when a plugin's seed trained in a stack of two equals the same seed trained alone over
    ``PROMISE_STEPS`` steps, bit for bit; else the reason, in one line. Checked once per plugin
    source, settings and machine (cached in ``~/.cache/inference_zoo/stacking_checks.json``)."""
    key = _promise_key(config)
    if key in _promises:
        return _promises[key]
    path = _promise_cache()
    try:
        cached = json.loads(path.read_text())
        cached = cached if isinstance(cached, dict) else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        cached = {}
    if key in cached and (cached[key] is None or isinstance(cached[key], str)):
        _promises[key] = cached[key]
        return cached[key]
    reason = _check_promise(config)
    _promises[key] = cached[key] = reason
    try:
        write_json(path, cached)
    except OSError:
        pass  # a read-only home: checked again next time, nothing lost
    return reason


def _check_promise(config: RunConfig) -> str | None:
    import tempfile

    train = dataclasses.replace(config.train, steps=PROMISE_STEPS, log_every=PROMISE_STEPS, eval_every=0,
                                checkpoint_every=PROMISE_STEPS, engine="stacked", device="cpu", mlflow="")
    configs = [dataclasses.replace(config, seed=s, train=train) for s in (0, 1)]
    with tempfile.TemporaryDirectory(prefix="izoo-stack-check-") as tmp:
        root = Path(tmp)
        try:
            StackedTrainer(configs, [root / "stack0", root / "stack1"], root / "shared-stack").run()
            StackedTrainer(configs[1:], [root / "alone1"], root / "shared-alone").run()
            stacked = torch.load(root / "stack1" / "checkpoint.pt", weights_only=True)["model"]
            alone = torch.load(root / "alone1" / "checkpoint.pt", weights_only=True)["model"]
        except Exception as exc:  # noqa: BLE001 - third-party code: any failure is a broken promise
            return f"its stacked training failed a {PROMISE_STEPS}-step check: {type(exc).__name__}: {exc}"
    differ = [k for k in alone if not (alone[k].shape == stacked[k].shape and (
        torch.equal(alone[k], stacked[k]) if not alone[k].is_floating_point()
        else torch.allclose(alone[k], stacked[k], rtol=0.0, atol=0.0, equal_nan=True)))]
    if differ:
        return (f"stackable = True, but a seed in a stack of two differs from itself alone after "
                f"{PROMISE_STEPS} steps ({differ[0]}{' and more' if len(differ) > 1 else ''})")
    return None


ENGINE_CHOICES = ("auto", *ENGINES)


def resolve_engine(config: RunConfig, requested: str, x_dim: int) -> RunConfig:
    """The config with ``train.engine`` set: "auto" is "stacked" where possible, else "single"."""
    if requested not in ENGINE_CHOICES:
        raise UserError(f"engine must be one of {', '.join(ENGINE_CHOICES)}, got {requested!r}"
                        f"{did_you_mean(requested, ENGINE_CHOICES)}")
    engine = requested
    if requested != "single":
        reason = can_stack(config, x_dim)
        if reason is not None and requested == "stacked":
            raise UserError(f"{config.method} cannot use the stacked engine: {reason}")
        engine = "single" if reason is not None else "stacked"
    return dataclasses.replace(config, train=dataclasses.replace(config.train, engine=engine))


class Stack(Layout):
    """K runs of one strategy stacked into one model: batched layers, per-member noise generators
    and data generators, torch's Adam on each member's slice at its own settings, one discriminator
    pass and backward chain for both players."""

    stacked = True

    def __init__(self, runs: list[Trainer], phase: Phase, data: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.runs = runs
        self.train = runs[0].config.train
        self.device = runs[0].device
        strategies = [run.strategy for run in runs]
        self.model = stack_strategies(strategies).to(self.device)
        # one discriminator pass over both sides, one backward chain through it for both players
        self.model.joint_pass = JointPass(batch_axis=1, both_players=both_players_logits)
        self.shapes = {key: v.shape for key, v in strategies[0].state_dict().items()}
        self.group_shapes = {g: [p.shape for p in params_of(strategies[0], names)] for g, names in phase.groups.items()}
        self.lrs = [run.config.train.lr for run in runs]
        self.betas = [(run.config.train.beta1, run.config.train.beta2) for run in runs]
        seeds = [run.config.seed for run in runs]
        self.data_rngs = [generator(s, "batches", phase.name, device=self.device) for s in seeds]
        self.noise_rngs = [torch.Generator(device=self.device).manual_seed(derive_seed(s, "phase", phase.name))
                           for s in seeds]
        use_noise(self.model, MemberNoise(self.noise_rngs))
        self.train_x = torch.stack([x for x, _ in data])
        self.train_y = torch.stack([y for _, y in data])
        self.rows = torch.arange(len(runs), device=self.device)[:, None]

    @staticmethod
    def begin(runs: list[Trainer]) -> None:
        """Note in each member's env.json which seeds (and learning rates) it was stacked with,
        and from where: the runs that go on from its phase and step (``train_runs`` trains runs
        resumed at other steps as stacks of their own)."""
        for run in runs:
            mates = [r for r in runs if (r.start_phase, r.start_step) == (run.start_phase, run.start_step)]
            seeds = [r.config.seed for r in mates]
            lrs = [r.config.train.lr for r in mates]
            path = run.run_dir / "env.json"
            try:  # informational: an unreadable one (a kill mid-edit by hand) is started afresh
                env = json.loads(path.read_text()) if path.is_file() else {}
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                env = None
            if not isinstance(env, dict):
                env = environment(run.device)
            env["stacks"] = env.get("stacks", []) + [{"seeds": seeds, "lrs": lrs, "phase": run.start_phase,
                                                      "step": run.start_step}]
            write_json(path, env)

    def optimizers(self, groups):
        return {g: MemberAdam(params, self.lrs, self.betas, kernel=_fused_or_foreach(self.device))
                for g, params in groups.items()}

    def resume(self, optimizers, groups, average):
        states = [run.resume_state for run in self.runs]
        for g, opt in optimizers.items():
            opt.load_state_dict(stacked_optimizer_state([s["optimizers"][g] for s in states], groups[g]))
        if average is not None:  # a member without a weight average keeps its slice at its live weights
            live = self.state()
            emas = [s["ema"] or {k: v for k, v in self.run_state(live, j).items() if k in average.shadow}
                    for j, s in enumerate(states)]
            average.load(stacked_state(emas, average.shadow))
        for s, d_rng, n_rng in zip(states, self.data_rngs, self.noise_rngs):
            d_rng.set_state(s["rng"]["data"])
            n_rng.set_state(s["rng"]["noise"])

    def set_lr_factors(self, optimizers, factors):
        for opt in optimizers.values():
            opt.scales = factors

    def batch(self):
        n_train = self.train_x.shape[1]
        idx = torch.stack([torch.randint(n_train, (self.train.batch_size,), device=self.device, generator=g)
                           for g in self.data_rngs])
        return self.train_x[self.rows, idx], self.train_y[self.rows, idx]

    def after_update(self):
        follow_free_cores()

    def finite(self, params):
        return torch.stack([torch.isfinite(p).flatten(1).all(1) for p in params]).all(0).tolist()

    def state(self):
        return {key: v.detach() for key, v in self.model.state_dict().items()}

    def run_state(self, state, j):
        return member_state(state, j, {name: self.shapes[name] for name in state})

    def run_optimizer_state(self, state, group, j):
        return member_optimizer_state(state, j, self.group_shapes[group], self.lrs[j], self.betas[j])

    def rng_state(self, j):
        return {"data": self.data_rngs[j].get_state(), "noise": self.noise_rngs[j].get_state()}


class StackedTrainer:
    """Trains configs (equal ``stack_key``, ``train.engine == "stacked"``) into their run folders
    as one stack."""

    def __init__(self, configs: list[RunConfig], run_dirs: list[str | Path], shared_dir: str | Path | None = None,
                 progress: Progress | None = None, evaluator: Evaluator | None = None,
                 watcher: Watcher | None = None) -> None:
        if len({stack_key(c) for c in configs}) != 1:
            raise ValueError("a stack needs configs that differ only in their seeds, MEMBER_SETTINGS and member options")
        if any(c.train.engine != "stacked" for c in configs):
            raise ValueError("StackedTrainer trains engine='stacked' configs")
        from ..distributed import size

        if size() > 1:
            raise UserError("the stacked engine trains on one process; a data-parallel run needs --engine single")
        self.trainers = [Trainer(c, d, shared_dir, evaluator=evaluator, watcher=watcher) for c, d in zip(configs, run_dirs)]
        self.progress = progress

    def run(self) -> list[TrainResult | Diverged | Stopped]:
        """Train every member; return each one's TrainResult, or the Diverged or Stopped that
        ended it early."""
        return train_runs(self.trainers, Stack, self.progress)


def _fused_or_foreach(device: torch.device) -> dict[str, bool]:
    """One fused Adam kernel over the stacked tensors where this torch build has it."""
    try:
        torch.optim.Adam([torch.zeros(1, device=device, requires_grad=True)], fused=True)
    except (RuntimeError, ValueError):
        return {"foreach": True}
    return {"fused": True}
