"""Typed run configuration. Defaults live in code; a run's folder holds the fully resolved config.

``RunConfig.to_dict``/``from_dict`` round-trip through JSON; unknown keys are rejected so a typo
in a saved or hand-edited config can never be silently ignored.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import UserError


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
        raise UserError(f"{where}: expected a {type(default).__name__}, got {value!r}") from None


@dataclass
class DataConfig:
    """Which dataset, its options (resolved to the dataset's own defaults) and the split sizes."""

    name: str = "grid"
    options: dict[str, Any] = field(default_factory=dict)
    n_train: int = 100_000
    n_test: int = 10_000

    def label(self) -> str:
        """Short name for tables: the name, plus any option that differs from its default."""
        from ..data import DATASETS  # the registry fills as the datasets import

        defaults = dataclasses.asdict(DATASETS.get(self.name).Options())
        changed = {k: v for k, v in self.options.items() if defaults.get(k) != v}
        if not changed:
            return self.name
        return self.name + ":" + ",".join(f"{k}={_short(v)}" for k, v in sorted(changed.items()))


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
    """Optimiser and loop settings (the trainer owns these, not the strategies)."""

    steps: int = 200_000
    batch_size: int = 100
    lr: float = 1e-4
    beta1: float = 0.2  # official ALI code's "0.8" in the old (1 - beta1) convention
    beta2: float = 0.999
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = False  # bf16 autocast; changes numerics, so off by default
    # torch.compile the networks while training (inference_zoo/engine/compiling.py): fp32 but fused
    # kernels round differently, so off by default; pays compilation time, pays off on GPUs
    compile: bool = False
    log_every: int = 200
    checkpoint_every: int = 5_000
    # evaluate every this many steps of each phase (0: only at the end) into the run's curve.csv,
    # with the final evaluation's metric code: quality against steps and wall time
    eval_every: int = 0
    # learning rate over each phase: "constant", or "linear" / "cosine" decay from lr to
    # lr * lr_floor at the phase's last step (train.lr_factor)
    lr_schedule: str = "constant"
    lr_floor: float = 0.0
    # the decay starts after this fraction of the phase's steps, at the full rate until then
    # (0: from the first step); a late decay, as in warmup-stable-decay schedules
    lr_decay_start: float = 0.0
    # evaluate with an exponential moving average of the encoder's and decoder's weights
    # (averaging.py; 0: off, the live weights)
    ema_decay: float = 0.0
    # also write the training log and the curve points as TensorBoard events in the run's
    # tensorboard/ folder (needs the tensorboard extra); how a run is watched, not what it computes
    tensorboard: bool = False
    # "stacked": seeds of one method train as one stacked model (inference_zoo/engine/stacked.py), with
    # fused Adam, one discriminator pass over real and fake pairs and one backward chain through it
    # for both players (inference_zoo/engine/shared_backward.py); "single": one run at a time,
    # the reference loop. Both are fp32; they agree to float tolerance, not bit for bit, so the
    # engine is part of a run's identity. The CLI's default "auto" picks "stacked" where the
    # strategy and architecture can be stacked (stacked.resolve_engine).
    engine: str = "single"


@dataclass
class EvalConfig:
    """Sample sizes of the final evaluation (anchors section 2)."""

    n_three_sigma: int = 2_500  # Unrolled-GAN / VEEGAN / PacGAN metric
    n_responsibility: int = 10_000  # ALI paper's metric
    n_prior_match: int = 2_000  # MMD between E(x) and N(0, I)
    # images: Inception weights (a file of the user's, read by torch-fidelity) for the Frechet
    # Inception Distance; empty: no FID (nothing is ever downloaded)
    fid_weights: str = ""
    # images: also fit a linear probe on the codes of each seed's labelled subset of each of these
    # sizes (semi-supervised baselines: ``label_probe_error_<n>``; ``data.labelled_subset``)
    label_counts: tuple[int, ...] = ()


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
    """Fill keys added since a config was saved with the value its run actually used.

    ``train.engine``: runs saved before the stacked engine existed were trained one at a time;
    ``train.compile``: runs saved before the option existed ran eagerly; ``train.eval_every``:
    they evaluated at the end only; ``train.lr_schedule``: their rate was constant;
    ``train.lr_decay_start``: a schedule decayed from the first step; ``train.ema_decay``:
    they were evaluated with their live weights; ``train.tensorboard``: they logged to
    metrics.jsonl alone; ``eval.fid_weights``, ``eval.label_counts``: they computed no FID and no label probes; ``variant``: runs saved
    before sweeps existed were their method's only setting.
    """
    if isinstance(d, dict) and "variant" not in d:
        d = {**d, "variant": ""}
    if isinstance(d, dict) and isinstance(d.get("eval"), dict):
        added = {k: v for k, v in {"fid_weights": "", "label_counts": []}.items() if k not in d["eval"]}
        if added:
            d = {**d, "eval": {**d["eval"], **added}}
    if isinstance(d, dict) and isinstance(d.get("train"), dict):
        added = {k: v for k, v in {"engine": "single", "compile": False, "eval_every": 0,
                                   "lr_schedule": "constant", "lr_floor": 0.0, "lr_decay_start": 0.0,
                                   "ema_decay": 0.0,
                                   "tensorboard": False}.items()
                 if k not in d["train"]}
        if added:
            d = {**d, "train": {**d["train"], **added}}
    return d


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


_NESTED = {
    (RunConfig, "data"): DataConfig,
    (RunConfig, "arch"): ArchConfig,
    (RunConfig, "train"): TrainConfig,
    (RunConfig, "eval"): EvalConfig,
}


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
    another device, with or without TensorBoard.
    """
    differing = [k for k in diff_configs(upgrade_config_dict(saved), config.to_dict())
                 if k not in ("train.device", "train.tensorboard")]
    if differing:
        raise UserError(f"{where} holds a run with a different config ({', '.join(differing)}); "
                        "use a new --out or --overwrite")


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


def validate_train(t: TrainConfig) -> None:
    checks = [
        (t.steps >= 1, f"steps must be >= 1, got {t.steps}"),
        (t.batch_size >= 2, f"batch size must be >= 2 (BatchNorm), got {t.batch_size}"),
        (math.isfinite(t.lr) and t.lr > 0, f"learning rate must be a finite number > 0, got {t.lr}"),
        (0 <= t.beta1 < 1 and 0 <= t.beta2 < 1, f"Adam betas must be in [0, 1), got {t.beta1}, {t.beta2}"),
        (t.engine in ENGINES, f"engine must be one of {', '.join(ENGINES)}, got {t.engine!r}"),
        (t.device in ("auto", "cpu", "cuda") or t.device.startswith("cuda:"), f"device must be auto, cpu or cuda, got {t.device!r}"),
        (t.log_every >= 1 and t.checkpoint_every >= 1, "log_every and checkpoint_every must be >= 1"),
        # every checkpoint is then a log step: its weights were checked for NaN/Inf, and a resumed
        # run's first logged mean covers a full logging window, as in an uninterrupted run
        (t.checkpoint_every % t.log_every == 0, "checkpoint_every must be a multiple of log_every"),
        (t.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {t.lr_schedule!r}"),
        (0 <= t.lr_floor <= 1, f"lr_floor is a fraction of the learning rate, from 0 to 1; got {t.lr_floor}"),
        (0 <= t.lr_decay_start < 1, f"lr_decay_start is a fraction of the steps, from 0 to below 1; got {t.lr_decay_start}"),
        (0 <= t.ema_decay < 1, f"ema_decay must be in [0, 1) (0: no average), got {t.ema_decay}"),
        (t.eval_every >= 0 and t.eval_every % t.log_every == 0,
         f"eval_every must be 0 (evaluate at the end only) or a multiple of log_every ({t.log_every}), got {t.eval_every}"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)
