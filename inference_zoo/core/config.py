"""Typed run configuration. Defaults live in code; a run's folder holds the fully resolved config.

``RunConfig.to_dict``/``from_dict`` round-trip through JSON; unknown keys are rejected so a typo
in a saved or hand-edited config can never be silently ignored.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import UserError, did_you_mean


def coerce_value(value: str, default: Any, where: str) -> Any:
    """``value`` (command-line text) as the type of ``default``; true/false/1/0/yes/no for bools."""
    if isinstance(default, bool):  # bool("false") is True
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        raise UserError(f"{where}: expected true or false, got {value!r}")
    try:
        return type(default)(value)
    except ValueError:
        kind = {int: "an integer", float: "a number"}.get(type(default), f"a {type(default).__name__}")
        raise UserError(f"{where}: expected {kind}, got {value!r}") from None


def setting(default: Any, help: str, *, sweep: bool = False, flag: bool = True, study: bool = True,
            identity: bool = True, saved: bool = True, before: Any = dataclasses.MISSING) -> Any:
    """A config field that is a user-facing setting, declared once (read by ``core/settings.py``).

    ``help``: its help text everywhere. ``sweep``: a list of values sweeps it (each value a variant
    of every method). ``flag``: it has a flag of its own on ``izoo compare`` and ``izoo study`` (every
    setting takes ``--set name=value``). ``study``: a study accepts it (data sizes and networks are
    the study's). ``identity``: it is part of a run's identity (a resume with another value is
    refused; the device and the log sink are not). ``saved``: written into a run's config.json and
    checkpoint (an MLflow tracking URI is not: it says where a run was watched from, and a study's
    config digests stay those of runs without it). ``before``: the value runs saved before the
    field existed used, filled in when such a config is read (default: the field's default).
    """
    metadata = {"help": help, "sweep": sweep, "flag": flag, "study": study, "identity": identity, "saved": saved}
    if before is not dataclasses.MISSING:
        metadata["before"] = before
    return field(default=default, metadata=metadata)


@dataclass
class DataConfig:
    """Which dataset, its options (resolved to the dataset's own defaults) and the split sizes."""

    name: str = "grid"
    options: dict[str, Any] = field(default_factory=dict)
    n_train: int = setting(100_000, "Training-set size (ALI paper: 100,000).", study=False)
    n_test: int = 10_000

    def label(self) -> str:
        """Short name for tables: the name, plus any option that differs from its default."""
        if dataset_defaults is None:
            raise RuntimeError("a dataset's label needs its defaults: import inference_zoo.data first")
        defaults = dataset_defaults(self.name)
        changed = {k: v for k, v in self.options.items() if defaults.get(k) != v}
        if not changed:
            return self.name
        return self.name + ":" + ",".join(f"{k}={_short(v)}" for k, v in sorted(changed.items()))


#: a dataset's default options by name; the data package sets it as it loads (core sits below data)
dataset_defaults: Callable[[str], dict[str, Any]] | None = None


#: option text longer than this is named in labels by a digest (a mixture's inline means)
LABEL_TEXT_LIMIT = 24


def _short(value: Any) -> str:
    text = str(value)
    if len(text) <= LABEL_TEXT_LIMIT:
        return text
    return "#" + hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass
class ArchConfig:
    """Sizes of the shared networks. Defaults are the ALI paper's 2-D mixture networks."""

    name: str = "mlp"
    z_dim: int = 0  # 0: same as the data dimension (the paper's toys)
    encoder_hidden: tuple[int, ...] = (400, 400)
    decoder_hidden: tuple[int, ...] = (400, 400, 400, 400)
    discriminator_hidden: tuple[int, ...] = (200, 200, 200)
    maxout_pieces: int = 5
    batchnorm: bool = True
    init_std: float = 0.02


@dataclass
class TrainConfig:
    """Optimiser and loop settings (the trainer owns these, not the strategies).

    Every field is a setting: its flag on ``izoo compare`` and ``izoo study``, its keyword in the
    Python API, its name in ``--set`` and in a tuner's search space come from the field and its
    ``setting`` marks (``core/settings.py``).
    """

    steps: int = setting(200_000, "Training steps per phase.")
    batch_size: int = setting(100, "Minibatch size.")
    lr: float = setting(1e-4, "Adam learning rate; a comma list sweeps it, e.g. 1e-4,3e-4: each value is a "
                        "variant of every method (ali@lr=0.0003), stacked with the seeds.", sweep=True)
    # the official ALI code's "0.8" in the old (1 - beta1) convention
    beta1: float = setting(0.2, "Adam's beta1; a comma list sweeps it (each value trains as a stack of its own).",
                           sweep=True)
    beta2: float = setting(0.999, "Adam's beta2.", sweep=True, flag=False)
    device: str = setting("auto", "auto (CUDA when present), cpu or cuda.", identity=False)
    amp: bool = setting(False, "bf16 autocast (changes numerics; meant for CUDA).")
    compile: bool = setting(False, "torch.compile the networks while training (engine/compiling.py): fp32, but "
                            "fused kernels round differently; meant for CUDA.")
    log_every: int = setting(200, "Log the losses (and check the weights) every this many steps.", flag=False)
    checkpoint_every: int = setting(5_000, "Checkpoint every this many steps (a multiple of log_every).",
                                    flag=False)
    eval_every: int = setting(0, "Also evaluate every N steps of each phase into each run's curve.csv (a "
                              "multiple of log_every; 0: at the end only).")
    lr_schedule: str = setting("constant", "Learning rate over each phase: constant, linear or cosine decay to "
                               "lr x lr_floor at its last step; a comma list sweeps it.", sweep=True)
    lr_floor: float = setting(0.0, "With lr_schedule: the rate at a phase's last step, as a fraction of lr.",
                              sweep=True)
    lr_decay_start: float = setting(0.0, "With lr_schedule: decay only after this fraction of a phase's steps, "
                                    "at the full rate until then (0: from the first step).", sweep=True)
    ema_decay: float = setting(0.0, "Evaluate with an exponential moving average of the encoder's and decoder's "
                               "weights, this decay per step (e.g. 0.999; 0: off, the live weights); a comma "
                               "list sweeps it.", sweep=True)
    tensorboard: bool = setting(False, "Also log each run as TensorBoard events in its tensorboard/ folder "
                                "(pip install 'inference-zoo[tensorboard]'); how a run is watched, not what "
                                "it computes.", identity=False)
    mlflow: str = setting("", "Also log each run to this MLflow tracking URI (file:./mlruns, or a tracking server's "
                          "URL): one experiment per output folder, one MLflow run per run folder (pip install "
                          "'inference-zoo[mlflow]'); how a run is watched, not what it computes.",
                          identity=False, saved=False)
    # "stacked": the seeds of one method train as one stacked model (engine/stack/engine.py) with fused
    # Adam, one discriminator pass over real and fake pairs and one backward chain through it for
    # both players (engine/stack/backward.py); "single": one run at a time, the reference loop.
    # "auto" (the command line's and the API's default) picks "stacked" where the strategy and
    # architecture can be stacked (stacked.resolve_engine); a saved config holds what was picked.
    engine: str = setting("single", "auto, stacked (the seeds of a method train as one model) or single.")


@dataclass
class EvalConfig:
    """Sample sizes of the final evaluation (anchors section 2)."""

    n_three_sigma: int = setting(2_500, "Samples for the 3-sigma mode metrics (Unrolled GAN, VEEGAN, PacGAN).",
                                 flag=False)
    n_responsibility: int = setting(10_000, "Samples for the ALI paper's responsibility metric.", flag=False)
    n_prior_match: int = setting(2_000, "Codes for the MMD between E(x) and N(0, I).", flag=False)
    fid_weights: str = setting("", "Images: also report FID, in the features of these InceptionV3 weights (your "
                               "file, torch-fidelity's format; pip install 'inference-zoo[fid]'). Nothing is "
                               "downloaded.")
    label_counts: tuple[int, ...] = setting((), "Images: also fit a linear probe on the codes of each seed's "
                                            "labelled subset of each of these sizes (label_probe_error_N).",
                                            flag=False)


@dataclass
class RunConfig:
    """Everything that determines one training run and its numbers."""

    method: str = "ali"
    seed: int = 0
    study: str = "compare"
    data: DataConfig = field(default_factory=DataConfig)
    arch: ArchConfig = field(default_factory=ArchConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    options: dict[str, Any] = field(default_factory=dict)  # the strategy's resolved Options
    # what sets this run apart from its method's other runs in one table: its swept settings
    # (``variant_of``), e.g. "lr=0.0003" in a learning-rate sweep or "likelihood_std=0.2,lr=0.001";
    # rows and run folders name the run by ``label``: "ali@lr=0.0003"
    variant: str = ""

    @property
    def label(self) -> str:
        return method_label(self.method, self.variant)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def saved_dict(self) -> dict[str, Any]:
        """``to_dict`` as a run folder saves it (config.json, the checkpoint): without the settings
        marked ``setting(saved=False)``."""
        d = self.to_dict()
        for section, name in _NOT_SAVED:
            d[section].pop(name)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        return _from_dict(cls, upgrade_config_dict(d), "config")


VARIANT_MARK = "@"


def method_label(method: str, variant: str = "") -> str:
    """The name a run goes by in tables, figures and folders: its method, then its variant."""
    return f"{method}{VARIANT_MARK}{variant}" if variant else method


def setting_text(value: Any) -> str:
    """A swept setting's value as written in a label: floats as the shortest decimal that reads
    back as the same float (two settings never share a label), booleans as true/false."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def variant_of(settings: dict[str, Any]) -> str:
    """The variant naming a run's swept settings, in the order given: {"lr": 3e-4} -> "lr=0.0003"."""
    return ",".join(f"{key}={setting_text(value)}" for key, value in settings.items())


def split_label(label: str) -> tuple[str, dict[str, str]]:
    """Inverse of ``method_label``: "vae@likelihood_std=0.2,lr=0.001" ->
    ("vae", {"likelihood_std": "0.2", "lr": "0.001"})."""
    method, _, variant = label.partition(VARIANT_MARK)
    settings = dict(item.partition("=")[::2] for item in variant.split(",") if item)
    return method, settings


def upgrade_config_dict(d: dict[str, Any]) -> dict[str, Any]:
    """Fill keys added since a config was saved with the value its run actually used: a field's
    ``before`` mark (``setting``), else its default. Every field added so far defaults to what runs
    did before it existed (the single engine, eager networks, a constant rate, live weights, no FID,
    no label probes, no variant)."""
    if not isinstance(d, dict):
        return d
    d = {**d, **{f.name: _before(f) for f in dataclasses.fields(RunConfig)
                 if f.name not in d and f.name not in _SECTIONS and _has_default(f)}}
    for name, cls in _SECTIONS.items():
        if isinstance(d.get(name), dict):
            added = {f.name: _before(f) for f in dataclasses.fields(cls) if f.name not in d[name] and _has_default(f)}
            if added:
                d = {**d, name: {**d[name], **added}}
    return d


def _has_default(f: dataclasses.Field) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def _before(f: dataclasses.Field) -> Any:
    value = f.metadata.get("before", f.default if f.default is not dataclasses.MISSING else f.default_factory())
    return list(value) if isinstance(value, tuple) else value


def _from_dict(cls: type, d: dict[str, Any], where: str) -> Any:
    if not isinstance(d, dict):
        raise UserError(f"{where}: expected an object, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise UserError(f"{where}: unknown keys {', '.join(unknown)}")
    kwargs = {}
    for name, value in d.items():
        sub = _NESTED.get((cls, name))
        if sub is not None:
            value = _from_dict(sub, value, f"{where}.{name}")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


#: RunConfig's sections, each a dataclass of its own
_SECTIONS = {"data": DataConfig, "arch": ArchConfig, "train": TrainConfig, "eval": EvalConfig}
_NESTED = {(RunConfig, name): cls for name, cls in _SECTIONS.items()}


def diff_configs(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts (for refusing a bad resume)."""
    keys = sorted(set(a) | set(b))
    out: list[str] = []
    for k in keys:
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += diff_configs(va, vb, f"{prefix}{k}.")
        elif _normalise(va) != _normalise(vb):
            out.append(prefix + k)
    return out


def refuse_changed_config(saved: dict[str, Any], config: "RunConfig", where: Any) -> None:
    """Raise naming the differing keys when ``where`` holds a run of another config.

    The device and where the log goes are not part of a run's identity: a run may resume on
    another device, with or without TensorBoard or MLflow.
    """
    differing = [k for k in diff_configs(upgrade_config_dict(saved), config.to_dict()) if k not in _NOT_IDENTITY]
    if differing:
        raise UserError(f"{where} holds a run with a different config ({', '.join(differing)}); "
                        "use a new --out or --overwrite")


#: settings that are not part of a run's identity (``setting(identity=False)``): train.device,
#: train.tensorboard, train.mlflow
_NOT_IDENTITY = {f"{section}.{f.name}" for section, cls in _SECTIONS.items() for f in dataclasses.fields(cls)
                 if f.metadata.get("identity") is False}
#: settings a run folder does not save (``setting(saved=False)``): train.mlflow, as (section, name)
_NOT_SAVED = [(section, f.name) for section, cls in _SECTIONS.items() for f in dataclasses.fields(cls)
              if f.metadata.get("saved") is False]


def _normalise(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


ENGINES = ("single", "stacked")
LR_SCHEDULES = ("constant", "linear", "cosine")


def lr_factor(t: TrainConfig, done: int, steps: int) -> float:
    """The learning rate's multiplier for the update after ``done`` of a phase's ``steps`` steps."""
    start = int(t.lr_decay_start * steps)  # the first decaying update
    if t.lr_schedule == "constant" or done < start:
        return 1.0
    progress = (done - start) / max(1, steps - 1 - start)  # 0 at the first decaying update, 1 at the last
    decay = 1.0 - progress if t.lr_schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
    return t.lr_floor + (1.0 - t.lr_floor) * decay


def describe_schedule(t: TrainConfig) -> str:
    """The learning-rate schedule in words: "constant rate", "linear decay from 60% of the steps to 0 x lr"."""
    if t.lr_schedule == "constant":
        return "constant rate"
    start = f" from {t.lr_decay_start:.0%} of the steps" if t.lr_decay_start else ""
    return f"{t.lr_schedule} decay{start} to {t.lr_floor:g} x lr"


#: the largest count (steps, batch size) a run accepts: a typo such as 1e20 steps is refused at once
MAX_COUNT = 10**9


def validate_train(t: TrainConfig) -> None:
    checks = [
        (1 <= t.steps <= MAX_COUNT, f"steps must be from 1 to {MAX_COUNT:,}, got {t.steps}"),
        (2 <= t.batch_size <= MAX_COUNT, f"batch size must be from 2 (BatchNorm) to {MAX_COUNT:,}, got {t.batch_size}"),
        (math.isfinite(t.lr) and t.lr > 0, f"learning rate must be a finite number > 0, got {t.lr}"),
        (0 <= t.beta1 < 1 and 0 <= t.beta2 < 1, f"Adam betas must be in [0, 1), got {t.beta1}, {t.beta2}"),
        (t.engine in ENGINES, f"engine must be one of {', '.join(ENGINES)}, "
                              f"got {t.engine!r}{did_you_mean(t.engine, ENGINES)}"),
        (t.device in ("auto", "cpu", "cuda") or t.device.startswith("cuda:"), f"device must be auto, cpu or cuda, got {t.device!r}"),
        (t.log_every >= 1 and t.checkpoint_every >= 1, "log_every and checkpoint_every must be >= 1"),
        # every checkpoint is then a log step: its weights were checked for NaN/Inf, and a resumed
        # run's first logged mean covers a full logging window, as in an uninterrupted run
        (t.checkpoint_every % t.log_every == 0, "checkpoint_every must be a multiple of log_every"),
        (t.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, "
                                        f"got {t.lr_schedule!r}{did_you_mean(t.lr_schedule, LR_SCHEDULES)}"),
        (0 <= t.lr_floor <= 1, f"lr_floor is a fraction of the learning rate, from 0 to 1; got {t.lr_floor}"),
        (0 <= t.lr_decay_start < 1, f"lr_decay_start is a fraction of the steps, from 0 to below 1; got {t.lr_decay_start}"),
        (0 <= t.ema_decay < 1, f"ema_decay must be in [0, 1) (0: no average), got {t.ema_decay}"),
        (t.eval_every >= 0 and t.eval_every % t.log_every == 0,
         f"eval_every must be 0 (evaluate at the end only) or a multiple of log_every ({t.log_every}), got {t.eval_every}"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)
