"""The duckdb engine (`data.engine=duckdb`): prepare a log larger than memory.

DuckDB reads the log into a database file in a scratch folder under the cache dir, runs the cleaning rules in
SQL (`duck_clean`) with a memory limit, spilling to disk beyond it, and the sequences are streamed out of the
chronologically ordered table in chunks straight into .npy files of the cache entry (`sequences`' npy layout);
the result is that entry, memory-mapped. Item indices are assigned by first appearance in the sorted order
and users are in id-text order, exactly as `prepare.sequences` does on the arrow engine.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from seqexp.data.cache import warn_unwritable
from seqexp.data.duck_clean import DuckCleaning, clean
from seqexp.data.duck_read import connect, load_raw
from seqexp.data.prep_report import PrepReport
from seqexp.data.sequences import NPY_PARTS, PreparedData, commit_entry, new_entry_dir, write_ids

CHUNK = 4 << 20  # events per fetched batch: 4M x (8 + 8 + 2) bytes = 72 MB in flight


def prepare_duckdb(path: Path, file_sha: str, key: str, s: dict[str, Any], entry: Path | None) -> PreparedData:
    """Prepare `path` and write the cache entry `entry` (a temporary one when there is no cache dir)."""
    scratch_root = entry.parent.parent / "duckdb-scratch" if entry is not None else None
    if scratch_root is not None:
        try:
            scratch_root.mkdir(parents=True, exist_ok=True)
            entry.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            warn_unwritable(scratch_root.parent, e)
            scratch_root, entry = None, None
    scratch = Path(tempfile.mkdtemp(prefix="prepare-", dir=scratch_root))
    target = entry if entry is not None else scratch / "entry"
    try:
        con = connect(scratch)
        try:
            src = load_raw(con, path, s)
            rows_in = src.n_rows + len(src.blank_lines) + src.n_malformed
            report = PrepReport(source=str(path), file_sha256=file_sha, rows_in=rows_in)
            c = clean(con, src, s, report, path)
            write_entry(c, key, target)
        finally:
            con.close()
        return PreparedData.load(target)  # mapped: the pages stay valid after the scratch folder is removed
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_entry(c: DuckCleaning, key: str, directory: Path) -> None:
    """The CSR arrays of table `ord` (rule = 0, in rowid order) as .npy files, plus ids and meta, atomically."""
    con = c.con
    first = con.execute("SELECT i, min(rowid) AS f FROM ord WHERE rule = 0 GROUP BY i ORDER BY f").fetchnumpy()
    by_appearance = first["i"].astype(np.int64)
    index_of = np.zeros(len(c.items), dtype=np.int64)
    index_of[by_appearance] = np.arange(1, len(by_appearance) + 1)
    per_user = con.execute("SELECT u, count(*) AS n FROM ord WHERE rule = 0 GROUP BY u ORDER BY u").fetchnumpy()
    offsets = np.append(0, np.cumsum(per_user["n"])).astype(np.int64)
    n_events = int(offsets[-1])
    vocab, rank = _behavior_vocab(c)
    tmp = new_entry_dir(directory)
    arrays = {"items": np.dtype(np.int64)}
    if c.has("t"):
        arrays["timestamps"] = np.dtype(np.float64)
    if c.has("b"):
        arrays["behaviors"] = np.dtype(np.int16)
    files = {name: open(tmp / f"{name}.npy", "wb") for name in arrays}
    try:
        for name, f in files.items():
            np.lib.format.write_array_header_2_0(
                f, {"descr": np.lib.format.dtype_to_descr(arrays[name]), "fortran_order": False, "shape": (n_events,)}
            )
        columns = ", ".join(["i"] + (["ts"] if c.has("t") else []) + (["b"] if c.has("b") else []))
        reader = con.sql(f"SELECT {columns} FROM ord WHERE rule = 0").to_arrow_reader(CHUNK)
        for batch in reader:  # rowid order: the table was written sorted and insertion order is preserved
            files["items"].write(index_of[batch.column("i").to_numpy()].tobytes())
            if "timestamps" in files:
                files["timestamps"].write(batch.column("ts").to_numpy().astype(np.float64).tobytes())
            if "behaviors" in files:
                files["behaviors"].write(rank[batch.column("b").to_numpy()].tobytes())
    finally:
        for f in files.values():
            f.close()
    np.save(tmp / "offsets.npy", offsets)
    write_ids(tmp, c.items[by_appearance], "items.parquet", "item_id")
    write_ids(tmp, c.users[per_user["u"].astype(np.int64)], "users.parquet", "user_id")
    c.report.users, c.report.items, c.report.events = len(per_user["u"]), len(by_appearance), n_events
    meta = {"fingerprint": key, "behavior_vocab": vocab, "n_events": n_events, "layout": "npy"}
    parts = NPY_PARTS + tuple(f"{name}.npy" for name in [*arrays, "offsets"])
    commit_entry(tmp, directory, meta, c.report, parts)


def _behavior_vocab(c: DuckCleaning) -> tuple[list[str], np.ndarray]:
    """The behaviours still used, in text order, and code -> rank in that vocabulary (int16)."""
    if c.behaviors is None:
        return [], np.zeros(0, dtype=np.int16)
    used = c.con.execute("SELECT DISTINCT b FROM ord WHERE rule = 0 ORDER BY b").fetchnumpy()["b"].astype(np.int64)
    rank = np.zeros(len(c.behaviors), dtype=np.int16)
    rank[used] = np.arange(len(used))
    return [str(v) for v in c.behaviors[used]], rank
