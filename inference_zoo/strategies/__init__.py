"""Inference strategies, one module each. ALI's loss lives in ``ali.py``; shared adversarial
losses in ``adversarial.py``; the GAN phase reused by ``latent`` and ``posthoc`` in ``gan.py``."""
from .base import Phase, StepOutput, Strategy, params_of
from .registry import STRATEGIES
from . import ali, alice, conditional, hali, latent, posthoc, semi_supervised, vae  # noqa: F401  (register the built-ins)

__all__ = ["STRATEGIES", "Phase", "StepOutput", "Strategy", "params_of"]
