"""File helpers every layer uses: one way to write a file atomically, one way to hash one.

Atomic = a temp file in the same folder, renamed over the target: a reader (or a job killed mid-write) never sees
half a file. `tempfile.mkstemp` creates files 0600; the finished file gets the mode a plain `open()` would give
(0666 minus the umask), so a run or cache dir shared by a team stays readable.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write(f)` on a binary temp file next to `path`, then rename it onto `path` (mode 0666 & ~umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def replace_dir(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temp folder next to `path`, then put it in the place of `path` (mode 0777 & ~umask):
    a set of files written as a unit, so that a failure while writing leaves `path` as it was, never half old and
    half new. A `path` already there is moved aside first (restored if the rename fails) and then deleted."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old = tmp.with_suffix(".old")
    try:
        write(tmp)
        os.chmod(tmp, 0o777 & ~umask())
        if path.exists():
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except OSError:
            if old.exists():
                os.replace(old, path)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def write_json(path: Path, payload: Any) -> None:
    """JSON (numpy values as plain numbers), written atomically."""
    write_text(path, json.dumps(payload, indent=1, default=_json_default))


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """sha256 of a file's bytes, read in chunks (multi-GB logs never sit in memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_json(value: Any) -> str:
    """sha256 of a JSON-able value with sorted keys: a stable key for settings."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=_json_default).encode()).hexdigest()


def make_dir(path: Path) -> Path:
    """mkdir -p with mode 0777 & ~umask (tempfile.mkdtemp would give 0700)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path
