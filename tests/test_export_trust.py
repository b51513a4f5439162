"""`seqexp-export` never mixes runs: an --out holding another run's export is refused naming both runs and the fix,
the same run's export is replaced, and the three files are written as one unit (a failure part way leaves the
previous export whole)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import TINY, compose_train
from seqexp.app.export import cli as export_cli
from seqexp.app.train import train

FILES = ("users.parquet", "items.parquet", "meta.json")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny finished LSTM run and a copy of it in another run dir (another run, as far as an export can tell)."""
    tmp = tmp_path_factory.mktemp("export")
    train(compose_train(tmp, *TINY))
    return tmp / "run", Path(shutil.copytree(tmp / "run", tmp / "other"))


def _meta(out: Path) -> dict:
    return json.loads((out / "meta.json").read_text())


def test_an_out_holding_another_runs_export_is_refused_and_the_same_run_is_replaced(two_runs, tmp_path, capsys):
    run_a, run_b = two_runs
    out = tmp_path / "x"
    assert export_cli([str(run_a), "--out", str(out)]) == 0
    before = {name: (out / name).read_bytes() for name in FILES}
    capsys.readouterr()
    assert export_cli([str(run_b), "--out", str(out)]) == 2
    out_text, err = capsys.readouterr()
    assert out_text == "" and err.count("\n") == 1
    assert err.startswith(f"seqexp-export: error: --out {out} holds the export of another run ({run_a.resolve()})")
    assert str(run_b.resolve()) in err and "pass another --out, or delete" in err
    assert {name: (out / name).read_bytes() for name in FILES} == before  # A's export, untouched
    (out / "users.parquet").write_bytes(b"stale")
    assert export_cli([str(run_a), "--out", str(out)]) == 0  # the same run: replaced
    assert (out / "users.parquet").read_bytes() == before["users.parquet"] and _meta(out)["run_dir"] == str(
        run_a.resolve()
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]  # no temp folder left beside it


def test_a_failure_while_writing_leaves_the_previous_export_whole(two_runs, tmp_path, capsys, monkeypatch):
    run_a, _ = two_runs
    out = tmp_path / "x"
    out.mkdir()
    old = {"users.parquet": b"old users", "items.parquet": b"old items"}
    for name, content in old.items():
        (out / name).write_bytes(content)
    (out / "meta.json").write_text(json.dumps({"run_dir": str(run_a.resolve())}))
    write_table, calls = pq.write_table, []

    def full_disk(table, where, *args, **kwargs):  # users.parquet is written, then the disk is full
        calls.append(where)
        if len(calls) > 1:
            raise OSError(28, "No space left on device")
        write_table(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", full_disk)
    assert export_cli([str(run_a), "--out", str(out)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert {name: (out / name).read_bytes() for name in old} == old  # not A's new users beside its old items
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def test_an_out_with_other_files_or_a_file_is_refused_before_any_work(two_runs, tmp_path, capsys):
    run_a, _ = two_runs
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    (tmp_path / "a-file").write_text("keep me too")
    assert export_cli([str(run_a), "--out", str(tmp_path / "notes")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a seqexp export" in err and "pass a new or empty --out folder" in err
    assert export_cli([str(run_a), "--out", str(tmp_path / "a-file")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file, not a folder" in err
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me" and (
        tmp_path / "a-file"
    ).read_text() == "keep me too"


def test_files_a_user_put_beside_an_export_are_never_deleted_by_a_re_export(two_runs, tmp_path):
    from seqexp.app.export import export_run
    from seqexp.errors import ExportError

    out = export_run(two_runs[0], tmp_path / "x")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match=r"holds files besides an export \(notes.txt\)"):
        export_run(two_runs[0], out)
    assert (out / "notes.txt").read_text() == "mine"


def test_a_run_trained_with_relative_paths_exports_from_anywhere_and_a_moved_log_with_data_path(
    tmp_path, capsys, monkeypatch
):
    """Formerly the relative data.path and cache dir were read from where seqexp-export ran: "the behaviour log
    log.csv does not exist; set data.path=...", a fix seqexp-export does not take."""
    from conftest import write_log

    trained_in = tmp_path / "project"
    trained_in.mkdir()
    write_log(
        trained_in / "log.csv", [(f"u{u}", f"i{(u * 7 + k * 3) % 30}", 100 + k) for u in range(40) for k in range(8)]
    )
    monkeypatch.chdir(trained_in)
    plain = [o for o in TINY if not o.startswith("data.generate")]
    cfg = compose_train(tmp_path, *plain, "data=csv", "data.path=log.csv", "data.columns.behavior=null")
    cfg.paths.cache_dir = ".cache"  # as trained without SEQEXP_ROOT: relative to the project folder
    train(cfg)
    run = tmp_path / "run"
    monkeypatch.chdir(tmp_path)  # elsewhere
    assert export_cli([str(run), "--out", str(tmp_path / "a")]) == 0, capsys.readouterr().err
    (trained_in / "log.csv").rename(tmp_path / "moved.csv")
    capsys.readouterr()
    assert export_cli([str(run), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "log data.path=" in err and "does not exist (moved since training?); pass --data-path" in err
    assert export_cli([str(run), "--out", str(tmp_path / "b"), "--data-path", str(tmp_path / "moved.csv")]) == 0
    assert pq.read_table(tmp_path / "b" / "users.parquet").equals(pq.read_table(tmp_path / "a" / "users.parquet"))
    (tmp_path / "other.csv").write_text("user_id,item_id,timestamp\nu1,i1,1\nu1,i2,2\nu1,i3,3\n")
    assert export_cli([str(run), "--out", str(tmp_path / "c"), "--data-path", str(tmp_path / "other.csv")]) == 2
    assert "is not the data this run was trained on" in capsys.readouterr().err


def test_a_hub_name_or_a_path_not_under_the_training_folder_is_left_as_it_is(tmp_path):
    from omegaconf import OmegaConf

    from seqexp.app.export import _paths_as_trained

    (tmp_path / "log.csv").write_text("x")
    cfg = OmegaConf.create({"data": {"path": "McAuley-Lab/events", "format": "hf"}, "paths": {"cache_dir": "log.csv"}})
    got = _paths_as_trained(cfg, str(tmp_path))
    assert got.data.path == "McAuley-Lab/events"  # a data set on the hub, not a folder of the training's cwd
    assert got.paths.cache_dir == str(tmp_path / "log.csv")  # relative and there: read from the training's folder
