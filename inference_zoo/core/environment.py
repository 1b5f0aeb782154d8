"""What a run records about where it ran: versions, device, git commit, command line."""
from __future__ import annotations

import functools
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .errors import UserError
from .threads import processes_in_use


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU; asking for CUDA without one is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("device cuda requested but CUDA is not available (use --device cpu or auto)")
    return torch.device(name)


@functools.cache
def git_commit() -> str | None:
    """The source commit ("-dirty" with uncommitted changes), read once per process: the code a
    process runs is what it imported at start, whatever is committed while it trains."""
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what platform knows (often only "x86_64")."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def command_line(argv: list[str]) -> str:
    """How a user would type the command ``argv`` ran: ``izoo ...`` for the script and for
    ``python -m inference_zoo ...`` (argv[0] is then the package's ``__main__.py``, a path of this
    machine's checkout), ``python ...`` otherwise."""
    if argv and (argv[0].endswith("izoo") or argv[0].replace("\\", "/").endswith("inference_zoo/__main__.py")):
        return " ".join(["izoo", *argv[1:]])
    return f"python {' '.join(argv)}"


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what the platform module says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device) -> dict[str, Any]:
    return {
        "inference_zoo": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "training_processes": processes_in_use(),
        "git_commit": git_commit(),
        "argv": sys.argv,
    }
