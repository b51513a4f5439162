"""`PreparedData`: cleaned per-user sequences in CSR form, and its on-disk cache.

Layout: all events in one flat array ordered by (user, time); user u owns
`items[offsets[u]:offsets[u + 1]]`. Item index 0 is padding, real items are 1..n_items.
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


@dataclass
class PreparedData:
    item_ids: np.ndarray  # (N,) raw item ids as str; item index i + 1 <-> item_ids[i]
    user_ids: np.ndarray  # (U,) raw user ids as str
    offsets: np.ndarray  # (U + 1,) int64, CSR offsets into `items`
    items: np.ndarray  # (E,) int64 item indices in 1..N, chronological within each user
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
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=directory.name + ".tmp-", dir=directory.parent))
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes 0700: keep a shared cache readable
        events = {"item": self.items}
        if self.timestamps is not None:
            events["timestamp"] = self.timestamps
        if self.behaviors is not None:
            events["behavior"] = self.behaviors
        pq.write_table(pa.table(events), tmp / "events.parquet")
        pq.write_table(
            pa.table({"user_id": self.user_ids.astype(str), "offset": self.offsets[:-1]}), tmp / "users.parquet"
        )
        pq.write_table(pa.table({"item_id": self.item_ids.astype(str)}), tmp / "items.parquet")
        meta = {
            "fingerprint": self.fingerprint,
            "behavior_vocab": self.behavior_vocab,
            "n_events": self.n_events,
            "report": self.report.to_dict(),
            "sha256": {name: sha256_file(tmp / name) for name in PARTS},
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if directory.exists():  # a damaged entry being rebuilt
            shutil.rmtree(directory, ignore_errors=True)
        try:
            os.replace(tmp, directory)
        except OSError:  # another job of the sweep wrote the same entry first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> PreparedData:
        meta = json.loads((directory / "meta.json").read_text())
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
            item_ids=np.asarray(pq.read_table(directory / "items.parquet").column("item_id").to_pylist(), dtype=object),
            user_ids=np.asarray(users.column("user_id").to_pylist(), dtype=object),
            offsets=offsets,
            items=items.astype(np.int64),
            timestamps=events.column("timestamp").to_numpy() if "timestamp" in names else None,
            behaviors=events.column("behavior").to_numpy() if "behavior" in names else None,
            behavior_vocab=list(meta["behavior_vocab"]),
            report=PrepReport.from_dict(meta["report"]),
            fingerprint=meta["fingerprint"],
        )
