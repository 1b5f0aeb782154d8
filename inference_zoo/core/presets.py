"""Named bundles of training schedule and architecture sizes.

``paper`` is the ALI paper's mixture setup (anchors section 1): 200k steps of batch 100, Adam
lr 1e-4 with (standard) beta1 0.2, the full-size networks. ``quick`` fits the four-method
comparison into a few minutes on 2 CPU cores: narrower networks, fewer steps, a higher learning
rate. Its numbers are a preview, not a reproduction.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .config import ArchConfig, TrainConfig
from .errors import unknown


@dataclass(frozen=True)
class Preset:
    description: str
    train: TrainConfig = field(default_factory=TrainConfig)
    arch: ArchConfig = field(default_factory=ArchConfig)
    #: per "method@data": the recipe ``izoo tune`` found (settings and the strategy's options by
    #: name, laid over this preset by ``--recipe tuned``), copied from the published ``best.json``
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the published tuning folders the recipes come from, newest first: each recipe is the first
    #: one's ``tuning/METHOD@DATA/best.json`` (tests/test_tune.py checks that they agree)
    recipes_from: tuple[str, ...] = ()


_CONVERGED = TrainConfig(steps=30_000, lr=5e-4, beta1=0.5, log_every=500, checkpoint_every=2_000, eval_every=2_000)

#: the converged schedule continued to 50k steps, decaying linearly to 0 over the last 20k
_LATE_DECAY = TrainConfig(steps=50_000, lr=5e-4, beta1=0.5, log_every=500, checkpoint_every=2_000, eval_every=2_000,
                          lr_schedule="linear", lr_decay_start=0.6)

#: each strategy's best recipe at the quick preset, from the published tunings (docs/results.md):
#: figures/tuned_quick, grid and ring (48,000 run-steps of search on two tuning seeds, the best two
#: trials and the preset's re-trained on four more)
_QUICK_TUNED: dict[str, dict[str, Any]] = {
    "ali@grid": {'beta1': 0.2, 'ema_decay': 0.0, 'lr': 0.0019346855993085804, 'lr_decay_start': 0.5, 'lr_schedule': 'linear'},
    "ali@ring": {'beta1': 0.2, 'ema_decay': 0.0, 'lr': 0.0019346855993085804, 'lr_decay_start': 0.5, 'lr_schedule': 'linear'},
    "alice@grid": {'beta1': 0.2, 'cycle_weight': 9.26405989735979, 'ema_decay': 0.99, 'lr': 0.002621170802969579, 'lr_decay_start': 0.8, 'lr_schedule': 'linear'},
    "alice@ring": {'beta1': 0.2, 'cycle_weight': 9.26405989735979, 'ema_decay': 0.99, 'lr': 0.002621170802969579, 'lr_decay_start': 0.8, 'lr_schedule': 'linear'},
    "bigan@grid": {'beta1': 0.5, 'ema_decay': 0.0, 'lr': 0.001, 'lr_decay_start': 0.0, 'lr_schedule': 'constant'},
    "bigan@ring": {'beta1': 0.2, 'ema_decay': 0.0, 'lr': 0.0019346855993085804, 'lr_decay_start': 0.5, 'lr_schedule': 'linear'},
    "latent@grid": {'beta1': 0.0, 'ema_decay': 0.999, 'lr': 0.0002757390045709133, 'lr_decay_start': 0.5, 'lr_schedule': 'linear'},
    "latent@ring": {'beta1': 0.0, 'ema_decay': 0.999, 'lr': 0.0002757390045709133, 'lr_decay_start': 0.5, 'lr_schedule': 'linear'},
    "posthoc@grid": {'beta1': 0.0, 'ema_decay': 0.999, 'lr': 0.0002757390045709133, 'lr_decay_start': 0.5, 'lr_schedule': 'linear'},
    "posthoc@ring": {'beta1': 0.0, 'ema_decay': 0.999, 'lr': 0.0002757390045709133, 'lr_decay_start': 0.5, 'lr_schedule': 'linear'},
    "vae@grid": {'beta1': 0.2, 'ema_decay': 0.99, 'likelihood_std': 0.46856328174761225, 'lr': 0.002621170802969579, 'lr_decay_start': 0.8, 'lr_schedule': 'linear'},
    "vae@ring": {'beta1': 0.2, 'ema_decay': 0.0, 'likelihood_std': 0.09626388802894213, 'lr': 0.0019346855993085804, 'lr_decay_start': 0.5, 'lr_schedule': 'linear'},
}

#: each strategy's best recipe at the converged preset cut to 10,000 steps, from the published
#: tuning figures/tuned_10k (160,000 run-steps of search on two tuning seeds, the best two trials and
#: the preset's re-trained on four more): every strategy on both mixtures
_TUNED_10K: dict[str, dict[str, Any]] = {
    "alice@grid": {'beta1': 0.2, 'cycle_weight': 9.26405989735979, 'ema_decay': 0.99, 'lr': 0.002621170802969579, 'lr_decay_start': 0.8, 'lr_schedule': 'linear'},
    "alice@ring": {'beta1': 0.8, 'cycle_weight': 0.13547922193823186, 'ema_decay': 0.0, 'lr': 6.833727932884855e-05, 'lr_decay_start': 0.5, 'lr_schedule': 'linear'},
    "ali@grid": {'beta1': 0.0, 'ema_decay': 0.999, 'lr': 0.0002757390045709133, 'lr_decay_start': 0.5, 'lr_schedule': 'linear'},
    "ali@ring": {'beta1': 0.8, 'ema_decay': 0.0, 'lr': 0.00047683923603994, 'lr_decay_start': 0.8, 'lr_schedule': 'linear'},
    "bigan@grid": {'beta1': 0.0, 'ema_decay': 0.999, 'lr': 0.0002757390045709133, 'lr_decay_start': 0.5, 'lr_schedule': 'linear'},
    "bigan@ring": {'beta1': 0.0, 'ema_decay': 0.999, 'lr': 0.0002757390045709133, 'lr_decay_start': 0.5, 'lr_schedule': 'linear'},
    "latent@grid": {'beta1': 0.8, 'ema_decay': 0.0, 'lr': 0.00047683923603994, 'lr_decay_start': 0.8, 'lr_schedule': 'linear'},
    "latent@ring": {'beta1': 0.0, 'ema_decay': 0.999, 'lr': 0.0002757390045709133, 'lr_decay_start': 0.5, 'lr_schedule': 'linear'},
    "posthoc@grid": {'beta1': 0.8, 'ema_decay': 0.0, 'lr': 0.00047683923603994, 'lr_decay_start': 0.8, 'lr_schedule': 'linear'},
    "posthoc@ring": {'beta1': 0.0, 'ema_decay': 0.999, 'lr': 0.0002757390045709133, 'lr_decay_start': 0.5, 'lr_schedule': 'linear'},
    "vae@grid": {'beta1': 0.2, 'ema_decay': 0.99, 'likelihood_std': 0.46856328174761225, 'lr': 0.002621170802969579, 'lr_decay_start': 0.8, 'lr_schedule': 'linear'},
    "vae@ring": {'beta1': 0.8, 'ema_decay': 0.0, 'likelihood_std': 0.029726346776781196, 'lr': 0.00047683923603994, 'lr_decay_start': 0.8, 'lr_schedule': 'linear'},
}

#: each strategy's best recipe on the identity toy at the quick preset cut to 6,000 steps, from the
#: published tuning figures/tuned_identity (96,000 run-steps of search judged by the mean-map
#: reconstruction, two tuning seeds, the best two trials and the preset's re-trained on four more)
_TUNED_IDENTITY: dict[str, dict[str, Any]] = {
    "alice@identity": {'beta1': 0.2, 'cycle_weight': 9.26405989735979, 'ema_decay': 0.99, 'lr': 0.002621170802969579, 'lr_decay_start': 0.8, 'lr_schedule': 'linear'},
    "ali@identity": {'beta1': 0.2, 'ema_decay': 0.99, 'lr': 0.002621170802969579, 'lr_decay_start': 0.8, 'lr_schedule': 'linear'},
    "bigan@identity": {'beta1': 0.2, 'ema_decay': 0.99, 'lr': 0.002621170802969579, 'lr_decay_start': 0.8, 'lr_schedule': 'linear'},
    "latent@identity": {'beta1': 0.8, 'ema_decay': 0.0, 'lr': 0.00047683923603994, 'lr_decay_start': 0.8, 'lr_schedule': 'linear'},
    "posthoc@identity": {'beta1': 0.5, 'ema_decay': 0.0, 'lr': 0.001, 'lr_decay_start': 0.0, 'lr_schedule': 'constant'},
    "vae@identity": {'beta1': 0.8, 'ema_decay': 0.0, 'likelihood_std': 0.029726346776781196, 'lr': 0.00047683923603994, 'lr_decay_start': 0.8, 'lr_schedule': 'linear'},
}

_QUICK = TrainConfig(steps=3_000, lr=1e-3, beta1=0.5, log_every=100, checkpoint_every=1_000)
_QUICK_ARCH = ArchConfig(encoder_hidden=(128, 128), decoder_hidden=(128,) * 4, discriminator_hidden=(128,) * 3)

PRESETS: dict[str, Preset] = {
    "paper": Preset("ALI paper's mixture setup: full-size networks, 200k steps, Adam 1e-4, beta1 0.2"),
    "study": Preset(
        "CPU studies: paper-size networks, 4k steps per phase, Adam 5e-4, beta1 0.5",
        TrainConfig(steps=4_000, lr=5e-4, beta1=0.5, log_every=200, checkpoint_every=1_000),
    ),
    "converged": Preset(
        "CPU studies at convergence: paper-size networks, 30k steps per phase, Adam 5e-4, beta1 0.5, "
        "evaluated every 2k steps",
        _CONVERGED,
    ),
    # figures/tuned_10k: the budget every strategy was tuned at (izoo study tuned_10k)
    "converged_10k": Preset(
        "converged cut to 10,000 steps, evaluated every 2,500: the budget of figures/tuned_10k, whose recipes "
        "--recipe tuned runs",
        dataclasses.replace(_CONVERGED, steps=10_000, eval_every=2_500),
        recipes=_TUNED_10K, recipes_from=("figures/tuned_10k",),
    ),
    # figures/ali_grid_late_decay: the converged runs continued to 50k with a late linear decay
    "converged_decay": Preset(
        "converged, then on to 50k steps: full rate for 30k, linear decay to 0 over the last 20k "
        "(figures/ali_grid_late_decay)",
        _LATE_DECAY,
    ),
    # figures/ali_grid_lr_sweep: the late-decay schedule at a smaller rate, ALI's best on the grid
    "converged_long": Preset(
        "converged_decay at Adam 3e-4: paper-size networks, 50k steps, full rate for 30k, linear decay "
        "to 0 over the last 20k (figures/ali_grid_lr_sweep)",
        dataclasses.replace(_LATE_DECAY, lr=3e-4),
    ),
    "quick": Preset(
        "minutes on 2 CPU cores: 128-wide networks, 3k steps, Adam 1e-3, beta1 0.5",
        _QUICK, _QUICK_ARCH, recipes=_QUICK_TUNED, recipes_from=("figures/tuned_quick",),
    ),
    # figures/tuned_identity: the identity toy's budget (identity_toy_converged), tuned there
    "quick_6k": Preset(
        "quick at 6,000 steps, evaluated every 1,500: the identity toy's budget in figures/tuned_identity, "
        "whose recipes --recipe tuned runs",
        dataclasses.replace(_QUICK, steps=6_000, eval_every=1_500), _QUICK_ARCH,
        recipes=_TUNED_IDENTITY, recipes_from=("figures/tuned_identity",),
    ),
    # images (docs/images.md): conv networks from nets/conv.py; widths are channel counts
    "digits": Preset(
        "8x8 digits in minutes on 2 CPU cores: dcgan 64-channel nets, z 16, 2k steps, Adam 5e-4, beta1 0.5",
        TrainConfig(steps=2_000, lr=5e-4, beta1=0.5, log_every=100, checkpoint_every=1_000),
        ArchConfig(name="dcgan", z_dim=16, encoder_hidden=(64,), decoder_hidden=(64,), discriminator_hidden=(64,)),
    ),
    # mnist5k's default (docs/images.md): the digits preset's Adam settings on 28x28, dcgan nets at
    # half the dcgan preset's widths (2 busy CPU cores: 0.11 s per ALI step against 0.25 s at 64-128); untuned
    "mnist": Preset(
        "28x28 digits (mnist5k) on 2 CPU cores: dcgan 32-64-channel nets, z 32, 3k steps, Adam 5e-4, beta1 0.5",
        TrainConfig(steps=3_000, lr=5e-4, beta1=0.5, log_every=100, checkpoint_every=1_000),
        ArchConfig(name="dcgan", z_dim=32, encoder_hidden=(32, 64), decoder_hidden=(64, 32), discriminator_hidden=(32, 64)),
    ),
    "dcgan": Preset(
        "DCGAN-style nets for 28/32/64 px images (GPU): z 64, 30k steps, Adam 2e-4, beta1 0.5",
        TrainConfig(steps=30_000, lr=2e-4, beta1=0.5, log_every=500, checkpoint_every=5_000),
        ArchConfig(name="dcgan", z_dim=64, encoder_hidden=(64, 128, 256, 512), decoder_hidden=(512, 256, 128, 64),
                   discriminator_hidden=(64, 128, 256, 512)),
    ),
    "ali32": Preset(
        "ALI paper's 32x32 nets (CIFAR-10/SVHN, anchors s.5): z 64, Adam 1e-4, beta1 0.5, batch 100, 100k steps",
        TrainConfig(steps=100_000, lr=1e-4, beta1=0.5, log_every=500, checkpoint_every=5_000),
        ArchConfig(name="ali32", z_dim=64, encoder_hidden=(32, 64, 128, 256, 512, 512),
                   decoder_hidden=(256, 128, 64, 32, 32, 32), discriminator_hidden=(32, 64, 128, 256, 512, 512, 1024),
                   init_std=0.01),
    ),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise unknown("preset", name, sorted(PRESETS))
    return PRESETS[name]
