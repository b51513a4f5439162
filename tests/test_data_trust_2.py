"""A second bad-input hunt on the data step: day/month dates, nanosecond parquet times, a folder named as the log,
HuggingFace folders (a wrong split, mixed file types, a stale cache) and unhelpful one-liners. Each case is read
right (the same on both engines) or refused in one line naming the file or key and the fix."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import data_cfg, write_log
from seqexp.data.prepare import PREP_VERSION, prep_settings, prepare
from seqexp.data.splits import cut_times, make_split
from seqexp.errors import ConfigError, DataError
from seqexp.io import sha256_file, sha256_json

ENGINES = ("arrow", "duckdb")
HF_COLUMNS = {"user": "uid", "item": "sku", "timestamp": "ts", "behavior": None}


def _sequences(data) -> dict[str, list[str]]:
    return {data.user_ids[u]: [data.item_ids[i - 1] for i in data.sequence(u)] for u in range(data.n_users)}


def _both(tmp_path: Path, cfg: dict):
    """The log prepared by each engine, in its own cache; asserts they give the same arrays and report."""
    arrow = prepare({**cfg, "engine": "arrow"}, tmp_path / "cache-arrow")
    duck = prepare({**cfg, "engine": "duckdb"}, tmp_path / "cache-duckdb")
    for name in ("item_ids", "user_ids", "offsets", "items", "timestamps"):
        np.testing.assert_array_equal(np.asarray(getattr(arrow, name)), np.asarray(getattr(duck, name)), name)
    assert arrow.report.to_dict() == duck.report.to_dict() and arrow.fingerprint == duck.fingerprint
    return arrow, duck


def _utc(*args: int) -> float:
    return datetime(*args, tzinfo=timezone.utc).timestamp()


# ---- day/month dates ---------------------------------------------------------------------------------
DAY_FIRST = [("u1", "a", "21/11/2023 10:00:00"), ("u1", "b", "05/12/2023 10:00:00"), ("u1", "c", "06/12/2023 09:00:00")]
DAY_FIRST += [
    ("u2", "a", "01/12/2023 08:00:00"),
    ("u2", "b", "02/12/2023 08:00:00"),
    ("u2", "c", "15/12/2023 08:00:00"),
]


@pytest.mark.parametrize("engine", ENGINES)
def test_day_first_dates_read_value_by_value_are_refused_naming_the_column_and_the_fix(tmp_path, engine):
    # formerly: 05/12/2023 read as 12 May next to 21/11/2023 read as 21 November, events silently reordered
    p = write_log(tmp_path / "log.csv", DAY_FIRST)
    with pytest.raises(DataError) as e:
        prepare(data_cfg(p, engine=engine), tmp_path / "cache")
    msg = str(e.value)
    assert f"{p}: column 'timestamp' (data.columns.timestamp): '05/12/2023 10:00:00' may be 5 Dec or 12 May" in msg
    assert "'21/11/2023 10:00:00' can only be day first" in msg
    assert "set data.timestamp_format='%d/%m/%Y %H:%M:%S'" in msg and "ISO 8601 (2023-12-05T10:00:00)" in msg
    assert "\n" not in msg


ISO_DATES = [(u, i, f"2023-12-0{d} 10:00:00") for u in ("u1", "u2") for d, i in ((1, "a"), (2, "b"), (3, "c"))]


def _strip_date_note(entry: Path, fingerprint: str | None = None) -> None:
    """Make a cache entry look prepared before the day/month check: its report without the date_text note."""
    meta = json.loads((entry / "meta.json").read_text())
    meta["report"]["notes"] = [n for n in meta["report"]["notes"] if n["what"] != "date_text"]
    meta["fingerprint"] = fingerprint or meta["fingerprint"]
    (entry / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_cache_entry_of_date_text_from_before_the_date_check_is_prepared_again(tmp_path, engine):
    # PREP_VERSION was not bumped for the day/month check (a bump would change every log's fingerprint and stop its
    # runs resuming); an entry prepared before it is recognised by its report instead
    cache = tmp_path / "cache"
    iso = write_log(tmp_path / "iso.csv", ISO_DATES)
    fresh = prepare(data_cfg(iso, engine=engine), cache)
    assert "date_text" in {n.what for n in fresh.report.notes}
    (entry,) = (cache / "prepared").iterdir()

    # an old entry of a log whose dates are fine: prepared again, the same data and fingerprint back (runs resume)
    _strip_date_note(entry)
    again = prepare(data_cfg(iso, engine=engine), cache)
    assert again.fingerprint == fresh.fingerprint and _sequences(again) == _sequences(fresh)
    np.testing.assert_array_equal(again.timestamps, fresh.timestamps)
    assert "date_text" in {n["what"] for n in json.loads((entry / "meta.json").read_text())["report"]["notes"]}

    # an old entry of day/month dates (here: the ISO log's arrays filed under the day-first log's key, as the old
    # value-by-value reading would have filed its mixed-up order): refused, not served
    day_first = write_log(tmp_path / "day_first.csv", DAY_FIRST)
    cfg = data_cfg(day_first, engine=engine)
    key = sha256_json([PREP_VERSION, sha256_file(day_first), prep_settings(cfg)])
    old = cache / "prepared" / key[:32]
    shutil.copytree(entry, old)
    _strip_date_note(old, fingerprint=key)
    with pytest.raises(DataError, match=r"'05/12/2023 10:00:00' may be 5 Dec or 12 May"):
        prepare(cfg, cache)
    meta = json.loads((old / "meta.json").read_text())  # the same entry with its note is served (the check's scope)
    meta["report"]["notes"].append({"what": "date_text", "description": "", "rows": 0, "examples": []})
    (old / "meta.json").write_text(json.dumps(meta))
    assert _sequences(prepare(cfg, cache)) == _sequences(fresh)


def test_a_timestamp_format_reads_day_first_dates_in_order_on_both_engines(tmp_path):
    p = write_log(tmp_path / "log.csv", DAY_FIRST)
    arrow, _ = _both(tmp_path, data_cfg(p, timestamp_format="%d/%m/%Y %H:%M:%S"))
    assert _sequences(arrow) == {"u1": ["a", "b", "c"], "u2": ["a", "b", "c"]}
    assert arrow.timestamps[:3].tolist() == [_utc(2023, 11, 21, 10), _utc(2023, 12, 5, 10), _utc(2023, 12, 6, 9)]
    ambiguous_only = [(u, i, f"0{d}/12/2023") for u in ("u1", "u2") for d, i in ((1, "a"), (2, "b"), (3, "c"))]
    q = write_log(tmp_path / "short.csv", ambiguous_only)
    with pytest.raises(DataError, match=r"'%d/%m/%Y' \(day first\) or '%m/%d/%Y' \(month first\)"):
        prepare(data_cfg(q), tmp_path / "cache")


def test_dates_with_one_reading_each_are_read_and_a_format_that_fits_nothing_names_the_key(tmp_path):
    rows = [("u1", "a", "21/11/2023"), ("u1", "b", "13/12/2023"), ("u1", "c", "25/12/2023")]
    p = write_log(tmp_path / "log.csv", rows)
    arrow, _ = _both(tmp_path, data_cfg(p))
    assert _sequences(arrow) == {"u1": ["a", "b", "c"]} and arrow.timestamps[0] == _utc(2023, 11, 21)
    with pytest.raises(DataError, match=r"no value fits data.timestamp_format='%Y-%m-%d' \(e.g. '21/11/2023'\)"):
        prepare(data_cfg(p, timestamp_format="%Y-%m-%d"), tmp_path / "c2")
    with pytest.raises(ConfigError, match=r"data.timestamp_format='dd/mm/yyyy' is not a strftime format"):
        prepare(data_cfg(p, timestamp_format="dd/mm/yyyy"), tmp_path / "c2")
    numbers = tmp_path / "log.parquet"
    pd.DataFrame(
        {"user_id": ["u"] * 3, "item_id": [1, 2, 3], "timestamp": [1700000000, 1700000001, 1700000002]}
    ).to_parquet(numbers)
    floats = tmp_path / "floats.parquet"
    pd.read_parquet(numbers).astype({"timestamp": float}).to_parquet(floats)
    for engine in ENGINES:  # whole numbers are read as their digits (20231105 fits %Y%m%d); unix times fit nothing
        with pytest.raises(DataError, match=r"no value fits data.timestamp_format='%d/%m/%Y' \(e.g. '1700000000'\)"):
            prepare(data_cfg(numbers, format="parquet", timestamp_format="%d/%m/%Y", engine=engine), tmp_path / "c3")
        with pytest.raises(DataError, match=r"data.timestamp_format='%d/%m/%Y' is set but the column holds numbers"):
            prepare(data_cfg(floats, format="parquet", timestamp_format="%d/%m/%Y", engine=engine), tmp_path / "c4")


def test_an_ambiguous_cut_date_is_refused_and_a_cut_date_with_one_reading_is_read(tmp_path):
    rows = [(u, f"i{k}", int(_utc(2023, 11, 20)) + 86400 * k) for u in ("u1", "u2") for k in range(20)]
    data = prepare(data_cfg(write_log(tmp_path / "log.csv", rows), min_seq_len=2), tmp_path / "cache")
    with pytest.raises(ValueError, match=r"split.valid_time='05/12/2023': '05/12/2023' may be 5 Dec or 12 May.*ISO"):
        cut_times(data, "05/12/2023", None, 0.8, 0.9)
    assert cut_times(data, "21/11/2023", "2023-12-05", 0.8, 0.9) == (_utc(2023, 11, 21), _utc(2023, 12, 5))


# ---- parquet timestamps ------------------------------------------------------------------------------
def test_nanosecond_parquet_timestamps_are_read_alike_on_both_engines(tmp_path):
    # formerly ArrowInvalid: "Casting from timestamp[ns] to timestamp[us] would lose data"
    times = pd.to_datetime(["2023-12-05 10:00:00.123456789", "2023-12-05 10:00:01.000000999", "2023-12-05 11:00:00.0"])
    p = tmp_path / "ns.parquet"
    pd.DataFrame({"user_id": ["u"] * 3, "item_id": ["a", "b", "c"], "timestamp": times}).to_parquet(p)
    assert str(pq.read_schema(p).field("timestamp").type) == "timestamp[ns]"
    arrow, _ = _both(tmp_path, data_cfg(p, format="parquet"))
    assert arrow.timestamps.tolist() == [1701770400.123456, 1701770401.0, 1701774000.0]  # cut to whole microseconds


@pytest.mark.parametrize("kind", ["timestamp[us]", "date32[day]"])
def test_parquet_date_times_are_read_alike_noted_as_such_and_served_from_the_cache(tmp_path, kind):
    # formerly a date32 column stopped the duckdb engine with a BinderException (regexp_matches on a DATE)
    days = pd.to_datetime(["2023-12-01", "2023-12-02", "2023-12-03"])
    p = tmp_path / "dates.parquet"
    column = days if kind.startswith("timestamp") else days.date
    pd.DataFrame({"user_id": ["u"] * 3, "item_id": ["a", "b", "c"], "timestamp": column}).to_parquet(p)
    assert str(pq.read_schema(p).field("timestamp").type) == kind
    arrow, _ = _both(tmp_path, data_cfg(p, format="parquet"))
    assert arrow.timestamps.tolist() == [_utc(2023, 12, d) for d in (1, 2, 3)]  # each day's midnight, UTC
    assert [n.what for n in arrow.report.notes] == ["date_time_column"]  # not "date-time text"
    for engine in ENGINES:  # the entry has a time note, so it is served, not prepared again
        (entry,) = (tmp_path / f"cache-{engine}" / "prepared").iterdir()
        before = entry.stat().st_ino
        prepare(data_cfg(p, format="parquet", engine=engine), tmp_path / f"cache-{engine}")
        assert entry.stat().st_ino == before
        with pytest.raises(DataError, match=r"data.timestamp_format='%Y-%m-%d' is set but the column already holds "):
            prepare(data_cfg(p, format="parquet", engine=engine, timestamp_format="%Y-%m-%d"), tmp_path / "other")


def test_zoned_parquet_timestamps_do_not_depend_on_the_machines_time_zone(tmp_path, monkeypatch):
    # formerly the duckdb engine cast them through the session's (the machine's) time zone: 5 h off in New York
    monkeypatch.setenv("TZ", "America/New_York")
    times = pd.to_datetime(
        ["2023-12-05 10:00:00.123456", "2023-12-05 10:00:01", "2023-12-05 11:00:00"], format="ISO8601"
    )
    p = tmp_path / "zoned.parquet"
    frame = pd.DataFrame({"user_id": ["u"] * 3, "item_id": ["a", "b", "c"], "timestamp": times})
    frame.assign(timestamp=times.tz_localize("Europe/Berlin")).to_parquet(p)
    arrow, _ = _both(tmp_path, data_cfg(p, format="parquet"))
    assert arrow.timestamps.tolist() == [1701766800.123456, 1701766801.0, 1701770400.0]  # Berlin is UTC+1


# ---- data.filename -----------------------------------------------------------------------------------
def test_a_data_filename_naming_a_folder_says_so_and_lists_it(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("b.csv", "a.csv"):
        write_log(logs / name, [(1, 2, 1700000000)])
    with pytest.raises(DataError) as e:  # formerly IsADirectoryError from hashing it
        prepare(data_cfg(tmp_path, filename="logs"), tmp_path / "cache")
    assert f"data.filename=logs is a folder in data.path={tmp_path}; name the log file inside it" in str(e.value)
    assert "it holds: a.csv, b.csv" in str(e.value)


# ---- data.format=hf ----------------------------------------------------------------------------------
@pytest.fixture
def hf_folder(tmp_path, monkeypatch) -> Path:
    """A local folder holding one csv file of 2 users x 3 events; datasets kept offline, its cache in tmp_path."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    folder = tmp_path / "events"
    folder.mkdir()
    write_log(folder / "part-0.csv", [(u, 10 + k, 100 + k) for u in (1, 2) for k in range(3)], ("uid", "sku", "ts"))
    return folder


