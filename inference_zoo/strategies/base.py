"""The strategy contract: what every inference mechanism declares and exposes.

A strategy owns its networks, its losses and its schedule (a list of phases). It never moves
tensors between devices, never calls ``optimizer.step`` and never writes files: the trainer does.
"""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..nets.noise import GLOBAL, Noise
from ..nets import NetworkFactory


@dataclass(frozen=True)
class Phase:
    """A stretch of training with its own optimisers.

    ``groups`` maps an optimiser group (one loss each) to the attribute names of the modules or
    parameters it updates; ``frozen`` modules are used but kept in eval mode and not updated.
    Phases with a ``shared_key`` are pure functions of (key, seed, data, architecture, optimiser
    settings, steps): the trainer trains such a phase once and lets other strategies reuse it.
    """

    name: str
    steps: int
    groups: dict[str, tuple[str, ...]]
    frozen: tuple[str, ...] = ()
    shared_key: dict[str, Any] | None = None


@dataclass
class StepOutput:
    """One loss per optimiser group of the phase, plus detached scalars worth logging."""

    losses: dict[str, torch.Tensor]
    logs: dict[str, torch.Tensor] = field(default_factory=dict)


class Strategy(nn.Module):
    """Base class of every inference mechanism (built-in or plugin).

    Subclasses set ``name`` and ``description``, may define a dataclass ``Options`` of their
    hyperparameters, build networks in ``__init__`` through the ``NetworkFactory``, and implement
    ``phases`` and ``step``. ``encode``/``decode`` default to the ``encoder``/``decoder``
    attributes; override them when the encoder's output is not itself a sample of q(z|x).

    Optional, for the evaluation and the engine to find: ``classify(x) -> labels`` (scored as
    ``classifier_error``), ``reconstruct_levels(x) -> {"z1": ...}`` (a hierarchical model's
    reconstruction through its lower level, ``recon_*_z1``), and ``labelled_examples`` (a count)
    with ``attach_labelled(x, y)``, through which the engine hands a semi-supervised strategy the
    seed's class-balanced labelled subset.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: True when K runs can be trained as one stacked model (``inference_zoo.engine.stack.engine``): all
    #: noise is drawn through ``self.noise`` or ``self.prior`` (``nets/noise.py``), losses and logs average only the batch axis
    #: (``mean(-1)`` over per-sample values), data dimensions are reduced with ``sum_x``, and
    #: exp, log, softplus, sigmoid and other transcendental functions go through ``member_apply``.
    stackable: ClassVar[bool] = False
    #: the strategy's own options that members of one stack may each hold their own value of, as
    #: the training settings in ``engine.stack.engine.MEMBER_SETTINGS``: name -> None, or a function
    #: of the value that stack-mates must share (the VAE's fixed or learned std). In a stacked model
    #: ``self.options.NAME`` is a float32 tensor of the members' values, one per member, so a
    #: strategy reads such an option only in arithmetic with per-member values (a loss, ``[K]``).
    member_options: ClassVar[dict[str, Callable[[Any], Any] | None]] = {}
    #: True when ``step`` takes the minibatch's labels too: ``step(phase, x, y)`` (conditional models).
    uses_labels: ClassVar[bool] = False
    #: the strategy's own options a tuner searches by default (``experiment/tune.py``): name ->
    #: ("log", low, high) | ("float", low, high) | ("int", low, high) | ("choice", [values])
    search_space: ClassVar[dict[str, tuple]] = {}
    #: How the discriminator sees both sides, for ``adversarial.adversarial_game(..., self.joint_pass)``:
    #: None (two passes, the reference) unless the engine sets an ``adversarial.JointPass``
    joint_pass: Any = None
    #: Where the strategy draws noise (``self.prior``, ``self.noise.randn_like``): torch's global
    #: generator unless the engine sets per-member generators (``nets/noise.py``)
    noise: Noise = GLOBAL

    @dataclass
    class Options:
        pass

    def __init__(self, nets: NetworkFactory, options: Any = None) -> None:
        super().__init__()
        self.options = options if options is not None else type(self).Options()
        self.x_dim = nets.x_dim
        self.x_shape = nets.x_shape
        self.z_dim = nets.z_dim

    # --- training -----------------------------------------------------------------------
    def phases(self, steps: int) -> list[Phase]:
        """The schedule, given the run's step budget."""
        raise NotImplementedError

    def step(self, phase: str, x: torch.Tensor) -> StepOutput:
        """Losses for one minibatch ``x`` of data in the named phase (``step(phase, x, y)`` when
        the strategy ``uses_labels``)."""
        raise NotImplementedError

    # --- inference API --------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Draw z ~ q(z|x)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The generator's x for z (its mean, for likelihood-based decoders)."""
        return self.decoder(z)

    def prior(self, n: int) -> torch.Tensor:
        """z ~ p(z) = N(0, I), on the strategy's device ([K, n, z_dim] in a stacked run)."""
        return self.noise.randn(n, self.z_dim, device=self.device)

    # --- shape helpers: a batch is [n, *x_shape], or [K, n, *x_shape] for K stacked runs ---
    def batch_size(self, x: torch.Tensor) -> int:
        return x.shape[x.dim() - len(self.x_shape) - 1]

    def sum_x(self, t: torch.Tensor) -> torch.Tensor:
        """Sum a per-sample quantity over the data dimensions: [..., n, *x_shape] -> [..., n]."""
        return t.flatten(t.dim() - len(self.x_shape)).sum(-1)

    def sample(self, n: int) -> torch.Tensor:
        return self.decode(self.prior(n))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # --- plugin checks --------------------------------------------------------------------
    @classmethod
    def check_plugin_contract(cls) -> None:
        """Raise TypeError naming what a (third-party) strategy class gets wrong."""
        if not (inspect.isclass(cls) and issubclass(cls, Strategy)):
            raise TypeError("a strategy must subclass inference_zoo.Strategy")
        if not cls.name or not isinstance(cls.name, str):
            raise TypeError(f"{cls.__name__} must set a non-empty class attribute 'name'")
        if not dataclasses.is_dataclass(cls.Options):
            raise TypeError(f"{cls.__name__}.Options must be a dataclass")
        missing = [m for m in ("phases", "step") if getattr(cls, m) is getattr(Strategy, m)]
        if missing:
            raise TypeError(f"{cls.__name__} does not implement {', '.join(missing)}")


