"""The Frechet Inception Distance, for users who hold Inception weights (``--fid-weights PATH``).

The toolkit never downloads weights: the file is the user's (torch-fidelity's InceptionV3 in
PyTorch format; see torch-fidelity's ``util_convert_inception_weights``), read by torch-fidelity
(the ``fid`` extra), whose feature extractor and FID formula this module calls rather than
re-implements. FID is computed between the held-out test images and as many generated ones;
with fewer than a few thousand images per side it is biased upwards and comparable only with
FIDs computed on the same number of images.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import UserError

_extractors: dict[str, Any] = {}


def _fidelity():
    try:
        import torch_fidelity.feature_extractor_inceptionv3 as inception
        import torch_fidelity.metric_fid as metric_fid
    except ImportError:
        raise UserError("--fid-weights needs torch-fidelity: pip install 'inference-zoo[fid]'") from None
    return inception, metric_fid


def check_fid_weights(path: str | Path) -> str:
    """The weights file as an absolute path (what the run's config records), loaded once now so
    that a wrong file fails before any training."""
    _fidelity()
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise UserError(f"--fid-weights {path}: no such file (Inception weights in torch-fidelity's format)")
    _extractor(str(path))
    return str(path)


def _extractor(path: str):
    if path not in _extractors:
        inception, _ = _fidelity()
        try:
            _extractors[path] = inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                                      feature_extractor_weights_path=path)
        except Exception as exc:  # a file of other weights, or not weights at all
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UserError(f"--fid-weights {path}: not InceptionV3 weights torch-fidelity can load ({reason})") from None
    return _extractors[path]


@torch.no_grad()
def _features(extractor, images: torch.Tensor, batch: int = 50) -> np.ndarray:
    """2048 pooled features of images [n, C, H, W] in [0, 1] (grey images repeated to RGB)."""
    x = images.detach().float().cpu()
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    return torch.cat([extractor(x[i:i + batch])[0] for i in range(0, len(x), batch)]).double().numpy()


def inception_fid(path: str, real: torch.Tensor, generated: torch.Tensor) -> float:
    """FID between two image sets in the Inception features of the weights at ``path``."""
    _, metric_fid = _fidelity()
    extractor = _extractor(path)
    stats = [metric_fid.fid_features_to_statistics(torch.as_tensor(_features(extractor, x)))
             for x in (real, generated)]
    return float(metric_fid.fid_statistics_to_metric(*stats, verbose=False)[metric_fid.KEY_METRIC_FID])


__all__ = ["check_fid_weights", "inception_fid"]
