"""One user per line, `uid item item ...`, items in time order (the S3Rec data format)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from seqexp.data.readers.arrow_csv import Skipped, read_lines
from seqexp.data.readers.raw_log import RawLog
from seqexp.errors import DataError


def read_user_lines(path: Path, sep: str, encoding: str) -> RawLog:
    """Each line becomes one event per item, with the line number as its row; a line with a user and no
    items is a malformed row (counted, with an example)."""
    lines = read_lines(path, encoding)
    parts = pc.split_pattern(pc.utf8_trim_whitespace(lines), sep)
    counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
    skipped = Skipped()
    bad = np.flatnonzero(counts < 2)
    for i in bad:
        skipped.add(int(i) + 1, str(lines[int(i)]), "a user with no items")
    good = np.flatnonzero(counts >= 2)
    parts = parts.take(pa.array(good))
    _refuse_repeated_users(path, pc.list_element(parts, 0), good)
    items = pc.list_slice(parts, 1)
    parent = pc.list_parent_indices(items).to_numpy()
    table = pa.table(
        {
            "row": pa.array(good[parent] + 1),
            "user_id": pc.list_element(parts, 0).take(pa.array(parent)),
            "item_id": pc.list_flatten(items),
        }
    )
    return RawLog(table, skipped.examples, n_malformed=len(bad))


def _refuse_repeated_users(path: Path, users: pa.Array, lines: np.ndarray) -> None:
    """A user on two lines is refused, naming both: formerly their events were joined in file order into one
    history (its validation and test targets taken from the second line), which is not a time order."""
    ids = users.to_numpy(zero_copy_only=False)
    _, first, counts = np.unique(ids, return_index=True, return_counts=True)
    if (counts > 1).any():
        user = ids[first[np.flatnonzero(counts > 1)[0]]]
        at = (lines[ids == user][:2] + 1).tolist()
        raise DataError(
            f"{path}: user {user!r} has more than one line (lines {at[0]} and {at[1]}; {int((counts > 1).sum())} users "
            f"in all); data.format=lines holds one line per user, its items in time order: join each user's lines, or "
            f"give the log as data=csv with timestamps"
        )
