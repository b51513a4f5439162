"""Read, clean and sequence a behaviour log (cached): the data step every run starts with.

`prepare` reads the log named by the data.* settings (`seqexp.data.readers`), runs the cleaning rules
of `seqexp.data.clean` in order (each counted in the `PrepReport`), and turns the surviving rows into
per-user chronological sequences in CSR form (`PreparedData`). The result is cached under
`paths.cache_dir`, keyed by the sha256 of the log's bytes and every setting that changes it
(`seqexp.data.cache`). `data.engine` picks the engine (`seqexp.data.engine`): arrow in memory, or duckdb out
of core (`seqexp.data.duck_prepare`), which give the same result.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from seqexp.data.cache import folder_fingerprint, load_entry, remembered_fingerprint, save_entry
from seqexp.data.clean import Cleaning, clean
from seqexp.data.columns import UNITS
from seqexp.data.engine import choose_engine
from seqexp.data.prep_report import PrepReport
from seqexp.data.readers import RawLog, read_log, resolve_log_path
from seqexp.data.readers.hf import data_files
from seqexp.data.sequences import PreparedData
from seqexp.errors import ConfigError, DataError
from seqexp.io import sha256_json

log = logging.getLogger(__name__)

PREP_VERSION = 5  # bump when the cleaning rules change, so that old cache entries are not reused (5: 12.0 -> 12)

# data.* keys that change the prepared result (and so the cache key); max_len is applied later, by the loader.
PREP_KEYS = (
    "format",
    "sep",
    "header",
    "names",
    "encoding",
    "hf_split",
    "columns",
    "behaviors",
    "collapse_repeats",
    "min_seq_len",
    "min_item_count",
    "max_invalid_fraction",
    "timestamp_unit",
    "duplicates",
)
CHOICES = {"timestamp_unit": ("auto", *UNITS), "duplicates": ("drop", "keep")}  # first: the default
# data.* keys added later that change the result only when set: absent from the key when null, so that logs
# prepared before they existed keep their cache entries and data fingerprints (resume, export)
OPTIONAL_KEYS = ("timestamp_format",)


def prepare(data_cfg: Mapping[str, Any], cache_dir: str | Path | None = None) -> PreparedData:
    """Read, clean and sequence the log named by `data_cfg`; reuse the cache entry when one matches."""
    settings = prep_settings(data_cfg)
    raw = None
    if settings["format"] == "hf":  # a local folder is identified by its files' bytes, a hub name by its fingerprint
        path: Path | str = str(data_cfg["path"])
        file_sha = hf_fingerprint(path, Path(cache_dir) if cache_dir else None)
        if file_sha is None:
            raw = read_source(path, settings)
            file_sha = str(raw.fingerprint)
    else:
        path = resolve_log_path(data_cfg["path"], data_cfg.get("filename"))
        file_sha = remembered_fingerprint(path, Path(cache_dir) if cache_dir else None)
    # the engine is not part of the key: both give the same result (tests/test_out_of_core.py)
    engine = "arrow" if settings["format"] == "hf" else choose_engine(data_cfg.get("engine"), settings, path)
    key = sha256_json([PREP_VERSION, file_sha, settings, *_float_id_marker(settings, path)])
    entry = Path(cache_dir) / "prepared" / key[:32] if cache_dir else None
    cached = load_entry(entry) if entry is not None else None
    if cached is not None and not predates_date_check(cached, entry):
        return cached
    if engine == "duckdb":
        from seqexp.data.duck_prepare import prepare_duckdb

        return prepare_duckdb(Path(path), file_sha, key, settings, entry)
    data = build(path, file_sha, key, settings, raw)
    if entry is not None:
        save_entry(data, entry)
    return data


def _float_id_marker(settings: Mapping[str, Any], path: Path | str) -> list[str]:
    """A key part for a parquet log whose user or item column is typed as floats: their ids are read as digits
    since 2026-12-03 (columns.as_text; formerly 10000000013.0 was '1.0000000013e+10' on the arrow engine), so
    such a log is prepared again, and a run trained on the old ids is refused a resume instead of continuing with
    other item indices. Every other log keeps its key, cache entry and data fingerprint."""
    if settings["format"] != "parquet":
        return []
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception:  # not parquet: the reader names the problem
        return []
    names = [settings["columns"].get(k) for k in ("user", "item")]
    floats = [n for n in names if n in schema.names and pa.types.is_floating(schema.field(n).type)]
    return ["float_ids_as_digits"] if floats else []


TIME_NOTES = {"timestamp_unit", "date_text", "date_time_column"}  # one of them: prepared with the date check


def predates_date_check(data: PreparedData, entry: Path | None) -> bool:
    """A cached log with timestamps prepared before day/month dates were checked (its report has none of the
    TIME_NOTES, which say how the times were read): date-time text may have been read in mixed orders, so it is
    prepared again. The result keeps its key (a log whose dates were fine gets the same data and fingerprint back,
    so its runs still resume); a log of mixed-up dates now stops with the error that names data.timestamp_format.
    An old entry of a parquet date-time column is prepared once more too (it cannot be told apart); a cache that
    cannot be written keeps its old entry, and save_entry's warning says every run then prepares the log."""
    if data.timestamps is None or TIME_NOTES & {n.what for n in data.report.notes}:
        return False
    log.info("cache entry %s predates the day/month date check; preparing the log again", entry)
    return True


