"""The published folders that a base study's own settings do not make, as studies.

Each folder under ``figures/`` is a study of its name: ``izoo study NAME`` plans exactly the
cells published there and publishes to ``figures/NAME``. A study here is a base study's cells at
other settings (``base.derive``): the base's figures and sample rules, and the base's name as its
cells' study, as the folder published them (a cell's study is part of its config digest).
``ali_16k_steps`` and ``image_features_8k_steps`` were trained by ``izoo compare``, so their cells
carry "compare". ``ali_16k_steps``, trained before the stacked engine existed, fixes the single
engine its config records; the others take the engine ``--engine auto`` picks, the one they recorded.
"""
from __future__ import annotations

from .base import FIRST_FIVE, STUDIES, Study, derive
from .identity_toy import IDENTITY_TOY
from .image_features import IMAGE_FEATURES
from .mixture_coverage import MIXTURE_COVERAGE

MIXTURE_CONVERGED = STUDIES.get("mixture_converged")  # registered as designed: its folder is its own
SEMI_SUPERVISED = STUDIES.get("semi_supervised")
#: real 28x28 digits (mnist5k, docs/images.md) at preset mnist: the label counts of its semi-supervised study
MNIST5K_LABELS = (100, 1_000)
#: ALI on the grid for 50,000 steps: the full rate for 30,000, then a linear decay to 0
LATE_DECAY = {"steps": 50_000, "lr_schedule": "linear", "lr_decay_start": 0.6}


def _identity(name: str, description: str, **settings: object) -> Study:
    """The identity toy as ``figures/identity_toy`` ran it (8 seeds, preset quick, the first five
    strategies) at ``settings``."""
    return derive(IDENTITY_TOY, name, description, methods=FIRST_FIVE, seeds=8, preset="quick",
                  settings=settings)


DERIVED = (
    derive(MIXTURE_COVERAGE, "ali_16k_steps", "ALI on the grid, seed 0, at 16,000 steps per phase, single engine "
           "(trained by izoo compare)", datasets=("grid",), methods=("ali",), seeds=1,
           settings={"steps": 16_000, "engine": "single"}, rows_as="compare"),
    derive(MIXTURE_COVERAGE, "vae_likelihood_sweep", "the VAE on the grid at five likelihood scales",
           datasets=("grid",), methods=("vae",), options={"vae": {"likelihood_std": [0.02, 0.05, 0.1, 0.2, 0.5]}}),
    derive(MIXTURE_CONVERGED, "ali_grid_late_decay", "ALI on the grid to 50,000 steps, the rate decaying "
           "linearly to 0 after 30,000", datasets=("grid",), methods=("ali",), settings=LATE_DECAY),
    derive(MIXTURE_CONVERGED, "ali_grid_lr_sweep", "ali_grid_late_decay at Adam 2e-4 and 3e-4",
           datasets=("grid",), methods=("ali",), settings={**LATE_DECAY, "lr": [2e-4, 3e-4]}),
    derive(MIXTURE_CONVERGED, "mixture_recipe", "ALI on the grid, 12,000 steps, seeds 0-2: weight average "
           "(ema_decay 0 or 0.999) x schedule (constant, or cosine to 0.1 x lr)", datasets=("grid",),
           methods=("ali",), seeds=3, settings={"steps": 12_000, "ema_decay": [0.0, 0.999],
                                                "lr_schedule": ["constant", "cosine"], "lr_floor": 0.1}),
    _identity("identity_toy_stacked", "the identity toy, 8 seeds of the first five strategies, preset quick at "
              "2,000 steps per phase, stacked engine", steps=2_000, engine="stacked"),
    _identity("identity_toy_lr_sweep", "identity_toy_stacked's cells at learning rates 3e-4, 1e-3 and 3e-3",
              steps=2_000, lr=[3e-4, 1e-3, 3e-3]),
    _identity("identity_toy_6k_steps", "identity_toy_stacked's cells at 6,000 steps per phase", steps=6_000),
    derive(IDENTITY_TOY, "identity_toy_converged", "the identity toy, 20 seeds per strategy, preset quick at "
           "6,000 steps, evaluated every 1,000", seeds=20, preset="quick",
           settings={"steps": 6_000, "eval_every": 1_000}),
    derive(IMAGE_FEATURES, "image_features_8k_steps", "ALI and BiGAN on digits, seed 0, at 8,000 steps per phase "
           "(trained by izoo compare)", methods=("ali", "bigan"), seeds=1, settings={"steps": 8_000},
           rows_as="compare"),
    derive(IMAGE_FEATURES, "image_features_16k_steps", "ALI and BiGAN on digits to 16,000 steps, evaluated every "
           "2,000", methods=("ali", "bigan"), settings={"steps": 16_000, "eval_every": 2_000}),
    derive(IMAGE_FEATURES, "image_features_converged", "every strategy on digits at 10,000 steps, evaluated every "
           "2,000", settings={"steps": 10_000, "eval_every": 2_000}),
    derive(IMAGE_FEATURES, "mnist5k_features", "every image strategy on 5,000 real 28x28 MNIST digits (mnist5k), "
           "preset mnist at 4,000 steps, evaluated every 1,000", datasets=("mnist5k",), preset="mnist",
           settings={"steps": 4_000, "eval_every": 1_000}),
    derive(SEMI_SUPERVISED, "mnist5k_semi_supervised", "semi_supervised on mnist5k at preset mnist: ssali at 100 "
           "and 1,000 labels against the labels-only network and probes on ALI, BiGAN and VAE codes",
           datasets=("mnist5k",), preset="mnist", options={"ssali": {"labels": list(MNIST5K_LABELS)}},
           evaluation={"label_counts": MNIST5K_LABELS}),
)

for _study in DERIVED:
    STUDIES.add(_study.name, _study)
