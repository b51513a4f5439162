"""HuggingFace `datasets` logs: Arrow underneath, read without copies; the dataset's fingerprint keys the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from seqexp.data.readers.raw_log import RawLog, canonical_table, check_columns
from seqexp.errors import DataError


def read_hf_dataset(name_or_dir: str, wanted: dict[str, str], split: str) -> RawLog:
    """`datasets.load_from_disk` for a folder written by `save_to_disk`, else `datasets.load_dataset`
    (a hub name, or a local folder of csv/json/parquet files). The dataset's own fingerprint keys the cache."""
    import datasets

    local = Path(name_or_dir).expanduser()
    try:
        if (local / "dataset_info.json").exists() or (local / "dataset_dict.json").exists():
            ds = datasets.load_from_disk(str(local))
        else:
            ds = datasets.load_dataset(str(local) if local.exists() else name_or_dir, split=split)
    except FileNotFoundError as e:
        raise DataError(
            f"data.path={name_or_dir}: no such local folder, and the hub name could not be loaded ({e}); "
            f"point data.path at a folder of data files or one written by Dataset.save_to_disk"
        ) from e
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise DataError(f"{name_or_dir} has splits {list(ds)}; set data.hf_split to one of them")
        ds = ds[split]
    check_columns(name_or_dir, wanted, list(ds.column_names))
    table = ds.data.table if ds._indices is None else ds.flatten_indices().data.table
    rows = pa.array(np.arange(1, table.num_rows + 1))
    return RawLog(canonical_table(table, wanted, rows, name_or_dir), fingerprint=f"hf:{ds._fingerprint}")
