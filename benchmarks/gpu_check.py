"""The GPU check: one script to run, in under 5 minutes, when a CUDA machine is available.

    python benchmarks/gpu_check.py                 # on a CUDA machine
    python benchmarks/gpu_check.py --dry-run       # the same steps, tiny, on the CPU (CI runs this)

It (1) trains every built-in strategy briefly on the device through ``izoo compare`` (stacked and
single engines) and checks the results are finite; (2) trains a stack of seeds and the same seed
alone on the device and reports whether the member's weights equal the lone run's (they do bit
for bit on CPU; GPU kernels may not promise it); (3) times the stacked engine at K = 1, 16, 64,
256 against the plain reference loop of ``train_speed.py`` on the device, in fp32 and bf16
autocast, with and without ``--compile``; (4) trains one short image run of ALI and the VAE per
conv architecture (dcgan, ali32) on FakeData (ALI only with ``--dry-run``). Everything goes to
``benchmarks/results/gpu_check.json`` (with ``--dry-run``: ``gpu_check_dry_run.json``), failures
included, so one run says what works.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import platform
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

HERE = Path(__file__).resolve().parent


def _train_speed():
    spec = importlib.util.spec_from_file_location("train_speed", HERE / "train_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _izoo(*args: str) -> int:
    from inference_zoo.cli import main

    return main(list(args))


def _check(name: str, record: list[dict[str, Any]], action: Callable[[], Any]) -> None:
    t0 = time.perf_counter()
    try:
        result = action()
        record.append({"check": name, "ok": True, "result": result, "seconds": round(time.perf_counter() - t0, 2)})
    except Exception as exc:  # noqa: BLE001 - a failed check is a finding, not the end of the run
        record.append({"check": name, "ok": False, "error": f"{type(exc).__name__}: {exc}",
                       "trace": traceback.format_exc(limit=3), "seconds": round(time.perf_counter() - t0, 2)})
    print(f"{'ok  ' if record[-1]['ok'] else 'FAIL'} {name} ({record[-1]['seconds']} s)", flush=True)


def strategies_run(device: str, steps: int, tmp: Path, extra: list[str]) -> dict[str, Any]:
    """Every built-in strategy, both engines, a short run on the device: all results finite."""
    import csv

    out: dict[str, Any] = {}
    for engine in ("stacked", "single"):
        folder = tmp / f"strategies-{engine}"
        code = _izoo("compare", "--methods", "ali,alice,bigan,latent,posthoc,vae", "--data", "grid", "--preset", "quick",
                     "--steps", str(steps), "--seeds", "2", "--engine", "auto" if engine == "stacked" else "single",
                     "--device", device, "--out", str(folder), "--no-progress", *extra)
        rows = list(csv.DictReader(open(folder / "results.csv"))) if code == 0 else []
        bad = [f"{r['method']}/{r['metric']}" for r in rows if not math.isfinite(float(r["value"]))]
        if code != 0 or bad:
            raise RuntimeError(f"{engine}: exit {code}, non-finite {bad}")
        out[engine] = {"rows": len(rows)}
    return out


def stack_independence(device: str, steps: int, tmp: Path, extra: list[str]) -> dict[str, Any]:
    """A member of a stack of 3 against the same seed alone, on the device."""
    common = ["compare", "--methods", "ali", "--data", "grid", "--preset", "quick", "--steps", str(steps),
              "--engine", "stacked", "--device", device, "--no-progress", *extra]
    assert _izoo(*common, "--seeds", "3", "--out", str(tmp / "stack")) == 0
    assert _izoo(*common, "--seeds", "1-1", "--out", str(tmp / "alone")) == 0
    a = torch.load(tmp / "stack/runs/grid/ali/seed1/checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp / "alone/runs/grid/ali/seed1/checkpoint.pt", weights_only=True)["model"]
    worst = max((a[k].double() - b[k].double()).abs().max().item() for k in a)
    return {"bit_equal": all(torch.equal(a[k], b[k]) for k in a), "max_abs_difference": worst}


def speed(device: str, members: list[int], steps: int, batch: int, compile_: bool) -> list[dict[str, Any]]:
    """Run-steps per second of the stacked engine at each K (fp32, bf16 autocast; compiled where
    asked) against the plain reference loop on the same device."""
    ts = _train_speed()
    reference = ts.plain_reference(steps, batch, device)
    records = [{"configuration": "plain reference", "run_steps_per_s": round(reference, 1)}]
    variants = [("fp32", False, False), ("bf16", True, False)]
    if compile_:
        variants += [("fp32 compiled", False, True), ("bf16 compiled", True, True)]
    for k in members:
        for label, amp, comp in variants:
            stack_steps = max(10, steps // max(1, k // 16))
            try:
                rate = ts.izoo_stacked(stack_steps, batch, k, comp, device=device, amp=amp)
                records.append({"configuration": f"stacked K={k} {label}", "run_steps_per_s": round(rate, 1),
                                "ratio_to_reference": round(rate / reference, 2)})
            except Exception as exc:  # noqa: BLE001 - e.g. out of memory at K = 256: say so, go on
                records.append({"configuration": f"stacked K={k} {label}", "error": f"{type(exc).__name__}: {exc}"})
            print(f"     {records[-1]}", flush=True)
    return records


def image_runs(device: str, steps: int, methods: str, images: int, tmp: Path, extra: list[str],
               arch: dict[str, list[str]]) -> dict[str, Any]:
    """One short run of ``methods`` per conv architecture on FakeData (no download), ``images``
    training images (the sample-quality metrics' feature network trains on them first)."""
    out = {}
    for preset in ("dcgan", "ali32"):
        side = "64" if preset == "dcgan" else "32"
        code = _izoo("compare", "--methods", methods, "--data", f"fake:side={side},train_size={images}",
                     "--preset", preset, "--steps", str(steps), "--n-train", str(images), "--device", device,
                     "--out", str(tmp / preset), "--no-progress", *extra, *arch.get(preset, []))
        if code != 0:
            raise RuntimeError(f"{preset}: exit {code}")
        out[preset] = "ok"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU: checks the script itself")
    parser.add_argument("--device", default=None, help="default: cuda (cpu with --dry-run)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    device = args.device or ("cpu" if args.dry_run else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("gpu_check: CUDA is not available here (use --dry-run to check the script on the CPU)")
    if args.dry_run:
        # the image check's feature network (for its metrics) and evaluation cost more than its training
        # and the scoring samples and conv widths are cut too: the dry run checks the paths, not the numbers
        sizes = {"train_steps": 4, "members": [1, 2], "speed_steps": 10, "batch": 50, "compile": False, "image_steps": 1,
                 "image_methods": "ali", "images": 128,
                 "eval": ["--set", "eval.n_three_sigma=200", "--set", "eval.n_responsibility=300",
                          "--set", "eval.n_prior_match=100"],
                 "image_arch": {"dcgan": ["-a", "encoder_hidden=8x8x8x8", "-a", "decoder_hidden=8x8x8x8",
                                          "-a", "discriminator_hidden=8x8x8x8"]}}
    else:
        sizes = {"train_steps": 200, "members": [1, 16, 64, 256], "speed_steps": 300, "batch": 100, "compile": True,
                 "image_steps": 20, "image_methods": "ali,vae", "images": 256, "eval": [], "image_arch": {}}
    record: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        _check("every strategy, both engines", record, lambda: strategies_run(device, sizes["train_steps"], tmp, sizes["eval"]))
        _check("a stack member equals its seed alone", record,
               lambda: stack_independence(device, sizes["train_steps"], tmp, sizes["eval"]))
        _check("speed against the plain reference", record,
               lambda: speed(device, sizes["members"], sizes["speed_steps"], sizes["batch"], sizes["compile"]))
        _check("one image run per conv architecture", record,
               lambda: image_runs(device, sizes["image_steps"], sizes["image_methods"], sizes["images"], tmp,
                                  sizes["eval"], sizes["image_arch"]))
    meta = {"device": torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor() or "cpu",
            "torch": torch.__version__, "dry_run": args.dry_run, "sizes": sizes, "machine": platform.platform()}
    out = args.out or HERE / "results" / ("gpu_check_dry_run.json" if args.dry_run else "gpu_check.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "checks": record}, indent=2, default=str) + "\n")
    print(f"wrote {out}")
    if not all(c["ok"] for c in record):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
