"""The item table (data.item_side.file) is read as standard CSV with ids as text: quoted fields are values, rows
that cannot be parsed are warned about by line (too many stop the run), ids on several rows that disagree are
warned about, and ids match the log's as the log reader keeps them (`0002` stays `0002`, `12.0` is `12`)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import data_cfg, write_log
from seqexp.data.item_side import read_item_side
from seqexp.data.prepare import prepare
from seqexp.data.sequences import PreparedData
from seqexp.errors import DataError


def prepared(tmp_path: Path, items: list[str]) -> tuple[Path, PreparedData]:
    """A log in which two users each see `items` once, in order, and its prepared data."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    log = write_log(tmp_path / "log.csv", [(u, item, 100 + k) for u in range(2) for k, item in enumerate(items)])
    return log, prepare(data_cfg(log), tmp_path / "cache")


def write_table(path: Path, rows: list[list[object]], header: tuple[str, ...] = ("item_id", "title", "cat")) -> Path:
    """The item table as csv.writer writes it: fields holding the delimiter or a quote are quoted."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def side(log: Path, data: PreparedData, table: Path, columns=("title", "cat"), **cfg: object) -> dict:
    item_side = {"file": str(table), "id": "item_id", "columns": list(columns), "sep": ","}
    return read_item_side(data_cfg(log, item_side=item_side, **cfg), data)


def test_quoted_fields_are_values_without_their_quotes(tmp_path, caplog):
    log, data = prepared(tmp_path, ["1", "2", "3", "4"])
    table = write_table(
        tmp_path / "items.csv",
        [[1, "plain", "c1"], [2, 'say "hi"', "c2"], [3, "Item 3, deluxe", "cat3"], [4, "two\nlines", "c4"]],
    )
    assert '3,"Item 3, deluxe",cat3' in table.read_text()  # formerly the whole row was dropped, without a word
    with caplog.at_level(logging.INFO):
        got = side(log, data, table)
    assert list(got["title"]) == ["plain", 'say "hi"', "Item 3, deluxe", "two\nlines"]
    assert list(got["cat"]) == ["c1", "c2", "cat3", "c4"]
    assert "all 4 items found" in caplog.text and not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_rows_that_cannot_be_parsed_are_warned_about_by_line_and_too_many_stop_the_run(tmp_path, caplog):
    log, data = prepared(tmp_path, [str(i) for i in range(1, 11)])
    rows = [[i, f"t{i}", f"c{i}"] for i in range(1, 11)]
    table = write_table(tmp_path / "items.csv", rows)
    text = table.read_text().splitlines()
    text[3] += ",extra"  # line 4: item 3 has a field too many
    table.write_text("\n".join(text) + "\n")
    with caplog.at_level(logging.WARNING):
        got = side(log, data, table)
    assert list(got["title"])[:4] == ["t1", "t2", None, "t4"]
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert f"{table}: 1 of 10 rows of the item table (data.item_side.file) cannot be split" in warning
    assert "line 4" in warning and "'3,t3,c3,extra'" in warning and "data.item_side.sep=','" in warning
    shifted = write_table(tmp_path / "shifted.csv", [[*row, "x"] for row in rows])  # every row: a field too many
    with pytest.raises(DataError, match=r"10 of 10 rows .* more than data.max_invalid_fraction=0.5; check data"):
        side(log, data, shifted)


def test_an_unclosed_quote_is_named_with_the_lines_it_joins(tmp_path, caplog):
    log, data = prepared(tmp_path, [str(i) for i in range(1, 31)])
    lines = ["item_id,title,cat"] + [f"{i},t{i},c{i}" for i in range(1, 31)]
    lines[28] = '28,"open,c28'  # line 29: its quote is never closed, so lines 30 and 31 are read into its row
    table = tmp_path / "items.csv"
    table.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        got = side(log, data, table)
    assert got["title"][26] == "t27" and list(got["title"][27:]) == [None, None, None]
    assert "3 of 30 rows" in caplog.text and "line 29: '28,\"open,c28\\n29,t29,c29\\n30,t30,c30'" in caplog.text
    assert "its '\"' is never closed, which joins the 2 line(s) after it into that row" in caplog.text


def test_ids_on_several_rows_with_different_values_are_warned_about_and_the_first_is_used(tmp_path, caplog):
    log, data = prepared(tmp_path, ["1", "2", "3", "4"])
    rows = [[1, "a", "c"], [2, "b", "c"], [1, "a", "c"], [3, "x", "c"], [2, "B", "c"], [3, "x", "d"], [4, "e", "c"]]
    table = write_table(tmp_path / "items.csv", rows)
    with caplog.at_level(logging.WARNING):
        got = side(log, data, table)
    assert list(got["title"]) == ["a", "b", "x", "e"] and list(got["cat"]) == ["c", "c", "c", "c"]  # first rows
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{table}: 2 item id(s) appear on several rows with different values")  # 1 agrees
    assert "item '2': line 3 has {'title': 'b', 'cat': 'c'}, line 6 has {'title': 'B', 'cat': 'c'}" in warnings[0]
    assert "the first row of each id is used (line 3 for item '2')" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        side(log, data, table, columns=("cat",))  # item 2's rows agree on cat; item 3's do not
    assert "1 item id(s) appear" in caplog.text and "item '3': line 5 has {'cat': 'c'}, line 7 has" in caplog.text


def test_padded_ids_stay_text_and_float_written_ids_match_as_the_logs_do(tmp_path, caplog):
    log, data = prepared(tmp_path, ["0001", "0002", "0003"])
    assert list(data.item_ids) == ["0001", "0002", "0003"]  # the log reader keeps them as text
    table = write_table(tmp_path / "items.csv", [["0001", "a", "c"], ["0002", "b", "c"], ["0003", "c", "c"]])
    with caplog.at_level(logging.INFO):
        assert list(side(log, data, table)["title"]) == ["a", "b", "c"]  # formerly: none found, check the id column
    assert "all 3 items found" in caplog.text
    log2, data2 = prepared(tmp_path / "floats", ["12", "7", "9"])
    floats = write_table(tmp_path / "floats.csv", [["12.0", "a", "c"], ["7", "b", "c"], ["9.", "c", "c"]])
    assert list(side(log2, data2, floats)["title"]) == ["a", "b", "c"]  # 12.0 -> 12, as the log reads it


def test_a_parquet_table_with_integer_ids_matches_a_csv_logs_ids(tmp_path):
    log, data = prepared(tmp_path, ["12", "7", "9"])
    table = tmp_path / "items.parquet"
    pq.write_table(pa.table({"item_id": pa.array([7, 9, 12, 40], pa.int64()), "title": ["b", "c", "a", "z"]}), table)
    assert list(side(log, data, table, columns=("title",))["title"]) == ["a", "b", "c"]
    pd.DataFrame({"item_id": [12.0, 7.0, 9.0], "title": ["a", "b", "c"]}).to_parquet(tmp_path / "floats.parquet")
    assert list(side(log, data, tmp_path / "floats.parquet", columns=("title",))["title"]) == ["a", "b", "c"]
    # eleven digits: formerly read as '1.0000000012e+10', so no id matched
    log, data = prepared(tmp_path / "big", ["10000000012", "10000000007", "10000000001"])
    pd.DataFrame({"item_id": [10000000007.0, np.nan, 10000000012.0], "title": ["b", "-", "a"]}).to_parquet(table)
    assert list(side(log, data, table, columns=("title",))["title"]) == ["a", "b", None]


def test_ids_that_differ_only_in_leading_zeros_are_named_as_such(tmp_path):
    log, data = prepared(tmp_path, ["0002", "0007", "0009"])
    table = tmp_path / "items.parquet"
    pq.write_table(pa.table({"item_id": pa.array([2, 7, 9], pa.int64()), "title": ["a", "b", "c"]}), table)
    with pytest.raises(DataError, match=r"none of the log's item ids .* differ only in leading zeros \(log '0002', "):
        side(log, data, table, columns=("title",))


def test_a_header_with_spaces_after_its_commas_and_a_tab_written_as_backslash_t_are_read(tmp_path, caplog):
    log, data = prepared(tmp_path, ["1", "2", "3"])
    spaced = tmp_path / "spaced.csv"  # formerly "Column 'cat' ... does not exist"; check the file and its permissions
    spaced.write_text("item_id, title, cat\n1, t1, c1\n2, t2, c2\n3, t3, c3\n")
    assert [v.strip() for v in side(log, data, spaced)["cat"]] == ["c1", "c2", "c3"]
    tabbed = tmp_path / "items.tsv"  # formerly data.item_side.sep='\t' was refused as "not one character"
    tabbed.write_text("item_id\ttitle\tcat\n1\tt1\tc1\n2\tt2\tc2\n3\tt3\tc3\n")
    item_side = {"file": str(tabbed), "id": "item_id", "columns": ["cat"], "sep": "\\t"}
    assert list(read_item_side(data_cfg(log, item_side=item_side), data)["cat"]) == ["c1", "c2", "c3"]


def test_a_table_of_only_a_header_and_a_table_missing_items_are_said(tmp_path, caplog):
    log, data = prepared(tmp_path, ["1", "2", "3"])
    with pytest.raises(DataError, match=r"items.csv: the item table \(data.item_side.file\) has a header but no data"):
        side(log, data, write_table(tmp_path / "items.csv", []))  # formerly numpy's IndexError
    with caplog.at_level(logging.INFO):
        got = side(log, data, write_table(tmp_path / "some.csv", [[1, "t1", "c1"]]))
    assert list(got["cat"]) == ["c1", None, None]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]  # formerly INFO only
    assert "2 of the log's 3 items are not in the item table (data.item_side.file), e.g. ['2', '3']" in warning


def test_a_byte_that_is_not_utf8_in_a_malformed_row_is_named_without_python_noise(tmp_path, capfd):
    log, data = prepared(tmp_path, ["1", "2", "3"])
    table = tmp_path / "latin.csv"
    table.write_bytes("item_id,title,cat\n1,t1,c1\n2,t2,c2\n3,Caf\xe9,c3,extra\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.csv: line 4 \(byte 6: .*\) is not valid UTF-8 .*re-encode the item"):
        side(log, data, table)  # formerly: "Expected 3 columns, got 4 ... check data.item_side.sep"
    assert "Traceback" not in capfd.readouterr().err  # formerly "Exception ignored in: ..." from pyarrow's callback
