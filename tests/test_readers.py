"""Every reader on a small file the test writes (malformed rows included), k-core, repeats, side data, download."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from conftest import compose_train, data_cfg, write_log
from seqexp.data import load_data
from seqexp.data.prepare import prepare
from seqexp.data.readers import read_log
from seqexp.errors import DataError


def _sequences(data) -> dict[str, list[str]]:
    return {data.user_ids[u]: [data.item_ids[i - 1] for i in data.sequence(u)] for u in range(data.n_users)}


def _load(tmp_path, preset: str, folder, *extra: str):
    cfg = compose_train(tmp_path, f"data={preset}", f"data.path={folder}", "data.max_invalid_fraction=0.5", *extra)
    return load_data(cfg.data, cfg.paths.cache_dir)


def test_movielens_u_data_preset(tmp_path):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    lines = [f"{u}\t{i}\t{1 + i % 5}\t{881250949 + 10 * (5 - i) + u}" for u in (196, 22) for i in range(1, 6)]
    (folder / "u.data").write_text("\n".join(lines + ["196\t7\t3"]) + "\n")  # last row truncated
    data = _load(tmp_path, "movielens_100k", folder)
    assert _sequences(data) == {"196": ["5", "4", "3", "2", "1"], "22": ["5", "4", "3", "2", "1"]}
    malformed = data.report.rules[0]
    assert (malformed.rule, malformed.dropped, malformed.examples[0]["row"]) == ("malformed_row", 1, 11)


def test_movielens_ratings_dat_with_a_two_character_delimiter(tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    rows = [f"1::{m}::5::{978300760 + m}" for m in (1193, 661, 914)] + ["2::3408::4::978300275"] * 1
    rows += [f"2::{m}::4::{978300000 + m}" for m in (1, 2)] + ["2::9::4", ""]  # a short row and a blank line
    (folder / "ratings.dat").write_text("\n".join(rows) + "\n")
    data = _load(tmp_path, "movielens_1m", folder)
    assert _sequences(data) == {"1": ["661", "914", "1193"], "2": ["1", "2", "3408"]}
    malformed = data.report.rules[0]
    assert malformed.dropped == 2 and [e["row"] for e in malformed.examples] == [7, 8]
    assert "3 field(s), expected 4" in malformed.examples[0]["why"] and malformed.examples[1]["why"] == "blank line"


def test_one_user_per_line_s3rec_format(tmp_path):
    path = tmp_path / "Beauty.txt"
    path.write_text("u1 5 6 7 8\nu2 9 5\nlonely\nu3 1 2 3\n")
    data = _load(tmp_path, "s3rec", path)
    assert _sequences(data) == {"u1": ["5", "6", "7", "8"], "u3": ["1", "2", "3"]}
    rules = {r.rule: r for r in data.report.rules}
    assert rules["malformed_row"].dropped == 1 and rules["malformed_row"].examples[0]["row"] == 3
    assert rules["short_user"].dropped == 2 and rules["short_user"].examples[0]["row"] == 2  # u2's line


def test_huggingface_dataset_from_a_local_folder(tmp_path):
    import datasets

    rows = {"uid": ["a", "a", "a", "b", "b", "b"], "sku": [1, 2, 3, 4, 5, 6], "ts": [3, 1, 2, 1, 2, 3]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "saved"))
    files = tmp_path / "files"
    files.mkdir()
    write_log(files / "part-0.csv", list(zip(rows["uid"], rows["sku"], rows["ts"], strict=True)), ("uid", "sku", "ts"))
    for folder in (tmp_path / "saved", files):
        data = _load(
            tmp_path, "hf", folder, "data.columns.user=uid", "data.columns.item=sku", "data.columns.timestamp=ts"
        )
        assert _sequences(data) == {"a": ["2", "3", "1"], "b": ["4", "5", "6"]}
        assert data.report.file_sha256.startswith("hf:")
    with pytest.raises(DataError, match=r"column 'user_id' \(data.columns.user\) is not in"):
        _load(tmp_path, "hf", tmp_path / "saved")


def test_item_k_core_iterates_to_a_fixed_point_and_repeats_collapse(tmp_path):
    # item z is rare (1 event); dropping it leaves u2 with 2 events, and dropping u2 leaves item y with 1
    rows = [("u1", "x", 1), ("u1", "y", 2), ("u1", "x", 3), ("u1", "x", 4), ("u3", "x", 1), ("u3", "w", 2)]
    rows += [("u3", "w", 3), ("u3", "x", 4), ("u2", "y", 1), ("u2", "z", 2), ("u2", "w", 3), ("u4", "x", 9)]
    log = write_log(tmp_path / "log.csv", rows)
    data = prepare(data_cfg(log, min_item_count=2), tmp_path / "c")
    rules = {r.rule: r.dropped for r in data.report.rules}
    assert rules["rare_item"] == 2 and rules["short_user"] == 3  # z, then y once u2 left; u2 (2 left) and u4 (1)
    assert sorted(_sequences(data)) == ["u1", "u3"] and set(data.item_ids) == {"x", "w"}
    assert all(c >= 2 for c in __import__("numpy").bincount(data.items)[1:])
    collapsed = prepare(data_cfg(log, collapse_repeats=True, min_seq_len=2), tmp_path / "c")
    assert _sequences(collapsed)["u1"] == ["x", "y", "x"] and _sequences(collapsed)["u3"] == ["x", "w", "x"]
    assert {r.rule: r.dropped for r in collapsed.report.rules}["repeat"] == 2


def test_a_log_emptied_by_k_core_names_the_rule(tmp_path):
    log = write_log(tmp_path / "log.csv", [(u, f"i{u}", 1) for u in range(5)] + [(0, "j", 2), (0, "k", 3)])
    with pytest.raises(DataError, match="rule 'rare_item' removed the last rows"):
        prepare(data_cfg(log, min_item_count=2), tmp_path / "c")


def test_recbole_item_side_data_is_aligned_with_item_indices(tmp_path):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    inter += [f"1\t{i}\t5\t{100 + i}" for i in (3, 1, 2)]
    (folder / "ml-100k.inter").write_text("\n".join(inter) + "\n")
    item = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    item += ["1\tToy Story\t1995\tAnimation Comedy", "2\tGoldenEye\t1995\tAction", "9\tUnused\t1990\tDrama"]
    (folder / "ml-100k.item").write_text("\n".join(item) + "\n")
    data = _load(tmp_path, "ml100k", folder)
    assert list(data.item_ids) == ["1", "2", "3"]  # chronological first appearance
    assert list(data.item_side["movie_title:token_seq"]) == ["Toy Story", "GoldenEye", None]  # 3 has no row
    assert list(data.item_side["class:token_seq"]) == ["Animation Comedy", "Action", None]
    with pytest.raises(DataError, match=r"\['genre'\] .* are not in the file"):
        _load(tmp_path, "ml100k", folder, "data.item_side.columns=[genre]")


def _archive(tmp_path, members: dict[str, str]):
    path = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in members.items():
            z.writestr(name, text)
    return path, hashlib.md5(path.read_bytes()).hexdigest()


def test_download_fetches_verifies_and_unpacks_a_missing_archive(tmp_path):
    u_data = "".join(f"{u}\t{i}\t3\t{881250949 + i}\n" for u in (1, 2) for i in range(1, 5))
    archive, md5 = _archive(tmp_path, {"ml-100k/u.data": u_data, "ml-100k/README": "hi", "other/x": "no"})
    root = tmp_path / "data"
    data = _load(
        tmp_path,
        "movielens_100k",
        root / "ml-100k",
        f"data.download.url={archive.as_uri()}",
        f"data.download.checksum=md5:{md5}",
    )
    assert data.n_users == 2 and (root / "ml-100k" / "README").exists() and not (root / "ml-100k" / "x").exists()


def test_download_refuses_a_wrong_checksum_and_says_what_to_do_offline(tmp_path):
    archive, _ = _archive(tmp_path, {"ml-100k/u.data": "1\t1\t3\t881250949\n"})
    target = tmp_path / "data" / "ml-100k"
    with pytest.raises(DataError, match="does not match the published 0000.*Nothing was unpacked"):
        _load(
            tmp_path,
            "movielens_100k",
            target,
            f"data.download.url={archive.as_uri()}",
            "data.download.checksum=md5:" + "0" * 32,
        )
    assert not (target / "u.data").exists()
    with pytest.raises(DataError) as e:
        _load(tmp_path, "movielens_100k", target, f"data.download.url={(tmp_path / 'nowhere.zip').as_uri()}")
    msg = str(e.value)
    assert "could not be fetched" in msg and f"put u.data in {target}/" in msg and "md5:0e33842e" in msg
    with pytest.raises(DataError, match="data.download.enabled=false: download https://files.grouplens.org"):
        _load(tmp_path, "movielens_100k", target, "data.download.enabled=false")


def test_generic_csv_reader_reads_parquet_too(tmp_path):
    import pandas as pd

    path = tmp_path / "log.parquet"
    pd.DataFrame({"user_id": [1, 1, 1], "item_id": ["a", "b", "c"], "timestamp": [3, 2, 1]}).to_parquet(path)
    raw = read_log(path, {"user": "user_id", "item": "item_id", "timestamp": "timestamp"}, fmt="parquet")
    assert raw.table.column("user_id").to_pylist() == ["1", "1", "1"]
    data = _load(tmp_path, "csv", path, "data.format=parquet")
    assert _sequences(data) == {"1": ["c", "b", "a"]}


def test_a_damaged_archive_unpacks_nothing_and_is_one_line(tmp_path):
    """Formerly zipfile's BadZipFile traceback, and a cut-off u.data left behind that the next run trained on."""
    u_data = "".join(f"{u}\t{i}\t3\t{881250949 + i}\n" for u in range(1, 40) for i in range(1, 40))
    archive, _ = _archive(tmp_path, {"ml-100k/README": "hi", "ml-100k/u.data": u_data})
    raw = bytearray(archive.read_bytes())
    at = raw.index(b"1\t1\t3")  # u.data's stored bytes: flip one, so its CRC fails after README was unpacked
    raw[at + 100] ^= 0xFF
    archive.write_bytes(bytes(raw))
    target = tmp_path / "data" / "ml-100k"
    for url in (archive.as_uri(), _html_page(tmp_path).as_uri()):
        with pytest.raises(DataError, match=r"is not a whole zip archive .*: nothing was unpacked into"):
            _load(tmp_path, "movielens_100k", target, f"data.download.url={url}", "data.download.checksum=null")
        assert not (target / "u.data").exists() and not (target / "README").exists()
        assert [p.name for p in target.parent.iterdir()] == ["ml-100k"] and not list(target.iterdir())  # no staging


def _html_page(tmp_path):
    page = tmp_path / "mirror.zip"  # what a mirror's error page saved under the archive's name looks like
    page.write_text("<html><body>Not found</body></html>")
    return page


def test_a_user_on_two_lines_of_the_lines_format_is_refused_naming_both(tmp_path):
    """Formerly the two lines were joined in file order into one history, its targets taken from the second."""
    path = tmp_path / "users.txt"
    path.write_text("u0 i1 i2 i3\nu1 i4 i5 i6\nu0 i7 i8 i9\n")
    with pytest.raises(DataError, match=r"users.txt: user 'u0' has more than one line \(lines 1 and 3; 1 users"):
        _load(tmp_path, "s3rec", path)