def test_a_wrong_hf_split_of_a_local_folder_is_one_line(tmp_path, hf_folder):
    with pytest.raises(DataError, match=r"has splits \['train'\], not data.hf_split='test'; set data.hf_split"):
        prepare(data_cfg(hf_folder, format="hf", hf_split="test", columns=HF_COLUMNS), tmp_path / "cache")


def test_an_hf_folder_of_two_file_types_is_refused_naming_the_files(tmp_path, hf_folder):
    # formerly: datasets read the csv files only and left b.parquet out, silently
    pd.DataFrame({"uid": [3, 3, 3], "sku": [1, 2, 3], "ts": [1, 2, 3]}).to_parquet(hf_folder / "b.parquet")
    with pytest.raises(DataError) as e:
        prepare(data_cfg(hf_folder, format="hf", columns=HF_COLUMNS), tmp_path / "cache")
    assert "holds data files of 2 types (csv: part-0.csv; parquet: b.parquet)" in str(e.value)
    assert "datasets reads one type only" in str(e.value)


def test_an_hf_folder_rewritten_with_the_same_size_and_mtime_is_not_served_from_the_cache(tmp_path, hf_folder):
    cfg = data_cfg(hf_folder, format="hf", columns=HF_COLUMNS)
    first = prepare(cfg, tmp_path / "cache")
    part = hf_folder / "part-0.csv"
    st = part.stat()
    text = part.read_text()
    part.write_text(text.replace("1,10,", "1,1X,").replace("1,12,", "1,10,").replace("1,1X,", "1,12,"))
    os.utime(part, ns=(st.st_atime_ns, st.st_mtime_ns))  # what `cp -p` / `touch -r` do
    assert (part.stat().st_size, part.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    second = prepare(cfg, tmp_path / "cache")
    assert _sequences(first)["1"] == ["10", "11", "12"] and _sequences(second)["1"] == ["12", "11", "10"]
    assert second.report.file_sha256.startswith("hf:") and second.fingerprint != first.fingerprint
    assert prepare(cfg, tmp_path / "cache").fingerprint == second.fingerprint  # unchanged: the same entry


# ---- one-liners --------------------------------------------------------------------------------------
def _ms_log(tmp_path: Path):
    rows = [(u, f"i{k}", 1_701_000_000_000 + 3_600_000 * (k * 7 + u)) for u in range(4) for k in range(40)]
    return prepare(data_cfg(write_log(tmp_path / "log.csv", rows), min_seq_len=2), tmp_path / "cache")


def test_a_quantile_outside_zero_and_one_names_the_key(tmp_path):
    data = _ms_log(tmp_path)
    with pytest.raises(ValueError, match=r"split.valid_quantile=1.5 must be a share of the events between 0 and 1"):
        make_split(data, {"name": "temporal", "valid_quantile": 1.5})
    with pytest.raises(ValueError, match=r"split.test_quantile='most' must be"):
        cut_times(data, None, None, 0.8, "most")


def test_cut_times_in_milliseconds_on_a_millisecond_log_say_the_unit(tmp_path):
    data = _ms_log(tmp_path)
    q90 = float(np.quantile(data.timestamps, 0.9))
    with pytest.raises(ValueError) as e:
        cut_times(data, 1_701_500_000_000, None, 0.8, 0.9)
    msg = str(e.value)
    assert f"split.test_time ({q90}, the split.test_quantile=0.9 quantile of the event times)" in msg
    assert "cut times are unix seconds or date-times" in msg
    assert "this log's timestamps were read in ms and converted to seconds" in msg
    assert "1701500000000 looks like milliseconds: divide by 1000 (1701500000)" in msg
    with pytest.raises(ValueError, match=r"split.valid_time=1701050000000 is later than the log's last event .*ms"):
        cut_times(data, 1_701_050_000_000, 1_701_060_000_000, 0.8, 0.9)  # formerly: 0 cases, no word on the unit
    assert cut_times(data, 1_701_050_000, 1_701_060_000, 0.8, 0.9) == (1_701_050_000.0, 1_701_060_000.0)


@pytest.mark.parametrize("engine", ENGINES)
def test_tsv_with_a_comma_sep_says_tsv_always_reads_tabs(tmp_path, engine):
    p = write_log(tmp_path / "log.csv", [(1, 2, 1700000000)])
    with pytest.raises(DataError) as e:
        prepare(data_cfg(p, format="tsv", sep=",", engine=engine), tmp_path / "cache")
    assert "data.format=tsv always reads tabs" in str(e.value)
    assert "use data.format=csv with data.sep=','" in str(e.value) and "so set data.sep" not in str(e.value)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_name_repeated_in_data_names_is_named_with_the_fix(tmp_path, engine):
    p = tmp_path / "log.csv"
    p.write_text("1,2,3,1700000000\n")
    cfg = data_cfg(p, header=False, names=["user_id", "item_id", "item_id", "timestamp"], engine=engine)
    with pytest.raises(DataError) as e:
        prepare(cfg, tmp_path / "cache")
    assert "data.names lists 'item_id' more than once" in str(e.value)
    assert "rename the repeat in data.names" in str(e.value) and "set data.header=false" not in str(e.value)


# ---- float id columns --------------------------------------------------------------------------------
def test_whole_float_ids_of_eleven_digits_are_their_digits_on_both_engines(tmp_path):
    # formerly the arrow engine wrote 10000000013.0 as '1.0000000013e+10' (duckdb: 10000000013), so an item table
    # of 10000000013 matched nothing and the engines gave other item ids; pandas stores ids with a gap as float64
    items = [10_000_000_000 + k + 1.0 for k in (0, 1, 2, 0, 2, 1)] + [12.0, 12.0, np.nan]
    users = ["u1"] * 3 + ["u2"] * 3 + ["u3"] * 3
    p = tmp_path / "floats.parquet"
    pd.DataFrame({"user_id": users, "item_id": items, "timestamp": np.arange(9) + 1_700_000_000}).to_parquet(p)
    arrow, _ = _both(tmp_path, data_cfg(p, format="parquet", min_seq_len=1))
    assert sorted(arrow.item_ids.astype(str)) == ["10000000001", "10000000002", "10000000003", "12"]
    assert arrow.n_events == 8  # the missing id is dropped (and counted alike: _both compares the reports)


def test_times_padded_with_unicode_spaces_are_read_alike_on_both_engines(tmp_path):
    # formerly the duckdb engine trimmed ASCII spaces only: '1700000100\xa0' was a bad_timestamp there, a time here
    rows = [("u1", "a", "1700000100\xa0"), ("u1", "b", "\u20031700000200"), ("u1", "c", "1700000300\u3000")]
    arrow, _ = _both(tmp_path, data_cfg(write_log(tmp_path / "log.csv", rows), min_seq_len=1))
    assert arrow.timestamps.tolist() == [1700000100.0, 1700000200.0, 1700000300.0]


def test_a_stray_quote_the_duckdb_engine_cannot_read_is_named_with_the_engine_fix(tmp_path):
    # formerly "line 3: Value with unterminated quote found.; check data.sep, data.encoding": neither is the cause
    p = tmp_path / "log.csv"
    p.write_text('user_id,item_id,timestamp,title\nu1,a,1,plain\nu1,b,2,"Weird" Al\nu1,c,3,plain\n')
    with pytest.raises(
        DataError, match=r"line 3 \('u1,b,2,\"Weird\" Al'\) has a '\"' inside a field .*data.engine=arrow"
    ):
        prepare(data_cfg(p, engine="duckdb", min_seq_len=1), tmp_path / "cache-duckdb")
    assert prepare(data_cfg(p, engine="arrow", min_seq_len=1), tmp_path / "cache-arrow").n_events == 3


@pytest.mark.parametrize("engine", ENGINES)
def test_dates_written_as_numbers_are_warned_about_with_the_format_to_set(tmp_path, engine, caplog):
    # formerly read as unix seconds in August 1970 (a day apart = a second apart), with only the report's median
    rows = [("u1", "a", 20231105), ("u1", "b", 20231106), ("u1", "c", 20231107)]
    p = write_log(tmp_path / "log.csv", rows)
    typed = tmp_path / "log.parquet"  # an int64 column: the format it names is taken there too
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_parquet(typed)
    data = prepare(data_cfg(typed, format="parquet", engine=engine, min_seq_len=1, timestamp_format="%Y%m%d"), tmp_path)
    assert data.timestamps.tolist() == [_utc(2023, 11, d) for d in (5, 6, 7)]
    with caplog.at_level("WARNING"):
        prepare(data_cfg(p, engine=engine, min_seq_len=1), tmp_path / "cache")
    assert "median 20231106 looks like a date written as YYYYMMDD" in caplog.text
    assert "set data.timestamp_format='%Y%m%d'" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        data = prepare(data_cfg(p, engine=engine, min_seq_len=1, timestamp_format="%Y%m%d"), tmp_path / "c2")
    assert "YYYYMMDD" not in caplog.text and data.timestamps.tolist()[1] - data.timestamps.tolist()[0] == 86400


def test_a_parquet_log_of_float_ids_gets_a_key_of_its_own_and_others_keep_theirs(tmp_path):
    # its ids changed with the digits rule (1.0000000013e+10 -> 10000000013): an old cache entry, and a run trained
    # on the old ids, must not be taken for it; a log of integer ids keeps its key (its runs still resume)
    from seqexp.data.prepare import _float_id_marker

    frame = pd.DataFrame({"user_id": ["u"] * 3, "item_id": [1.0, 2.0, 3.0], "timestamp": [1, 2, 3]})
    frame.to_parquet(tmp_path / "floats.parquet")
    frame.astype({"item_id": int}).to_parquet(tmp_path / "ints.parquet")
    settings = {"format": "parquet", "columns": {"user": "user_id", "item": "item_id"}}
    assert _float_id_marker(settings, tmp_path / "floats.parquet") == ["float_ids_as_digits"]
    assert _float_id_marker(settings, tmp_path / "ints.parquet") == []
    assert _float_id_marker({**settings, "format": "csv"}, tmp_path / "floats.parquet") == []


def test_cut_times_written_in_the_logs_timestamp_format_are_read_with_it(tmp_path):
    # formerly split.valid_time=20231201 under data.timestamp_format='%Y%m%d' was unix seconds (August 1970)
    rows = [(f"u{u}", f"i{k}", f"202311{10 + k:02d}") for u in range(4) for k in range(15)]
    fmt = "%Y%m%d"
    data = prepare(data_cfg(write_log(tmp_path / "log.csv", rows), timestamp_format=fmt, min_seq_len=2), tmp_path)
    assert cut_times(data, 20231120, "20231122", 0.8, 0.9, fmt) == (_utc(2023, 11, 20), _utc(2023, 11, 22))
    assert cut_times(data, 1700438400, None, 0.8, 0.9, fmt)[0] == 1700438400  # unix seconds still read as such


def test_an_hf_folder_of_a_cut_off_json_file_is_one_line(tmp_path, monkeypatch):
    # formerly datasets' DatasetGenerationError traceback (95 lines), naming no file and no fix
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    folder = tmp_path / "events"
    folder.mkdir()
    lines = [json.dumps({"uid": u, "sku": 10 + k, "ts": 100 + k}) for u in (1, 2) for k in range(3)]
    (folder / "part-0.jsonl").write_text("\n".join(lines)[:-8] + "\n")  # the last line cut off
    with pytest.raises(DataError, match=r"datasets could not read its files .*check that every file is whole"):
        prepare(data_cfg(folder, format="hf", columns=HF_COLUMNS), tmp_path / "cache")