def params_of(strategy: Strategy, names: tuple[str, ...]) -> list[nn.Parameter]:
    """Parameters of the named attributes (modules or single parameters) of a strategy."""
    params: list[nn.Parameter] = []
    for name in names:
        item = getattr(strategy, name)
        params.extend([item] if isinstance(item, nn.Parameter) else item.parameters())
    return params


def member_rows(t: torch.Tensor, item_dims: int) -> torch.Tensor:
    """``t`` laid out so that an elementwise kernel runs each stacked member's values on their own.

    ``t`` is one run's tensor of ``item_dims`` dimensions (logits [n]: 1; codes [n, z]: 2), with
    leading member axes in a stacked run ([K, n], [K, n, z]); a run's own tensor is returned as is.

    Why: torch's CPU kernels run a contiguous tensor as one flat loop, in vector registers except
    for its last few values, which take a scalar path, and for exp, log, softplus or sigmoid the
    two paths can round differently. In a stack, which of member k's values land in that tail
    would depend on how many members there are. On this view (each member's values in a row of
    their own, the rows padded apart so the kernel cannot merge them) every member takes the
    loop its run alone takes, so a seed's numbers do not depend on its stack-mates.
    Exactly rounded arithmetic (+, -, *, /, sqrt, max) needs no such care.
    """
    lead = t.dim() - item_dims
    if lead <= 0:
        return t
    rows = t.reshape(t.shape[:lead].numel(), -1)
    return F.pad(rows, (0, 1))[:, :-1].view(t.shape)


#: torch runs an elementwise kernel on one thread below this many values and splits it between
#: threads at positions set by the whole tensor's size above (``at::internal::GRAIN_SIZE``; the
#: kernel scan in ``engine/stack/kernel_forms.py`` checks what rests on it)
SERIAL_VALUES = 32768


def member_apply(fn: Callable[[torch.Tensor], torch.Tensor], t: torch.Tensor, item_dims: int) -> torch.Tensor:
    """``fn(t)`` for an elementwise ``fn`` (exp, softplus, sigmoid, ...), each stacked member's
    values computed as its run alone computes them.

    ``t`` is one run's tensor of ``item_dims`` dimensions with leading member axes in a stacked
    run. Below ``SERIAL_VALUES`` values in all, ``fn`` runs once on ``member_rows`` (one thread, each
    member's row its own loop); above, once per member, so that where torch splits the work
    between threads depends on the member's size alone, not on K.
    """
    lead = t.dim() - item_dims
    if lead <= 0:
        return fn(t)
    if t.numel() < SERIAL_VALUES:
        return fn(member_rows(t, item_dims))
    return torch.stack([fn(m) for m in t.reshape(-1, *t.shape[lead:]).unbind(0)]).view(t.shape)
