"""Item side data (titles, categories, genres) from a separate item table, aligned with the item indices.

RecBole atomic data sets ship one as `<name>.item` (`item_id:token  movie_title:token_seq  class:token_seq`);
any delimited file or parquet with an id column works (reading: seqexp/data/item_table.py). Side data feeds
pretrained item vectors (text initialisation) and reports; it never changes which events are kept.

Ids are matched as text, normalised as the log's are (seqexp.data.columns): `0002` matches the log's `0002`, and
`12.0` in a column of integer ids matches `12`. An id on several rows takes its first row; rows that disagree on
data.item_side.columns are a warning naming the file, how many ids, an example and the row used.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from seqexp.data.columns import CodedColumn, normalise_float_integers
from seqexp.data.item_table import ItemTable, read_item_table
from seqexp.data.sequences import PreparedData
from seqexp.errors import DataError

log = logging.getLogger(__name__)


def read_item_side(data_cfg: Mapping[str, Any], data: PreparedData) -> dict[str, np.ndarray]:
    """{column: (N,) object array of str or None} for data.item_file, in item-index order (item i + 1 <-> row i).
    An id on several rows takes its first row (a warning when the rows disagree)."""
    path = item_side_path(data_cfg)
    if path is None:
        return {}
    spec = data_cfg["item_side"]
    id_col, columns = str(spec.get("id") or "item_id"), [str(c) for c in spec.get("columns") or []]
    names = [str(n) for n in spec["names"]] if spec.get("names") else None
    item_table = read_item_table(path, data_cfg, id_col, columns, names)
    if item_table.table.num_rows == 0:  # formerly an IndexError from numpy
        raise DataError(f"{path}: the item table (data.item_side.file) has a header but no data rows")
    ids = _table_ids(item_table.table.column(id_col))
    first = _first_rows(ids, item_table, columns, path)
    codes = pc.index_in(pa.array(data.item_ids.astype(str)), value_set=pa.array(ids.values, pa.string()))
    codes = codes.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    rows = np.where(codes >= 0, first[np.maximum(codes, 0)], -1)
    found = rows >= 0
    if not found.any():
        raise DataError(_none_found(path, id_col, data.item_ids, ids))
    if found.all():
        log.info("item side data: all %d items found in %s", data.n_items, path)
    else:  # formerly only an INFO line: those items read as having no category / text, silently
        missing = [str(i) for i in data.item_ids[~found][:5]]
        log.warning(
            "%s: %d of the log's %d items are not in the item table (data.item_side.file), e.g. %s; they have no "
            "side data (no category for ild@10, no text for model.item_init=text)",
            path, int((~found).sum()), data.n_items, missing,
        )  # fmt: skip
    out = {}
    for col in columns:
        out[col] = np.full(data.n_items, None, dtype=object)
        values = item_table.table.column(col).take(pa.array(rows[found]))
        out[col][found] = values.to_numpy(zero_copy_only=False).astype(object)
    return out


def _table_ids(column: pa.ChunkedArray) -> CodedColumn:
    """The table's ids as text, normalised as the log's are (stripped; `12.0` -> `12` in a column of integer
    ids), so that both sides agree; an integer parquet column reads as its digits."""
    return normalise_float_integers(CodedColumn.encode(column))[0]


def _first_rows(ids: CodedColumn, item_table: ItemTable, columns: list[str], path: Path) -> np.ndarray:
    """(V,) the first row of each distinct id (-1: none); ids whose rows disagree on `columns` are warned about."""
    valid = pa.array(ids.codes >= 0)
    by_id = pa.table(
        {
            "id": pa.array(ids.codes).filter(valid),
            "row": pa.array(np.arange(len(ids.codes), dtype=np.int64)).filter(valid),
            **{f"v{j}": item_table.table.column(c).filter(valid) for j, c in enumerate(columns)},
        }
    )
    distinct = pc.CountOptions(mode="all")
    groups = by_id.group_by("id").aggregate(
        [("row", "min"), *[(f"v{j}", "count_distinct", distinct) for j in range(len(columns))]]
    )
    first = np.full(len(ids.values), -1, dtype=np.int64)
    first[groups.column("id").to_numpy()] = groups.column("row_min").to_numpy()
    conflict = np.zeros(groups.num_rows, dtype=bool)
    for j in range(len(columns)):
        conflict |= groups.column(f"v{j}_count_distinct").to_numpy(zero_copy_only=False) > 1
    if conflict.any():
        code = int(groups.column("id").to_numpy()[np.flatnonzero(conflict)[0]])
        log.warning("%s", _conflict_message(path, int(conflict.sum()), ids, code, item_table, columns))
    return first


def _conflict_message(
    path: Path, n: int, ids: CodedColumn, code: int, item_table: ItemTable, columns: list[str]
) -> str:
    """An example id's first row and the first row that disagrees with it, with their lines, and which row is used."""
    rows = np.flatnonzero(ids.codes == code)
    values = item_table.table.select(columns).take(pa.array(rows)).to_pylist()
    j = next(j for j, v in enumerate(values) if v != values[0])
    lines, word, item = item_table.rows.to_numpy(), item_table.row_word, ids.values[code]
    return (
        f"{path}: {n} item id(s) appear on several rows with different values of data.item_side.columns (e.g. item "
        f"{item!r}: {word} {lines[rows[0]]} has {values[0]}, {word} {lines[rows[j]]} has {values[j]}); the first row "
        f"of each id is used ({word} {lines[rows[0]]} for item {item!r}): remove the repeats or make them agree"
    )


def _none_found(path: Path, id_col: str, log_ids: np.ndarray, ids: CodedColumn) -> str:
    """No log item id is in the table: say so, and when the ids differ only in leading zeros, say that."""
    table_ids = [str(v) for v in ids.values[:3]]
    unpadded = {str(v).lstrip("0"): str(v) for v in ids.values}
    hint = "check data.item_side.id"
    padded = next((str(i) for i in log_ids[:1000] if str(i).lstrip("0") in unpadded), None)
    if padded is not None:
        hint = (
            f"they differ only in leading zeros (log {padded!r}, table {unpadded[padded.lstrip('0')]!r}): write the "
            f"ids the same way in both files (a parquet column of integers cannot keep the zeros: store them as text)"
        )
    return (
        f"{path}: none of the log's item ids appear in column {id_col!r} (e.g. log {log_ids[:3].tolist()} vs "
        f"table {table_ids}); {hint}"
    )


def item_side_path(data_cfg: Mapping[str, Any]) -> Path | None:
    """The item table data.item_side.file names (relative names in data.path's folder, or beside data.path
    when that is the log file), or None when there is none. Checked before the log is prepared, so that a
    preset's table missing beside a log given by its own path fails in a second, not after preparing."""
    spec = data_cfg.get("item_side")
    if not spec or not spec.get("file"):
        return None
    given = Path(str(data_cfg["path"])).expanduser()
    path = Path(str(spec["file"])).expanduser()
    if path.is_absolute():
        where = ""
    elif given.is_dir():
        path, where = given / path, f" (looked up in data.path={given})"
    else:
        path = given.parent / path
        where = f" (looked up beside data.path={given}, which is a file, so the preset's table is not there)"
    if not path.exists():
        raise DataError(
            f"data.item_side.file={spec['file']}: {path} does not exist{where}; set data.item_side.file=<path of the "
            f"item table>, or data.item_side.file=null to run without item side data"
        )
    return path
