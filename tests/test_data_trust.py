"""Issue #14 (trust every result) for the data step: a rewritten log is never served from a stale cache,
one id is never split in two, and every odd file is read correctly or refused with one clear message."""

from __future__ import annotations

import ast
import bz2
import gzip
import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from conftest import compose_train, data_cfg, write_log
from seqexp.data import load_data
from seqexp.data.prepare import prepare
from seqexp.errors import ConfigError, DataError

ORDER_ONLY = {"user": "user", "item": "item", "timestamp": None, "behavior": None}


def _sequences(data) -> dict[str, list[str]]:
    return {data.user_ids[u]: [data.item_ids[i - 1] for i in data.sequence(u)] for u in range(data.n_users)}


def _csv(tmp_path: Path, name: str = "log.csv") -> Path:
    rows = [(u, 10 + i, 1_600_000_000 + 60 * i) for u in (1, 2) for i in range(4)]
    return write_log(tmp_path / name, rows)


# ---- stale cache -----------------------------------------------------------------------------------
def test_same_size_rewrite_with_restored_mtime_is_not_served_from_the_cache(tmp_path, tmp_cache):
    p = tmp_path / "log.csv"
    p.write_text("user_id,item_id,timestamp\n1,11,100\n1,12,200\n1,13,300\n")
    first = prepare(data_cfg(p), tmp_cache)
    st = p.stat()
    p.write_text("user_id,item_id,timestamp\n1,13,100\n1,12,200\n1,11,300\n")  # same size: items reversed
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # what `cp -p` / `rsync -a` / `touch -r` do
    assert (p.stat().st_size, p.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    second = prepare(data_cfg(p), tmp_cache)
    assert _sequences(first) == {"1": ["11", "12", "13"]} and _sequences(second) == {"1": ["13", "12", "11"]}
    assert second.report.file_sha256 != first.report.file_sha256
    replacement = tmp_path / "other.csv"  # rsync -a: a new file, renamed over the old one, mtime copied
    replacement.write_text("user_id,item_id,timestamp\n1,12,100\n1,13,200\n1,11,300\n")
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, p)
    assert _sequences(prepare(data_cfg(p), tmp_cache)) == {"1": ["12", "13", "11"]}


def test_an_unwritable_cache_dir_warns_once_and_prepares_without_caching(tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache dir should be")
    with caplog.at_level(logging.WARNING):
        data = prepare(data_cfg(_csv(tmp_path)), blocker / "cache")
    assert data.n_events == 8
    warnings = [r.getMessage() for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(warnings) == 1 and f"paths.cache_dir={blocker / 'cache'}" in warnings[0]
    assert "set paths.cache_dir (or SEQEXP_CACHE_DIR) to a writable folder" in warnings[0]


# ---- ids ---------------------------------------------------------------------------------------------
def test_integer_ids_written_as_floats_are_one_item_and_counted(tmp_path, tmp_cache):
    p = tmp_path / "log.csv"
    p.write_text("user_id,item_id,timestamp\n1,12,1\n1,007,2\n1,12.0,3\n2.0,13,4\n2,12,5\n2,13.0,6\n")
    data = prepare(data_cfg(p), tmp_cache)
    assert _sequences(data) == {"1": ["12", "007", "12"], "2": ["13", "12", "13"]}  # "007" stays "007"
    notes = {(n.what, n.description.split(":")[0]): n for n in data.report.notes}
    assert notes[("float_id", "item_id")].rows == 2 and notes[("float_id", "item_id")].examples == ["12.0", "13.0"]
    assert notes[("float_id", "user_id")].rows == 1
    assert "note float_id: item_id: integer ids written as floats" in data.report.to_text()


def test_float_looking_ids_in_a_text_id_column_are_left_alone(tmp_path, tmp_cache):
    rows = [("A1B", "B00X", 1), ("A1B", "C7", 2), ("A1B", "12.0", 3)]
    data = prepare(data_cfg(write_log(tmp_path / "log.csv", rows)), tmp_cache)
    assert set(data.item_ids) == {"B00X", "C7", "12.0"} and [n.what for n in data.report.notes] == ["timestamp_unit"]


# ---- files -------------------------------------------------------------------------------------------
def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path, tmp_cache):
    plain = _csv(tmp_path)
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    assert _sequences(prepare(data_cfg(bom), tmp_cache)) == _sequences(prepare(data_cfg(plain), tmp_cache))
    lines = tmp_path / "lines.txt"
    lines.write_bytes(b"\xef\xbb\xbfu1 5 6 7\nu2 8 9 5\n")
    cfg = data_cfg(lines, format="lines", sep=" ", columns=ORDER_ONLY)
    assert sorted(_sequences(prepare(cfg, tmp_cache))) == ["u1", "u2"]


@pytest.mark.parametrize("codec", ["gzip", "zstd", "bz2"])
def test_compressed_logs_are_read_by_their_magic_bytes(tmp_path, tmp_cache, codec):
    plain = _csv(tmp_path)
    packed = tmp_path / "log.csv.packed"  # the name says nothing: the bytes do
    if codec == "gzip":
        packed.write_bytes(gzip.compress(plain.read_bytes()))
    elif codec == "bz2":
        packed.write_bytes(bz2.compress(plain.read_bytes()))
    else:
        with pa.CompressedOutputStream(str(packed), "zstd") as out:
            out.write(plain.read_bytes())
    data = prepare(data_cfg(packed), tmp_cache)
    assert _sequences(data) == _sequences(prepare(data_cfg(plain), tmp_cache)) and data.n_events == 8


def test_a_truncated_gzip_log_is_one_clear_error(tmp_path, tmp_cache):
    rows = [(u, i, 1_600_000_000 + i) for u in range(50) for i in range(40)]
    packed = gzip.compress(write_log(tmp_path / "log.csv", rows).read_bytes())
    p = tmp_path / "log.csv.gz"
    p.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match=r"log\.csv\.gz: the gzip stream is damaged or truncated .* re-download"):
        prepare(data_cfg(p), tmp_cache)


