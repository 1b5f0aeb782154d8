"""Atomic writes: a kill or a full disk mid-write leaves the previous good file, never half a file."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .errors import UserError


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Call ``write(f)`` on a temp file beside ``path``, fsync it, then rename it over ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_csv(path: str | Path, rows: Iterable[Mapping[str, Any]], fieldnames: list[str]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def read_json(path: str | Path, what: str = "restore it or run again") -> Any:
    """A JSON file's content; a missing, unreadable or damaged file is one UserError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not valid JSON"
        raise UserError(f"cannot read {path} ({reason}); {what}") from None


def read_json_object(path: str | Path, what: str = "restore it or run again") -> dict[str, Any]:
    """Like ``read_json``, for files that must hold a JSON object (configs, records)."""
    value = read_json(path, what)
    if not isinstance(value, dict):
        raise UserError(f"cannot read {path} (holds {type(value).__name__}, not an object); {what}")
    return value


def save_arrays(path: str | Path, arrays: Mapping[str, Any]) -> None:
    """Arrays into a compressed .npz, atomically."""
    import numpy as np

    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))


def load_arrays(path: str | Path) -> dict[str, Any]:
    """The arrays of an .npz file (no pickles); a damaged file is one UserError naming it."""
    import numpy as np
    import zipfile

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"cannot read {path} (damaged or not an .npz of arrays: {exc}); "
                        "run that cell again") from None


def save_torch(path: str | Path, obj: Any) -> None:
    import torch

    atomic_write(path, lambda f: torch.save(obj, f))


def load_torch(path: str | Path) -> Any:
    """Load a checkpoint of plain tensors/containers; anything carrying code is refused."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt/unsafe files
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found:
            raise UserError(f"refused to load checkpoint {path}: it carries code (it references "
                            f"{found.group(1)}); only plain tensors and containers are loaded") from None
        raise UserError(f"cannot load checkpoint {path}: corrupt, truncated or not an inference_zoo "
                        "checkpoint") from None
