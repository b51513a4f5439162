"""Item side data (titles, categories, genres) from a separate item table, aligned with the item indices.

RecBole atomic data sets ship one as `<name>.item` (`item_id:token  movie_title:token_seq  class:token_seq`);
any delimited file or parquet with an id column works. Side data feeds pretrained item vectors (text
initialisation) and reports; it never changes which events are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from seqexp.data.sequences import PreparedData
from seqexp.errors import DataError

log = logging.getLogger(__name__)


def read_item_side(data_cfg: Mapping[str, Any], data: PreparedData) -> dict[str, np.ndarray]:
    """{column: (N,) object array of str or None} for data.item_file, in item-index order (item i + 1 <-> row i)."""
    path = item_side_path(data_cfg)
    if path is None:
        return {}
    spec = data_cfg["item_side"]
    id_col, columns = str(spec.get("id") or "item_id"), [str(c) for c in spec.get("columns") or []]
    names = [str(n) for n in spec["names"]] if spec.get("names") else None
    table = _read_table(path, str(spec.get("sep") or "\t"), names)
    missing = [c for c in [id_col, *columns] if c not in table.column_names]
    if missing:
        raise DataError(
            f"{path}: column(s) {missing} (data.item_side.id / .columns) are not in the file, whose columns are "
            f"{table.column_names}"
        )
    ids = pc.utf8_trim_whitespace(table.column(id_col).cast(pa.string()))
    rows = pc.index_in(pa.array(data.item_ids.astype(str)), value_set=ids.combine_chunks())
    rows = rows.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    found = rows >= 0
    out = {}
    for col in columns:
        values = table.column(col).cast(pa.string()).to_numpy(zero_copy_only=False).astype(object)
        out[col] = np.where(found, values[np.maximum(rows, 0)], None)
    log.info("item side data: %d of %d items found in %s", int(found.sum()), data.n_items, path)
    if not found.any():
        raise DataError(
            f"{path}: none of the log's item ids appear in column {id_col!r} (e.g. log {data.item_ids[:3].tolist()} vs "
            f"table {ids.slice(0, 3).to_pylist()}); check data.item_side.id"
        )
    return out


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


def _read_table(path: Path, sep: str, names: list[str] | None = None) -> pa.Table:
    """The item table; `names` for a file without a header (e.g. the Taobao log itself, for its categories)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path)
    import pyarrow.csv as pacsv

    try:
        return pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=sep, quote_char=False, invalid_row_handler=lambda row: "skip"),
            convert_options=pacsv.ConvertOptions(strings_can_be_null=False, auto_dict_encode=False),
            read_options=pacsv.ReadOptions(encoding="utf8", column_names=names),
        )
    except pa.ArrowInvalid as e:
        raise DataError(f"{path}: {str(e).splitlines()[0]}; check data.item_side.sep") from e