def test_parquet_or_zip_given_as_csv_say_what_they_are(tmp_path, tmp_cache):
    import pandas as pd

    p = tmp_path / "events.csv"
    pd.DataFrame({"user_id": [1], "item_id": [2], "timestamp": [3]}).to_parquet(p)
    with pytest.raises(DataError, match=r"events\.csv is a parquet file, not csv text: set data.format=parquet"):
        prepare(data_cfg(p), tmp_cache)
    z = tmp_path / "events.zip.csv"
    shutil.make_archive(str(tmp_path / "arch"), "zip", tmp_path, "events.csv")
    shutil.move(tmp_path / "arch.zip", z)
    with pytest.raises(DataError, match="is a zip archive: unzip it and point data.path at the log inside"):
        prepare(data_cfg(z), tmp_cache)


def test_a_bad_byte_is_reported_at_its_real_line(tmp_path, tmp_cache):
    lines = [b"user_id,item_id,timestamp"] + [f"{u},{i},{1600000000 + i}".encode() for u in range(9) for i in range(9)]
    lines[57] = b"6,caf\xe9,1600000003"
    p = tmp_path / "log.csv"
    p.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(DataError) as e:
        prepare(data_cfg(p), tmp_cache)
    assert "log.csv: line 58 (byte 6: b'6,caf\\xe9,1600000003') is not valid utf-8" in str(e.value)
    assert "set data.encoding (e.g. data.encoding=latin-1)" in str(e.value)


def test_duplicate_header_names_of_a_mapped_column_are_refused(tmp_path, tmp_cache):
    p = tmp_path / "log.csv"
    p.write_text("user_id,item_id,item_id,timestamp\n1,2,3,4\n")
    with pytest.raises(DataError, match=r"the header names column\(s\) \['item_id'\] more than once"):
        prepare(data_cfg(p), tmp_cache)


def test_a_list_column_in_parquet_is_refused_by_name(tmp_path, tmp_cache):
    import pandas as pd

    p = tmp_path / "log.parquet"
    pd.DataFrame({"user_id": [1, 2], "item_id": [[1, 2], [3]], "timestamp": [1, 2]}).to_parquet(p)
    with pytest.raises(DataError, match=r"column 'item_id' \(data.columns.item\) has type list<.*>, not one value"):
        prepare(data_cfg(p, format="parquet"), tmp_cache)


