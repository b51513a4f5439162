"""HuggingFace `datasets` logs: Arrow underneath, read without copies.

A local folder is keyed in the cache by its files' content (`cache.folder_fingerprint`, in `prepare`); a hub
name by the dataset's own fingerprint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from seqexp.data.readers.raw_log import RawLog, canonical_table, check_columns
from seqexp.errors import DataError

TABULAR = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "json", ".ndjson": "json", ".parquet": "parquet"}
TABULAR |= {".arrow": "arrow", ".txt": "text"}  # what datasets reads a folder's files as (tsv: csv with tabs)


def is_saved_dataset(folder: Path) -> bool:
    """A folder written by Dataset(Dict).save_to_disk."""
    return (folder / "dataset_info.json").exists() or (folder / "dataset_dict.json").exists()


def data_files(folder: Path) -> list[Path]:
    """The regular files under `folder` that datasets may read (it skips hidden ones and folders named `__*`)."""
    out = []
    for p in folder.rglob("*"):
        parts = p.relative_to(folder).parts
        if (
            p.is_file()
            and not any(x.startswith(".") for x in parts)
            and not any(x.startswith("__") for x in parts[:-1])
        ):
            out.append(p)
    return sorted(out)


def refuse_mixed_types(folder: Path) -> None:
    """datasets reads a folder of data files as one type only and leaves the other types out, silently."""
    kinds: dict[str, list[str]] = {}
    for p in data_files(folder):
        if p.suffix.lower() in TABULAR:
            kinds.setdefault(TABULAR[p.suffix.lower()], []).append(str(p.relative_to(folder)))
    if len(kinds) > 1:
        listing = "; ".join(f"{kind}: {', '.join(names[:3])}" for kind, names in sorted(kinds.items()))
        raise DataError(
            f"data.path={folder} holds data files of {len(kinds)} types ({listing}); datasets reads one type "
            f"only and would leave the others out: convert them to one type, or move the others out of the folder"
        )


def _load(name_or_dir: str, split: str):  # -> datasets.Dataset | datasets.DatasetDict
    """A local folder (written by save_to_disk, or of data files: every split, so that a wrong data.hf_split is
    named by the caller), or a hub name's split."""
    import datasets

    local = Path(name_or_dir).expanduser()
    try:
        if is_saved_dataset(local):
            return datasets.load_from_disk(str(local))
        if local.is_dir():  # read again: datasets' own cache knows the files by path and mtime only
            refuse_mixed_types(local)
            return datasets.load_dataset(str(local), download_mode="force_redownload")
        return datasets.load_dataset(str(local) if local.exists() else name_or_dir, split=split)
    except FileNotFoundError as e:
        raise DataError(
            f"data.path={name_or_dir}: no such local folder, and the hub name could not be loaded ({e}); "
            f"point data.path at a folder of data files or one written by Dataset.save_to_disk"
        ) from e
    except ValueError as e:  # a hub name's unknown split: 'Unknown split "test". Should be one of [...]'
        if "split" not in str(e).lower():
            raise
        raise DataError(f"{name_or_dir}: {e}; set data.hf_split to one of them") from e
    except datasets.exceptions.DatasetGenerationError as e:  # formerly datasets' traceback, naming no fix
        cause = e.__cause__ or e
        why = " ".join(str(cause).split())[:300]
        raise DataError(
            f"data.path={name_or_dir}: datasets could not read its files ({type(cause).__name__}: {why}); check that "
            f"every file is whole (a cut-off last line?) and that all hold the same columns"
        ) from None


def read_hf_dataset(name_or_dir: str, wanted: dict[str, str], split: str) -> RawLog:
    """`datasets.load_from_disk` for a folder written by `save_to_disk`, else `datasets.load_dataset`
    (a local folder of csv/json/parquet files, or a hub name). The dataset's own fingerprint is the RawLog's."""
    import datasets

    ds = _load(name_or_dir, split)
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise DataError(
                f"{name_or_dir} has splits {list(ds)}, not data.hf_split={split!r}; set data.hf_split to one of them"
            )
        ds = ds[split]
    check_columns(name_or_dir, wanted, list(ds.column_names))
    table = ds.data.table if ds._indices is None else ds.flatten_indices().data.table
    rows = pa.array(np.arange(1, table.num_rows + 1))
    return RawLog(canonical_table(table, wanted, rows, name_or_dir), fingerprint=f"hf:{ds._fingerprint}")