def hf_fingerprint(name_or_dir: str, cache_dir: Path | None) -> str | None:
    """`hf:` + the sha256 of a local dataset folder's files (their bytes: `cp -p` or `touch -r` cannot hide an edit,
    as they hid it from the dataset's own fingerprint of paths and mtimes); None for a hub name."""
    folder = Path(name_or_dir).expanduser()
    if not folder.is_dir():
        return None
    files = data_files(folder)
    if not files:
        raise DataError(f"data.path={name_or_dir} is an empty folder; put the log's data files in it")
    return f"hf:{folder_fingerprint(files, folder, cache_dir)}"


def prep_settings(data_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that change the result, as plain values; the new keys' defaults filled in and checked."""
    settings = {k: _plain(data_cfg.get(k)) for k in PREP_KEYS}
    for k, choices in CHOICES.items():
        settings[k] = str(settings[k] or choices[0])
        if settings[k] not in choices:
            raise ConfigError(f"data.{k}={settings[k]!r} is not one of {list(choices)}; set data.{k}={choices[0]}")
    for k in OPTIONAL_KEYS:
        if data_cfg.get(k) is not None:
            settings[k] = _plain(data_cfg.get(k))
    fmt = settings.get("timestamp_format")
    if fmt is not None and (not isinstance(fmt, str) or "%" not in fmt):
        raise ConfigError(
            f"data.timestamp_format={fmt!r} is not a strftime format; write one like '%d/%m/%Y %H:%M:%S' "
            f"(quoted on the command line), or null for ISO 8601 date-times and unix times"
        )
    return settings


def build(path: Path | str, file_sha: str, key: str, s: dict[str, Any], raw: RawLog | None = None) -> PreparedData:
    raw = raw or read_source(path, s)
    report = PrepReport(source=str(path), file_sha256=file_sha, rows_in=raw.table.num_rows + raw.n_malformed)
    return sequences(clean(raw, s, report, path), key)


def sequences(c: Cleaning, key: str) -> PreparedData:
    """CSR sequences from the chronologically ordered surviving rows; item indices by first appearance."""
    order, user, item, behavior = c.order, c.user, c.item, c.behavior
    u = user.codes[order]
    new_user = np.ones(len(u), dtype=bool)
    new_user[1:] = u[1:] != u[:-1]
    starts = np.flatnonzero(new_user)
    codes = item.codes[order]
    present, first = np.unique(codes, return_index=True)
    by_appearance = present[np.argsort(first, kind="stable")]
    index_of = np.zeros(len(item.values), dtype=np.int64)
    index_of[by_appearance] = np.arange(1, len(by_appearance) + 1)
    behaviors, vocab = None, []
    if behavior is not None:
        b = behavior.codes[order]
        used = np.unique(b)
        vocab_order = used[np.argsort(behavior.values[used].astype(str), kind="stable")]
        rank = np.zeros(len(behavior.values), dtype=np.int16)
        rank[vocab_order] = np.arange(len(vocab_order))
        behaviors, vocab = rank[b], [str(v) for v in behavior.values[vocab_order]]
    c.report.users, c.report.items, c.report.events = len(starts), len(by_appearance), len(order)
    return PreparedData(
        item_ids=item.values[by_appearance].astype(object),
        user_ids=user.values[u[starts]].astype(object),
        offsets=np.append(starts, len(u)).astype(np.int64),
        items=index_of[codes],
        timestamps=c.ts[order].astype(np.float64) if c.ts is not None else None,
        behaviors=behaviors,
        behavior_vocab=vocab,
        report=c.report,
        fingerprint=key,
    )


def read_source(path: Path | str, s: dict[str, Any]) -> RawLog:
    return read_log(
        path,
        s["columns"],
        fmt=s["format"] or "csv",
        sep=s["sep"] or ",",
        header=s["header"] if s["header"] is not None else True,
        names=s["names"],
        encoding=s["encoding"] or "utf-8",
        hf_split=s.get("hf_split") or "train",
    )


def _plain(v: Any) -> Any:
    """OmegaConf containers -> plain Python, for hashing and JSON."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    return OmegaConf.to_container(v, resolve=True) if isinstance(v, DictConfig | ListConfig) else v
