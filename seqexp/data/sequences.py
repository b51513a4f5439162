"""`PreparedData`: cleaned per-user sequences in CSR form, and its on-disk cache.

Layout: all events in one flat array ordered by (user, time); user u owns
`items[offsets[u]:offsets[u + 1]]`. Item index 0 is padding, real items are 1..n_items.

A cache entry holds the ids as parquet and the event arrays either as parquet (the arrow engine: read into
memory) or as .npy files (the duckdb engine: memory-mapped read-only, so that a 100M-event log is never read
whole and every DDP rank on a machine shares the same pages). `meta.json` says which (`layout`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from seqexp.data.prep_report import PrepReport
from seqexp.io import sha256_file, umask

PARTS = ("events.parquet", "users.parquet", "items.parquet")
NPY_ARRAYS = ("items", "timestamps", "behaviors", "offsets")  # the .npy layout: <name>.npy when present
NPY_PARTS = ("users.parquet", "items.parquet")


@dataclass
class PreparedData:
    item_ids: np.ndarray  # (N,) raw item ids as str; item index i + 1 <-> item_ids[i]
    user_ids: np.ndarray  # (U,) raw user ids as str
    offsets: np.ndarray  # (U + 1,) int64, CSR offsets into `items`
    items: np.ndarray  # (E,) int64 item indices in 1..N, chronological within each user (np.memmap: .npy layout)
    timestamps: np.ndarray | None  # (E,) float64 unix seconds, None for order-only logs
    behaviors: np.ndarray | None  # (E,) int16 codes into behavior_vocab, None without a behaviour column
    behavior_vocab: list[str]
    report: PrepReport
    fingerprint: str  # hash of the input file's bytes and the preparation settings
    item_side: dict[str, np.ndarray] = field(default_factory=dict)  # column -> (N,) side text per item (not cached)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_events(self) -> int:
        return len(self.items)

    def sequence(self, user: int) -> np.ndarray:
        return self.items[self.offsets[user] : self.offsets[user + 1]]

    # ---- cache -------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write atomically: a temp folder renamed into place, so a killed job never leaves half a cache."""
        tmp = new_entry_dir(directory)
        events = {"item": self.items}
        if self.timestamps is not None:
            events["timestamp"] = self.timestamps
        if self.behaviors is not None:
            events["behavior"] = self.behaviors
        pq.write_table(pa.table(events), tmp / "events.parquet")
        pq.write_table(
            pa.table({"user_id": self.user_ids.astype(str), "offset": self.offsets[:-1]}), tmp / "users.parquet"
        )
        write_ids(tmp, self.item_ids, "items.parquet", "item_id")
        meta = {"fingerprint": self.fingerprint, "behavior_vocab": self.behavior_vocab, "n_events": self.n_events}
        commit_entry(tmp, directory, meta, self.report, PARTS)

    @classmethod
    def load(cls, directory: Path) -> PreparedData:
        meta = json.loads((directory / "meta.json").read_text())
        if meta.get("layout") == "npy":
            return _load_npy(directory, meta)
        for name in PARTS:  # a damaged entry must fail here, not train on garbage
            if sha256_file(directory / name) != meta["sha256"][name]:
                raise ValueError(f"checksum mismatch for {directory / name}")
        events = pq.read_table(directory / "events.parquet")
        users = pq.read_table(directory / "users.parquet")
        items = events.column("item").to_numpy()
        if len(items) != meta["n_events"]:
            raise ValueError(f"cache entry {directory} is incomplete")
        offsets = np.append(users.column("offset").to_numpy(), len(items)).astype(np.int64)
        names = set(events.column_names)
        return cls(
            item_ids=read_ids(directory / "items.parquet", "item_id"),
            user_ids=np.asarray(users.column("user_id").to_pylist(), dtype=object),
            offsets=offsets,
            items=items.astype(np.int64),
            timestamps=events.column("timestamp").to_numpy() if "timestamp" in names else None,
            behaviors=events.column("behavior").to_numpy() if "behavior" in names else None,
            behavior_vocab=list(meta["behavior_vocab"]),
            report=PrepReport.from_dict(meta["report"]),
            fingerprint=meta["fingerprint"],
        )


def _load_npy(directory: Path, meta: dict) -> PreparedData:
    """The .npy layout: event arrays memory-mapped read-only. Every file's sha256 is checked as in the parquet
    layout (read sequentially, not through the map, so it costs time (~1 s per GB), not resident memory)."""
    for name in meta["sha256"]:
        if sha256_file(directory / name) != meta["sha256"][name]:
            raise ValueError(f"checksum mismatch for {directory / name}")
    present = [n for n in NPY_ARRAYS if (directory / f"{n}.npy").exists()]
    arrays = {n: np.load(directory / f"{n}.npy", mmap_mode="r") for n in present}
    if len(arrays["items"]) != meta["n_events"] or arrays["offsets"][-1] != meta["n_events"]:
        raise ValueError(f"cache entry {directory} is incomplete")
    return PreparedData(
        item_ids=read_ids(directory / "items.parquet", "item_id"),
        user_ids=read_ids(directory / "users.parquet", "user_id"),
        offsets=arrays["offsets"],
        items=arrays["items"],
        timestamps=arrays.get("timestamps"),
        behaviors=arrays.get("behaviors"),
        behavior_vocab=list(meta["behavior_vocab"]),
        report=PrepReport.from_dict(meta["report"]),
        fingerprint=meta["fingerprint"],
    )


def write_ids(directory: Path, ids: np.ndarray, name: str, column: str) -> None:
    pq.write_table(pa.table({column: pa.array(ids.astype(str), pa.string())}), directory / name)


def read_ids(path: Path, column: str) -> np.ndarray:
    return pq.read_table(path).column(column).to_numpy(zero_copy_only=False).astype(object)


def new_entry_dir(directory: Path) -> Path:
    """A fresh temp folder next to `directory`, readable like the rest of a shared cache."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=directory.name + ".tmp-", dir=directory.parent))
    os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes 0700: keep a shared cache readable
    return tmp


def commit_entry(tmp: Path, directory: Path, meta: dict, report: PrepReport, parts: tuple[str, ...]) -> None:
    """meta.json (with the parts' sha256) written last, then the folder renamed into place."""
    meta = {**meta, "report": report.to_dict(), "sha256": {name: sha256_file(tmp / name) for name in parts}}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    if directory.exists():  # a damaged entry being rebuilt
        shutil.rmtree(directory, ignore_errors=True)
    try:
        os.replace(tmp, directory)
    except OSError:  # another job of the sweep wrote the same entry first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