# ---- timestamps --------------------------------------------------------------------------------------
def test_millisecond_timestamps_are_detected_converted_and_reported(tmp_path, tmp_cache):
    rows = [(1, i, 1_700_000_000_000 + 1500 * i) for i in range(4)]
    p = write_log(tmp_path / "ms.csv", rows)
    data = prepare(data_cfg(p), tmp_cache)
    np.testing.assert_array_equal(data.timestamps, [1_700_000_000.0, 1_700_000_001.5, 1_700_000_003.0, 1_700_000_004.5])
    note = next(n for n in data.report.notes if n.what == "timestamp_unit")
    assert note.description == "numeric timestamps read as ms (data.timestamp_unit=auto, median 1.7e+12)"
    with pytest.raises(DataError, match=r"'bad_timestamp'.*rejects 4 of 4 rows"):
        prepare(data_cfg(p, timestamp_unit="s"), tmp_cache)  # told seconds: every time is in the future
    with pytest.raises(ConfigError, match=r"data.timestamp_unit='sec' is not one of \['auto', 's', 'ms', 'us', 'ns'\]"):
        prepare(data_cfg(p, timestamp_unit="sec"), tmp_cache)


# ---- duplicates --------------------------------------------------------------------------------------
def test_order_only_repeats_are_dropped_by_default_said_so_and_kept_on_request(tmp_path, tmp_cache):
    p = tmp_path / "pairs.txt"
    p.write_text("1 5\n1 6\n1 5\n1 7\n1 5\n")  # user 1 buys item 5 three times
    cfg = data_cfg(p, sep=" ", header=False, names=["user", "item"], columns=ORDER_ONLY)
    dropped = prepare(cfg, tmp_cache)
    rule = next(r for r in dropped.report.rules if r.rule == "duplicate")
    assert _sequences(dropped) == {"1": ["5", "6", "7"]} and rule.dropped == 2
    assert "without a timestamp column that is every repeat of an item anywhere" in rule.description
    assert "data.duplicates=drop" in rule.description
    kept = prepare({**cfg, "duplicates": "keep"}, tmp_cache)
    rule = next(r for r in kept.report.rules if r.rule == "duplicate")
    assert _sequences(kept) == {"1": ["5", "6", "5", "7", "5"]} and rule.dropped == 0
    assert rule.description.startswith("not applied (data.duplicates=keep)")


# ---- presets -----------------------------------------------------------------------------------------
def test_a_preset_side_table_missing_beside_a_log_file_names_the_key_and_the_fix(tmp_path):
    log = tmp_path / "mine.inter"
    log.write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t2\t5\t100\n")
    cfg = compose_train(tmp_path, "data=ml100k", f"data.path={log}")
    with pytest.raises(DataError) as e:
        load_data(cfg.data, cfg.paths.cache_dir)
    msg = str(e.value)
    assert msg.startswith(f"data.item_side.file=ml-100k.item: {tmp_path / 'ml-100k.item'} does not exist")
    assert "which is a file" in msg and "data.item_side.file=null to run without item side data" in msg
    assert not (tmp_path / "cache" / "prepared").exists()  # refused before preparing


# ---- architecture (#15) ------------------------------------------------------------------------------
def test_cleaning_rules_are_listed_in_the_order_they_run():
    import seqexp.data.clean as clean

    listed = re.findall(r"^  (\w+|\(order\))\s", clean.__doc__, flags=re.M)
    ran = [s.__name__ for s in clean.STEPS if s.__name__ != "too_many_invalid"]
    ran = ["(order)" if s == "chronological" else s for s in ran]
    assert [x for x in listed if x not in ("rare_item", "short_user")] == [*ran[:-1]] and ran[-1] == "k_core"
    assert listed[-2:] == ["rare_item", "short_user"]


def test_data_modules_and_functions_stay_small():
    root = Path(__file__).resolve().parents[1] / "seqexp" / "data"
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert len(text.splitlines()) <= 300, path
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef):  # the body, after the signature and docstring
                body = node.body[1:] if isinstance(node.body[0], ast.Expr) and len(node.body) > 1 else node.body
                assert node.end_lineno - body[0].lineno < 60, f"{path}:{node.name}"


def test_a_bad_byte_in_a_malformed_row_prints_no_traceback(tmp_path, capfd):
    """pyarrow's row callback fails to decode such a row; its 'Exception ignored' report must not reach stderr."""
    path = tmp_path / "log.csv"
    path.write_bytes(b"user_id,item_id,timestamp\n1,2,100\n1,3,101\n1,4,102,\xff\xfe\n2,3,100\n2,4,101\n2,5,102\n")
    with pytest.raises(DataError, match=r"line 4 .*is not valid utf-8.*data.encoding"):
        prepare(data_cfg(path), None)
    assert "Traceback" not in capfd.readouterr().err
