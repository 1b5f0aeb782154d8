"""Final evaluation of a trained strategy: tidy metric rows plus the arrays figures are drawn from.

Every metric is computed on the seed's fixed held-out set and on samples drawn with a seeded
generator, so two runs with the same weights give the same numbers.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import metrics as M
from .config import RunConfig
from .data import Dataset
from .seeding import derive_seed
from .strategies import Strategy
from .train import Diverged

RESULT_FIELDS = ["study", "dataset", "method", "seed", "metric", "value"]


@torch.no_grad()
def evaluate(strategy: Strategy, dataset: Dataset, x_test: torch.Tensor, labels: torch.Tensor,
             config: RunConfig) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Return ({metric: value}, samples) for a trained strategy; see README for definitions."""
    strategy.eval()
    device = strategy.device
    n = x_test.shape[0]
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(derive_seed(config.seed, "eval"))
        x = x_test.to(device)
        z_encoded = strategy.encode(x)
        x_reconstructed = strategy.decode(z_encoded)
        z_prior = strategy.prior(n)
        x_generated = strategy.decode(z_prior)
        z_recovered = strategy.encode(x_generated)
        z_reference = strategy.prior(config.eval.n_prior_match)
    a = {k: v.float().cpu().numpy().astype(np.float64) for k, v in dict(
        x=x, z_encoded=z_encoded, x_reconstructed=x_reconstructed, z_prior=z_prior,
        x_generated=x_generated, z_recovered=z_recovered, z_reference=z_reference).items()}
    y = labels.cpu().numpy()
    bad = sorted(k for k, v in a.items() if not np.isfinite(v).all())
    if bad:  # weights were finite, outputs are not: as much a divergence as a NaN loss
        raise Diverged(f"{config.method} seed {config.seed}: non-finite {', '.join(bad)} at evaluation")

    m: dict[str, float] = {
        "recon_mse": M.mse(a["x"], a["x_reconstructed"]),
        "latent_recovery_mse": M.mse(a["z_prior"], a["z_recovered"]),
        "prior_mmd": M.mmd2_rbf(a["z_encoded"][: config.eval.n_prior_match], a["z_reference"]),
        "prior_ks": M.max_ks_to_standard_normal(a["z_encoded"]),
    }
    generated_label = np.zeros(n, dtype=np.int64)
    if dataset.means is not None:
        means, stds = dataset.means, dataset.stds
        cov = M.three_sigma_coverage(a["x_generated"][: config.eval.n_three_sigma], means, stds)
        m["modes_3sigma"] = float(cov["modes"])
        m["hq_fraction"] = cov["hq_fraction"]
        m["reverse_kl"] = cov["reverse_kl"]
        m["modes_responsibility"] = float(M.responsibility_coverage(a["x_generated"][: config.eval.n_responsibility], means, stds))
        m["recon_same_mode"] = M.same_mode_rate(a["x"], a["x_reconstructed"], y, means, stds)
        generated_label = M.responsibility_assign(a["x_generated"], means, stds)
    if a["x"].shape[1] == 1 and a["z_encoded"].shape[1] == 1:
        m["corr_x_encoding"] = M.pearson_corr(a["x"], a["z_encoded"])
        m["corr_z_decoding"] = M.pearson_corr(a["z_prior"], a["x_generated"])
        m["sample_ks"] = M.max_ks_to_standard_normal(a["x_generated"])

    samples = {
        "x_test": a["x"].astype(np.float32), "x_test_label": y.astype(np.int64),
        "z_encoded": a["z_encoded"].astype(np.float32), "x_reconstructed": a["x_reconstructed"].astype(np.float32),
        "z_prior": a["z_prior"].astype(np.float32), "x_generated": a["x_generated"].astype(np.float32),
        "x_generated_label": np.asarray(generated_label, dtype=np.int64),
    }
    return m, samples


def tidy_rows(config: RunConfig, values: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per metric: (study, dataset, method, seed, metric, value)."""
    base = {"study": config.study, "dataset": config.data.label(), "method": config.method, "seed": config.seed}
    return [{**base, "metric": k, "value": v} for k, v in values.items()]
