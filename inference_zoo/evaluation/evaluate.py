"""Final evaluation of a trained strategy: tidy metric rows plus the arrays figures are drawn from.

Every metric is computed on the seed's fixed held-out set and on samples drawn with a seeded
generator, so two runs with the same weights give the same numbers.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .. import metrics as M
from ..core.config import RunConfig
from ..core.errors import Diverged
from ..data import Dataset
from ..core.seeding import derive_seed, generator
from ..strategies import Strategy
from .feature_net import sample_quality
from .label_baselines import label_probe_errors, supervised_error

#: images: labelled training images whose codes fit the feature probes; interpolation pairs and
#: steps (odd, so the middle frame is the midpoint); images kept in samples.npz for the figures
N_PROBE_TRAIN = 10_000
N_PAIRS, N_STEPS = 8, 9
N_SHOW = 64
N_SHARED_Z = 8  # conditional models: samples per class from the same z
IMAGE_BATCH = 500
#: identity toy: encoder draws averaged into the mean map x -> E[z | x] (noise-free invertibility)
MEAN_MAP_DRAWS = 32
#: latent arithmetic: how far along each class-to-class vector held-out codes are moved
ARITHMETIC_STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
MAX_ARITHMETIC_PAIRS = 10


def _batched(fn, *tensors: torch.Tensor, size: int) -> torch.Tensor:
    """``fn`` over slices of ``size`` rows (images: bounded memory; toys: one slice, one call)."""
    n = tensors[0].shape[0]
    return torch.cat([fn(*(t[i:i + size] for t in tensors)) for i in range(0, n, max(1, size))])


@torch.no_grad()
def evaluate(strategy: Strategy, dataset: Dataset, x_test: torch.Tensor, labels: torch.Tensor,
             config: RunConfig, final: bool = True) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Return ({metric: value}, samples) for a trained strategy; see README for definitions.

    ``final``: False at a curve point, where what does not depend on the training state (the
    supervised baseline of semi-supervised ALI) is left out.

    A strategy that ``uses_labels`` encodes and decodes with labels: the held-out labels for its
    codes, classes in turn (0, 1, ..., K-1, 0, ...) for its samples.
    """
    strategy.eval()
    device = strategy.device
    n = x_test.shape[0]
    images = len(dataset.x_shape) == 3
    size = IMAGE_BATCH if images else n
    if strategy.uses_labels:
        enc, dec = strategy.encode, strategy.decode
    else:
        enc, dec = (lambda x, y: strategy.encode(x)), (lambda z, y: strategy.decode(z))
    y_test = labels.to(device)
    y_generated = torch.arange(n, device=device) % dataset.n_classes
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(derive_seed(config.seed, "eval"))
        x = x_test.to(device)
        z_encoded = _batched(enc, x, y_test, size=size)
        x_reconstructed = _batched(dec, z_encoded, y_test, size=size)
        z_prior = strategy.prior(n)
        x_generated = _batched(dec, z_prior, y_generated, size=size)
        z_recovered = _batched(enc, x_generated, y_generated, size=size)
        z_reference = strategy.prior(config.eval.n_prior_match)
        extra = _image_arrays(strategy, dataset, x, y_test, z_encoded, enc, dec, config) if images else {}
        if x.dim() == 2 and x.shape[1] == 1 and z_encoded.shape[-1] == 1:  # the 1-D identity toy
            z_mean = torch.stack([_batched(enc, x, y_test, size=size) for _ in range(MEAN_MAP_DRAWS)]).mean(0)
            extra.update(z_mean_code=z_mean, x_from_mean_code=_batched(dec, z_mean, y_test, size=size))
        if hasattr(strategy, "classify"):  # semi-supervised: its own classifier's held-out predictions
            extra["classified"] = torch.cat([strategy.classify(x[i:i + size]) for i in range(0, n, size)])
        if hasattr(strategy, "reconstruct_levels"):  # hierarchical: also through the lower level
            extra["x_reconstructed_z1"] = _batched(lambda t: strategy.reconstruct_levels(t)["z1"], x, size=size)
    a = {k: v.float().cpu().numpy().astype(np.float64) for k, v in dict(
        x=x, z_encoded=z_encoded, x_reconstructed=x_reconstructed, z_prior=z_prior,
        x_generated=x_generated, z_recovered=z_recovered, z_reference=z_reference, **extra).items()}
    y = labels.cpu().numpy()
    if "classified" in a:
        m_classifier = {"classifier_error": float(np.mean(a.pop("classified").astype(np.int64) != y))}
    else:
        m_classifier = {}
    bad = sorted(k for k, v in a.items() if not np.isfinite(v).all())
    if bad:  # weights were finite, outputs are not: as much a divergence as a NaN loss
        raise Diverged.non_finite(config.label, config.seed, bad, "at evaluation")

    m: dict[str, float] = {
        "recon_mse": M.mse(a["x"], a["x_reconstructed"]),
        **({"recon_mse_z1": M.mse(a["x"], a["x_reconstructed_z1"])} if "x_reconstructed_z1" in a else {}),
        **m_classifier,
        "latent_recovery_mse": M.mse(a["z_prior"], a["z_recovered"]),
        "prior_mmd": M.mmd2_rbf(a["z_encoded"][: config.eval.n_prior_match], a["z_reference"]),
        "prior_ks": M.max_ks_to_standard_normal(a["z_encoded"]),
    }
    generated_label = y_generated.cpu().numpy() if strategy.uses_labels else np.zeros(n, dtype=np.int64)
    if dataset.means is not None:
        means, stds, weights = dataset.means, dataset.stds, dataset.weights
        cov = M.three_sigma_coverage(a["x_generated"][: config.eval.n_three_sigma], means, stds, weights)
        m["modes_3sigma"] = float(cov["modes"])
        m["hq_fraction"] = cov["hq_fraction"]
        m["reverse_kl"] = cov["reverse_kl"]
        m["modes_responsibility"] = float(M.responsibility_coverage(
            a["x_generated"][: config.eval.n_responsibility], means, stds, weights))
        m["recon_same_mode"] = M.same_mode_rate(a["x"], a["x_reconstructed"], y, means, stds, weights)
        if "x_reconstructed_z1" in a:
            m["recon_same_mode_z1"] = M.same_mode_rate(a["x"], a["x_reconstructed_z1"], y, means, stds, weights)
        generated_label = M.responsibility_assign(a["x_generated"], means, stds, weights)
    if a["x"].ndim == 2 and a["x"].shape[1] == 1 and a["z_encoded"].shape[1] == 1:
        m["corr_x_encoding"] = M.pearson_corr(a["x"], a["z_encoded"])
        # noise-free: the encoder's mean map, and reconstruction through it (a stochastic
        # encoder is not charged for the noise it injects)
        m["corr_x_mean_code"] = M.pearson_corr(a["x"], a["z_mean_code"])
        m["recon_mse_mean_code"] = M.mse(a["x"], a["x_from_mean_code"])
        m["corr_z_decoding"] = M.pearson_corr(a["z_prior"], a["x_generated"])
        m["sample_ks"] = M.max_ks_to_standard_normal(a["x_generated"])
    if images:
        y_train = a.pop("y_train").astype(np.int64)
        if not strategy.uses_labels:  # a label-conditioned encoder is handed the answer: no probe
            m["probe_linear_acc"] = M.linear_probe_accuracy(a["f_train"], y_train, a["z_encoded"], y)
            m["probe_1nn_acc"] = M.nearest_neighbour_accuracy(a["f_train"], y_train, a["z_encoded"], y)
        # a fixed classifier on pixels (fitted on the probe's training images) judges whether
        # G(E(x)) keeps x's class; its own held-out accuracy says how far to trust it
        flat = lambda t: t.reshape(len(t), -1)  # noqa: E731
        tests = [(flat(a["x"]), y), (flat(a["x_reconstructed"]), y)]
        if "x_reconstructed_z1" in a:
            tests.append((flat(a["x_reconstructed_z1"]), y))
        scores = M.linear_classifier_accuracies(flat(a["x_train"]), y_train, tests)
        m["pixel_classifier_acc"], m["recon_same_class"] = scores[:2]
        if len(scores) > 2:
            m["recon_same_class_z1"] = scores[2]
        # sample quality in a small classifier's feature space (not Inception: feature_net.py)
        m.update(sample_quality(dataset, config.data, x_test, torch.as_tensor(a["x_generated"]),
                                derive_seed(config.seed, "kid")))
        if config.eval.fid_weights:  # the user's Inception weights (fid.py)
            from .fid import inception_fid

            m["fid"] = inception_fid(config.eval.fid_weights, x_test, torch.as_tensor(a["x_generated"]))
        # semi-supervised baselines on the seed's labelled subsets (evaluation/label_baselines.py)
        if hasattr(strategy, "classify"):
            if final:
                m["supervised_error"] = supervised_error(strategy, config, x_test, labels)
        elif config.eval.label_counts and not strategy.uses_labels:
            m.update(label_probe_errors(strategy, dataset, config, x_test, labels))
        if "arith_target_prob" in a:  # the classifier's probability of the target class at strength 1
            m["arith_target_prob"] = float(a["arith_target_prob"][:, ARITHMETIC_STRENGTHS.index(1.0)].mean())
        m["interp_path_ratio"] = M.interpolation_path_ratio(a["interpolation"])
        m["interp_mid_nn_mse"] = M.nearest_distance_mse(a["interpolation"][:, N_STEPS // 2], a["x_train"])

    keep = slice(None) if not images else slice(0, N_SHOW)  # images: what the figures show
    samples = {
        "x_test": a["x"][keep].astype(np.float32), "x_test_label": y[keep].astype(np.int64),
        "z_encoded": a["z_encoded"][keep].astype(np.float32),
        "x_reconstructed": a["x_reconstructed"][keep].astype(np.float32),
        "z_prior": a["z_prior"][keep].astype(np.float32), "x_generated": a["x_generated"][keep].astype(np.float32),
        "x_generated_label": np.asarray(generated_label, dtype=np.int64)[keep],
    }
    for key in ("interpolation", "class_samples", "z_mean_code", "arith_frames", "arith_target_prob",
                "arith_strengths"):
        if key in a:
            samples[key] = a[key].astype(np.float32)
    if "x_reconstructed_z1" in a:
        samples["x_reconstructed_z1"] = a["x_reconstructed_z1"][keep].astype(np.float32)
    if "arith_pairs" in a:
        samples["arith_pairs"] = a["arith_pairs"].astype(np.int64)
    return m, samples


def _image_arrays(strategy: Strategy, dataset: Dataset, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, enc, dec,
                  config: RunConfig) -> dict[str, torch.Tensor]:
    """Training codes for the probes, interpolations between held-out pairs, per-class samples,
    latent arithmetic."""
    device = x.device
    x_train, y_train = dataset.sample(N_PROBE_TRAIN, generator(config.seed, "data", "probe"))
    x_train, y_train = x_train.to(device), y_train.to(device)
    out = {"f_train": _batched(enc, x_train, y_train, size=IMAGE_BATCH), "y_train": y_train, "x_train": x_train}
    pairs = min(N_PAIRS, x.shape[0] // 2)
    if pairs:
        xa, xb, ya = x[0:2 * pairs:2], x[1:2 * pairs:2], y[0:2 * pairs:2]
        za, zb = enc(xa, ya), enc(xb, y[1:2 * pairs:2])
        t = torch.linspace(0, 1, N_STEPS, device=device).view(1, N_STEPS, 1)
        path = (za.unsqueeze(1) * (1 - t) + zb.unsqueeze(1) * t).flatten(0, 1)
        # a conditional model keeps the first image's label along the whole path
        frames = dec(path, ya.repeat_interleave(N_STEPS))
        out["interpolation"] = frames.unflatten(0, (pairs, N_STEPS))
    if strategy.uses_labels:
        z_shared = strategy.prior(N_SHARED_Z)
        out["class_samples"] = torch.stack([dec(z_shared, torch.full((N_SHARED_Z,), k, device=device, dtype=torch.long))
                                            for k in range(dataset.n_classes)])
    else:  # a label-conditioned model is handed the class: no arithmetic to judge
        out.update(_arithmetic(dataset, config, out["f_train"], y_train, z, y, dec))
    return out


def _arithmetic(dataset: Dataset, config: RunConfig, f_train: torch.Tensor, y_train: torch.Tensor,
                z: torch.Tensor, y: torch.Tensor, dec) -> dict[str, torch.Tensor]:
    """Latent arithmetic (the ALI/DCGAN papers' attribute vectors): for class pairs a -> b, the
    mean training code of b minus that of a, added at each strength to the codes of the held-out
    images of class a; the feature network (a fixed classifier) gives each decoded image's
    probability of class b. Pairs a -> a + 1 (mod K) of the classes present; with two classes
    (e.g. a CelebA attribute) both directions: the "smile vector" and its inverse."""
    from .feature_net import feature_net

    classes = [k for k in range(dataset.n_classes) if (y_train == k).any() and (y == k).any()]
    pairs = [(a, classes[(i + 1) % len(classes)]) for i, a in enumerate(classes)][:MAX_ARITHMETIC_PAIRS]
    if len(classes) < 2:
        return {}
    classifier = feature_net(dataset, config.data)
    strengths = torch.tensor(ARITHMETIC_STRENGTHS, device=z.device)
    means = {k: f_train[y_train == k].mean(0) for k in classes}
    frames, probs = [], []
    for a, b in pairs:
        codes = z[y == a]
        moved = (codes.unsqueeze(1) + strengths.view(1, -1, *[1] * (codes.dim() - 1)) * (means[b] - means[a]))
        images = _batched(lambda c: dec(c, None), moved.flatten(0, 1), size=IMAGE_BATCH)
        p = classifier.probabilities(images)[:, b].reshape(len(codes), len(strengths))
        probs.append(p.mean(0))
        frames.append(images.unflatten(0, (len(codes), len(strengths)))[0])
    return {"arith_frames": torch.stack(frames), "arith_target_prob": torch.stack(probs),
            "arith_pairs": torch.tensor(pairs), "arith_strengths": strengths}


def tidy_rows(config: RunConfig, values: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per metric: (study, dataset, method, seed, metric, value)."""
    base = {"study": config.study, "dataset": config.data.label(), "method": config.label, "seed": config.seed}
    return [{**base, "metric": k, "value": v} for k, v in values.items()]


def curve_rows(strategy: Strategy, config: RunConfig, dataset: Dataset, held_out: tuple[torch.Tensor, torch.Tensor],
               phase: str, step: int, seconds: float) -> list[dict[str, Any]]:
    """One point of a run's curve: the final evaluation's metrics for the strategy's weights now
    (none where its outputs are not finite: the training loop's own checks stop such a run)."""
    try:
        values, _ = evaluate(strategy, dataset, *held_out, config, final=False)
    except Diverged:
        return []
    base = {"study": config.study, "dataset": config.data.label(), "method": config.label, "seed": config.seed,
            "phase": phase, "step": step, "seconds": round(seconds, 3)}
    return [{**base, "metric": k, "value": v} for k, v in values.items()]
