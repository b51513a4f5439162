"""Reading logs: column mapping, formats, and clear errors for bad input."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import data_cfg, write_log
from seqexp.data.prepare import prepare
from seqexp.data.readers import read_log, resolve_log_path
from seqexp.errors import DataError

COLS = {"user": "uid", "item": "sku", "timestamp": "ts", "behavior": None}


def test_reads_mapped_columns_with_ids_as_strings(tmp_path):
    p = write_log(tmp_path / "log.tsv", [("007", 1, 10), ("8", 2, 11)], ("uid", "sku", "ts"), sep="\t")
    df = read_log(p, COLS, sep="\t").table.to_pandas()
    assert _col(read_log(p, COLS, sep="\\t"), "user_id") == ["007", "8"]  # a command line's '\t'
    assert list(df.columns) == ["row", "user_id", "item_id", "timestamp"]
    assert df["user_id"].tolist() == ["007", "8"]  # leading zeros kept
    assert df["item_id"].tolist() == ["1", "2"]
    assert df["row"].tolist() == [2, 3]  # file line numbers (header is line 1)


def test_reads_parquet_and_headerless_files(tmp_path):
    pq_path = tmp_path / "log.parquet"
    pd.DataFrame({"uid": [1, 2], "sku": [5, 6], "ts": [1.0, 2.0]}).to_parquet(pq_path)
    assert _col(read_log(pq_path, COLS, fmt="parquet"), "item_id") == ["5", "6"]
    txt = tmp_path / "log.txt"
    txt.write_text("1 5 100\n2 6 200\n")
    raw = read_log(txt, COLS, sep=" ", header=False, names=["uid", "sku", "ts"])
    assert _col(raw, "user_id") == ["1", "2"] and _col(raw, "row") == [1, 2]


def test_missing_column_names_file_column_and_choices(tmp_path):
    p = write_log(tmp_path / "log.csv", [(1, 2, 3)], ("uid", "sku", "time"))
    with pytest.raises(DataError) as e:
        read_log(p, COLS)
    msg = str(e.value)
    assert str(p) in msg and "'ts'" in msg and "data.columns.timestamp" in msg and "['uid', 'sku', 'time']" in msg


def test_wrong_delimiter_is_diagnosed(tmp_path):
    p = write_log(tmp_path / "log.tsv", [(1, 2, 3)], ("uid", "sku", "ts"), sep="\t")
    with pytest.raises(DataError, match="tab-separated, so set data.sep"):
        read_log(p, COLS, sep=",")


def test_empty_file_and_header_only(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.csv is empty"):
        resolve_log_path(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("uid,sku,ts\n")
    with pytest.raises(DataError, match="header but no data rows"):
        read_log(header_only, COLS)


def test_missing_file_and_folder_without_filename(tmp_path):
    with pytest.raises(DataError, match="does not exist; set data.path"):
        resolve_log_path(tmp_path / "nope.csv")
    (tmp_path / "a.inter").write_text("x")
    with pytest.raises(DataError, match=r"set data.filename .*a\.inter"):
        resolve_log_path(tmp_path)
    assert resolve_log_path(tmp_path, "a.inter") == tmp_path / "a.inter"


def test_non_utf8_bytes_name_the_file_and_the_fix(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes("uid,sku,ts\n1,caf\xe9,3\n".encode("latin-1"))
    with pytest.raises(DataError) as e:
        read_log(p, COLS)
    assert str(p) in str(e.value) and "data.encoding" in str(e.value)
    assert _col(read_log(p, COLS, encoding="latin-1"), "item_id") == ["café"]


def test_non_numeric_timestamp_column_is_an_error_not_a_silent_drop(tmp_path, tmp_cache):
    rows = [(u, i, "yesterday") for u in range(3) for i in range(4)]
    p = write_log(tmp_path / "log.csv", rows)
    with pytest.raises(DataError) as e:
        prepare(data_cfg(p), tmp_cache)
    msg = str(e.value)
    assert str(p) in msg and "bad_timestamp" in msg and "yesterday" in msg and "data.columns" in msg


def test_malformed_rows_are_skipped_counted_and_located(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("uid,sku,ts\n1,2,3\n1,2,3,4\n1,5,6\n7,8\n")  # line 3 has 4 fields, line 5 is truncated
    raw = read_log(p, COLS)
    assert raw.n_malformed == 2 and [m.line for m in raw.malformed] == [3, 5]
    assert raw.malformed[0].text == "1,2,3,4" and "4 field(s), expected 3" in raw.malformed[0].why
    assert _col(raw, "row") == [2, 4]  # kept rows keep their own line numbers
    assert _col(raw, "item_id") == ["2", "5"]


def test_a_file_of_only_malformed_rows_says_so(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("uid,sku,ts\n1,2\n3,4\n")
    with pytest.raises(DataError, match=r"all 2 are malformed, e.g. line 2.*data.sep"):
        read_log(p, COLS)


def _col(raw, name: str) -> list:
    return raw.table.column(name).to_pylist()
