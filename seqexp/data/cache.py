"""The prepared-data cache under `paths.cache_dir`: entries keyed by the log's sha256 and the settings.

Hashing a multi-GB log on every run would cost more than preparing it from the cache, so the sha256 is
remembered in `fingerprints.json` under the file's full stat identity: path, device, inode, size, mtime
*and ctime*. Tools that restore an mtime (`cp -p`, `rsync -a`, `touch -r`, `os.utime`) cannot restore a
ctime, and a file replaced by rename has another inode, so a rewritten log is always hashed again. A file
changed within the filesystem's timestamp tick after being hashed would keep its ctime: a file younger
than that tick is hashed only after the tick has passed (`_settled_stat`), and on filesystems with
whole-second timestamps a file younger than 2 s is not remembered at all.

A cache dir that cannot be written is not an error: the run prepares without caching and says so once.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from seqexp.data.sequences import PreparedData
from seqexp.io import sha256_file, sha256_json, write_json

log = logging.getLogger(__name__)

SETTLE_NS = 50_000_000  # longer than the kernel's timestamp tick (a jiffy, <= 10 ms)
COARSE_NS = 2_000_000_000  # on whole-second timestamps, a file this young is not remembered


def remembered_fingerprint(path: Path, cache_dir: Path | None) -> str:
    """sha256 of the file, remembered by its stat identity (see the module docstring)."""
    if cache_dir is None:
        return sha256_file(path)
    st = _settled_stat(path)
    key = _stat_key(path, st)
    memo_path = cache_dir / "fingerprints.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    if isinstance(memo, dict) and isinstance(memo.get(key), str):
        return memo[key]
    digest = sha256_file(path)
    if _stat_key(path, path.stat()) != key or _too_young_to_remember(st):
        return digest  # changed while being read, or too fresh to tell a later change apart: not remembered
    prefix = f"{path.resolve()}|"
    memo = {k: v for k, v in memo.items() if not k.startswith(prefix)} if isinstance(memo, dict) else {}
    memo[key] = digest  # older stats of the same path can never match again: dropped
    try:
        write_json(memo_path, memo)
    except OSError as e:
        warn_unwritable(cache_dir, e)
    return digest


def folder_fingerprint(files: list[Path], folder: Path, cache_dir: Path | None) -> str:
    """sha256 of a folder's files (their paths inside it and their bytes, each remembered as a single log's is):
    an edit that keeps the size and mtime still changes it."""
    return sha256_json([[str(f.relative_to(folder)), remembered_fingerprint(f, cache_dir)] for f in sorted(files)])


def load_entry(entry: Path) -> PreparedData | None:
    """The cached result, or None when there is none or it is damaged (a damaged entry is rebuilt, never used)."""
    if not entry.exists():
        return None
    try:
        data = PreparedData.load(entry)
    except Exception as e:  # any damage (checksum, truncated parquet, bad JSON): rebuild
        log.warning("cache entry %s is unreadable (%s); rebuilding it", entry, e)
        return None
    log.info("prepared data from cache %s", entry)
    return data


def save_entry(data: PreparedData, entry: Path) -> None:
    try:
        data.save(entry)
    except OSError as e:
        warn_unwritable(entry.parent.parent, e)


_warned: set[str] = set()


def warn_unwritable(cache_dir: Path, e: OSError) -> None:
    if str(cache_dir) in _warned:
        return
    _warned.add(str(cache_dir))
    log.warning(
        "paths.cache_dir=%s cannot be written (%s: %s): prepared data is not cached, so every run prepares the "
        "log again; set paths.cache_dir (or SEQEXP_CACHE_DIR) to a writable folder",
        cache_dir,
        type(e).__name__,
        e.strerror or e,
    )


def _stat_key(path: Path, st: os.stat_result) -> str:
    return f"{path.resolve()}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"


def _settled_stat(path: Path) -> os.stat_result:
    """The file's stat, taken at least one timestamp tick after its last change."""
    st = path.stat()
    age = time.time_ns() - st.st_ctime_ns
    if 0 <= age < SETTLE_NS:
        time.sleep((SETTLE_NS - age) / 1e9)
        st = path.stat()
    return st


def _too_young_to_remember(st: os.stat_result) -> bool:
    whole_seconds = st.st_ctime_ns % 1_000_000_000 == 0 and st.st_mtime_ns % 1_000_000_000 == 0
    return whole_seconds and time.time_ns() - st.st_ctime_ns < COARSE_NS
