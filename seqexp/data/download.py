"""Fetch a public data set's official archive into the data root, verify its checksum, unpack it.

Used by presets with a `download:` block (MovieLens): when `data.path` lacks the log, the archive is
fetched (any URL urllib opens, so `file://` works for tests and mirrors), checked against the published
checksum, and the members under `download.member_root/` are unpacked into `data.path`. Offline, the error
says which file to put where.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seqexp.errors import DataError

log = logging.getLogger(__name__)


def ensure_downloaded(data_cfg: Mapping[str, Any]) -> None:
    """Download and unpack `data.download` when the log named by data.path / data.filename is missing."""
    spec = data_cfg.get("download")
    if not spec or not spec.get("url"):
        return
    folder = Path(str(data_cfg["path"])).expanduser()
    target = folder / str(data_cfg["filename"]) if data_cfg.get("filename") else folder
    if target.exists():
        return
    url, checksum = str(spec["url"]), str(spec.get("checksum") or "")
    where = f"{folder}/" if data_cfg.get("filename") else str(folder)
    manual = (
        f"download {url} (checksum {checksum or 'not published'}), unpack it and put "
        f"{data_cfg.get('filename') or target.name} in {where}; or point data.path at your copy"
    )
    if not spec.get("enabled", True):
        raise DataError(f"{target} does not exist and data.download.enabled=false: {manual}")
    with tempfile.TemporaryDirectory(prefix="seqexp-download-") as tmp:
        archive = Path(tmp) / Path(url).name
        log.info("downloading %s", url)
        try:
            with urllib.request.urlopen(url, timeout=float(spec.get("timeout_s", 60))) as r, open(archive, "wb") as f:
                shutil.copyfileobj(r, f)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise DataError(f"{target} does not exist and {url} could not be fetched ({e}). Offline? {manual}") from e
        verify_checksum(archive, checksum, url)
        unpack(archive, folder, str(spec.get("member_root") or ""))
    if not target.exists():
        raise DataError(f"{url} was unpacked into {folder} but holds no {target.name}; check data.download.member_root")
    log.info("unpacked %s into %s", url, folder)


def verify_checksum(path: Path, checksum: str, source: str) -> None:
    """checksum: "md5:<hex>" or "sha256:<hex>" (the form the publisher gives); empty skips the check."""
    if not checksum:
        return
    algo, _, expected = checksum.partition(":")
    if algo not in ("md5", "sha256") or not expected:
        raise DataError(f"data.download.checksum={checksum!r}: write it as md5:<hex> or sha256:<hex>")
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    if h.hexdigest() != expected.lower():
        raise DataError(
            f"{source}: {algo} {h.hexdigest()} does not match the published {expected}; the download is damaged "
            f"or the archive changed upstream. Nothing was unpacked"
        )


def unpack(archive: Path, folder: Path, member_root: str) -> None:
    """Unpack the zip members under `member_root/` into `folder` (refusing paths that leave it), as one unit: into a
    staging folder beside it first, moved into place only when every member was read whole. Formerly a damaged
    archive (a bad CRC, a mirror's HTML page, a kill) ended in zipfile's traceback and left a cut-off log that the
    next run trained on without a word."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = member_root.strip("/") + "/" if member_root else ""
    folder = folder.resolve()  # staged inside it: one filesystem for os.replace, also when it is a link elsewhere
    staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=folder))
    try:
        moves = []
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if info.is_dir() or not info.filename.startswith(prefix):
                    continue
                relative = info.filename[len(prefix) :]
                dest = (folder / relative).resolve()
                if folder.resolve() not in dest.parents:
                    raise DataError(f"{archive.name}: member {info.filename!r} would unpack outside {folder}")
                staged = staging / relative
                staged.parent.mkdir(parents=True, exist_ok=True)
                with z.open(info) as src, open(staged, "wb") as out:
                    shutil.copyfileobj(src, out)
                moves.append((staged, dest))
        for staged, dest in moves:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, dest)
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise DataError(
            f"{archive.name} is not a whole zip archive ({e}): nothing was unpacked into {folder}; fetch it again, "
            f"or unpack your own copy there"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
