"""inference_zoo: compare inference mechanisms in latent-variable generative models."""
__version__ = "0.1.0"

from .strategies import STRATEGIES, Phase, StepOutput, Strategy  # noqa: E402

__all__ = ["STRATEGIES", "Phase", "StepOutput", "Strategy", "__version__"]
