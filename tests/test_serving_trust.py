"""Serving trusts a run dir only as far as it deserves: an unfinished run is served with a warning naming its
status, history times are read in the unit training read the log in (milliseconds too), and a model whose own
encoder class cannot be imported is one error line naming the class and the PYTHONPATH fix."""

from __future__ import annotations

import json
import re
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from omegaconf import OmegaConf

from conftest import TINY, compose_train, train_feature_run
from seqexp.app.events import Event
from seqexp.app.export import cli as export_cli
from seqexp.app.history import TimeUnit, encode_histories
from seqexp.app.recommend import Recommender, cli
from seqexp.app.train import train
from seqexp.data.features import event_features, time_gap_buckets
from seqexp.data.loader import eval_tensors
from seqexp.errors import RecommendError
from seqexp.tracking.failures import record_failure
from seqexp.training.checkpoint import load_checkpoint

BEST = Path("checkpoints") / "best.pt"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A tiny LSTM run that finished (results.json status "completed")."""
    tmp = tmp_path_factory.mktemp("finished")
    train(compose_train(tmp, *TINY))
    return tmp / "run"


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "copy"))


def serve_both(run_dir: Path, tmp_path: Path, capsys) -> tuple[str, str]:
    """stderr of `seqexp-recommend` and of `seqexp-export` on the run (both must succeed)."""
    capsys.readouterr()  # what came before (training's console report)
    assert cli([str(run_dir), "1 2 3", "-k", "3", "--json"]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)[0]) == 3  # served
    assert export_cli([str(run_dir), "--out", str(tmp_path / "export")]) == 0
    exported = capsys.readouterr()
    assert (tmp_path / "export" / "users.parquet").exists()
    return captured.err, exported.err


# ---- 1. unfinished runs ----------------------------------------------------------------------------------
def _kill(run_dir: Path) -> None:
    (run_dir / "results.json").unlink()  # what a SIGKILL (or a run still training) leaves: no results.json


def _fail(error: BaseException):
    def record(run_dir: Path) -> None:  # the record the failure policy of seqexp-train writes
        cfg = OmegaConf.create(load_checkpoint(run_dir / BEST)["config"])
        cfg.paths.output_dir = str(run_dir)
        assert record_failure(cfg, error, []) == run_dir

    return record


UNFINISHED = {
    "killed": (_kill, "has not completed (no results.json: killed, or still training)"),
    "failed": (_fail(RuntimeError("CUDA out of memory")), "has not completed (status: failed; RuntimeError: CUDA"),
    "interrupted": (_fail(KeyboardInterrupt()), "has not completed (status: interrupted; KeyboardInterrupt"),
}


@pytest.mark.parametrize("make, status", UNFINISHED.values(), ids=UNFINISHED.keys())
def test_an_unfinished_run_is_served_with_a_warning_naming_the_run_and_its_status(
    finished_run, tmp_path, capsys, make, status
):
    run_dir = copy_run(finished_run, tmp_path)
    assert serve_both(run_dir, tmp_path, capsys) == ("", "")  # a finished run: no warning
    make(run_dir)
    epoch = load_checkpoint(run_dir / BEST)["epoch"]
    served = f"serving its best checkpoint, from epoch {epoch}, which may be only partly trained\n"
    for command, err in zip(("seqexp-recommend", "seqexp-export"), serve_both(run_dir, tmp_path, capsys), strict=True):
        assert err.startswith(f"{command}: warning: run {run_dir} {status}")
        assert err.endswith(served) and err.count("\n") == 1
    with pytest.warns(UserWarning, match=re.escape(f"run {run_dir} {status}")):
        Recommender.from_run(run_dir)


def test_a_run_stopped_by_its_time_budget_is_served_with_a_warning(tmp_path, capsys):
    train(compose_train(tmp_path, *TINY, "trainer.max_minutes=0.000001"))  # the budget ends it after epoch 1 of 2
    run_dir = tmp_path / "run"
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "completed" and results["training"]["out_of_time"] is True
    recommend_err, export_err = serve_both(run_dir, tmp_path, capsys)
    for command, err in (("seqexp-recommend", recommend_err), ("seqexp-export", export_err)):
        assert err == (
            f"{command}: warning: run {run_dir} stopped training at its time budget (trainer.max_minutes=1e-06; "
            f"results.json training.out_of_time: true): serving its best checkpoint, from epoch 1, which may be "
            f"only partly trained\n"
        )


def test_a_run_resumed_without_saving_its_best_names_no_checkpoint_and_serving_warns(tmp_path, capsys):
    """Formerly results.json named best.pt from before the resume, while its metrics came from a later best epoch."""
    fast = ("model.optimizer.lr=0.01", "trainer.patience=20")
    train(compose_train(tmp_path, *TINY, *fast, "trainer.max_epochs=1"))
    _, objects = train(compose_train(tmp_path, *TINY, *fast, "trainer.resume=true", "trainer.max_epochs=10",
                                     "trainer.save_checkpoint=false"))  # fmt: skip
    run_dir, best = tmp_path / "run", objects["results"]["training"]["best_epoch"]
    assert best > 1 and load_checkpoint(run_dir / BEST)["epoch"] == 1  # improved after the resume
    assert objects["results"]["checkpoint"] is None
    recommend_err, export_err = serve_both(run_dir, tmp_path, capsys)
    for command, err in (("seqexp-recommend", recommend_err), ("seqexp-export", export_err)):
        expected = f"{command}: warning: run {run_dir} names no checkpoint in results.json: its best epoch is {best} "
        assert err.startswith(expected + "(the one its test metrics describe), but checkpoints/best.pt holds epoch 1")


@pytest.mark.parametrize(
    ("fmt", "times"),
    [
        ("%Y%m%d", ["20231205", "20231206", "20231210"]),
        ("%d/%m/%Y %H:%M:%S", ["05/12/2023 10:00:00", "05/12/2023 10:05:00", "13/12/2023 08:00:00"]),
    ],  # fmt: skip
    ids=["compact", "day-first"],
)
def test_served_times_are_read_with_the_format_training_read_the_log_with(fmt, times):
    """Formerly data.timestamp_format was ignored in serving: '20231205' read as unix seconds (August 1970, one
    second apart), '05/12/2023 10:00:00' refused as ambiguous."""
    from seqexp.data.columns import parse_timestamps

    trained, _ = parse_timestamps(pa.array(times), fmt, "log")
    expected = time_gap_buckets(trained, np.array([0, 3])).tolist()
    ckpt = {"config": OmegaConf.to_yaml({"data": {"timestamp_unit": "auto", "timestamp_format": fmt}})}
    unit = TimeUnit.of_checkpoint(ckpt)
    assert unit == TimeUnit(None, False, fmt)
    served = encode_histories([[Event("a", None, t) for t in times]], {"a": 1}, 10, ["time_gap"], None, unit)
    assert served.features["time_gap"][0, -3:].tolist() == expected and served.warnings == []
    mixed = [Event("a", None, t) for t in (*times[:2], "1702000000")]
    with pytest.raises(RecommendError, match=rf"history 1: timestamp '1702000000' of item 'a' does not fit "
                       rf"data.timestamp_format='{re.escape(fmt)}', which training read the log with"):  # fmt: skip
        encode_histories([mixed], {"a": 1}, 10, ["time_gap"], None, unit)


# ---- 2. millisecond timestamps ---------------------------------------------------------------------------
T0_MS = 1_700_000_000_000
ITEMS = [f"i{n}" for n in range(1, 31)]


@pytest.fixture(scope="module")
def ms_run(tmp_path_factory):
    """A tiny LSTM with behaviour and time-gap features, trained on a log whose timestamps are milliseconds."""
    return train_feature_run(
        tmp_path_factory.mktemp("ms"), ITEMS, lambda u, t, rng: T0_MS + 1000 * int(rng.integers(1, 10**5)) * t
    )


def test_a_model_of_a_millisecond_log_reads_served_milliseconds_as_training_did(ms_run, tmp_path, capsys):
    run_dir, objects = ms_run
    data, test_set = objects["data"], objects["split"].test
    assert load_checkpoint(run_dir / BEST)["timestamp_unit"] == "ms"
    rec = Recommender.from_run(run_dir)
    assert rec.time_unit == TimeUnit("ms", forced=False)
    # the test users' histories, served with the log's own millisecond times, get the test evaluation's scores
    tensors = eval_tensors(data, test_set, rec.max_len, event_features(data, rec.model.features))
    expected = rec.model.score(tensors.inputs, tensors.features)

    def history(start: int, end: int, scale: int) -> list[Event]:
        """The log's events start..end with their times in seconds * scale (1000: the log file's own values)."""
        return [
            Event(
                str(data.item_ids[data.items[e] - 1]),
                data.behavior_vocab[data.behaviors[e]],
                int(round(data.timestamps[e] * scale)),
            )
            for e in range(start, end)
        ]

    spans = list(zip(test_set.history_start, test_set.history_end, strict=True))
    in_ms = [history(s, e, 1000) for s, e in spans]
    assert in_ms[0][0].timestamp >= T0_MS  # the values of the log file
    torch.testing.assert_close(rec.scores(in_ms), expected, atol=1e-5, rtol=0)
    in_seconds = [history(s, e, 1) for s, e in spans]  # unix seconds, the documented TIME syntax, still work
    torch.testing.assert_close(rec.scores(in_seconds), expected, atol=1e-5, rtol=0)
    gaps = rec.encode(in_ms[:1]).features["time_gap"]
    assert torch.equal(gaps, rec.encode(in_seconds[:1]).features["time_gap"])
    read_as_seconds = time_gap_buckets(np.array([float(e.timestamp) for e in in_ms[0]]), np.array([0, len(in_ms[0])]))
    assert not np.array_equal(gaps[0, -len(in_ms[0]) :].numpy(), read_as_seconds)  # what serving did before
    # the command line: the same recommendations from milliseconds, seconds and date-times
    tokens = {
        "ms": f"i1:pv@{T0_MS} i2:cart@{T0_MS + 60_000} i3:pv@{T0_MS + 7_200_000}",
        "s": f"i1:pv@{T0_MS // 1000} i2:cart@{T0_MS // 1000 + 60} i3:pv@{T0_MS // 1000 + 7200}",
        "iso": "i1:pv@2023-11-14T22:13:20Z i2:cart@2023-11-14T22:14:20Z i3:pv@2023-11-15T00:13:20Z",
    }
    out = {}
    for name, text in tokens.items():
        assert cli([str(run_dir), text, "-k", "5", "--json"]) == 0
        captured = capsys.readouterr()
        out[name] = json.loads(captured.out)
        assert captured.err == ""
    assert out["ms"] == out["s"] == out["iso"]


def test_a_checkpoint_without_the_unit_reads_times_by_their_size_and_a_told_unit_warns(ms_run, tmp_path):
    run_dir, _ = ms_run
    old = copy_run(run_dir, tmp_path)
    ckpt = load_checkpoint(old / BEST)
    del ckpt["timestamp_unit"]  # a best.pt written before the key existed
    torch.save(ckpt, old / BEST)
    ms = [[Event("i1", "pv", T0_MS), Event("i2", "cart", T0_MS + 60_000), Event("i3", "pv", T0_MS + 7_200_000)]]
    seconds = [[Event(e.item, e.behavior, e.timestamp / 1000) for e in ms[0]]]
    rec, older = Recommender.from_run(run_dir), Recommender.from_run(old)
    assert older.time_unit == TimeUnit(None, forced=False)
    expected = rec.scores(ms)
    torch.testing.assert_close(older.scores(ms), expected, atol=0, rtol=0)
    torch.testing.assert_close(older.scores(seconds), expected, atol=0, rtol=0)
    told = Recommender(rec.model, rec.item_ids, rec.max_len, rec.behavior_vocab, TimeUnit("ms", forced=True))
    torch.testing.assert_close(told.scores(ms), expected, atol=0, rtol=0)
    with pytest.warns(UserWarning, match=r"history 1: timestamps read as ms, the unit training was told \(data\."):
        told.scores(seconds)  # read as ms, as data.timestamp_unit=ms said; the size says seconds: warned


# ---- 3. a model class that cannot be imported ------------------------------------------------------------
ENCODER = '''
"""A user's own encoder, outside the package."""
from torch import nn
from seqexp.model.encoders.base import SequenceEncoder


class MeanEncoder(SequenceEncoder):
    causal = True

    def __init__(self, hidden_size: int = 16) -> None:
        super().__init__(hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, x, padding_mask):
        weights = padding_mask.float().cumsum(dim=1).clamp(min=1)[:, :, None]
        return self.proj((x * padding_mask[:, :, None]).cumsum(dim=1) / weights) * padding_mask[:, :, None]
'''


def test_a_model_class_that_cannot_be_imported_is_one_error_naming_it_and_the_fix(tmp_path, capsys, monkeypatch):
    module_dir = tmp_path / "my_code"
    module_dir.mkdir()
    (module_dir / "serving_trust_encoder.py").write_text(ENCODER)
    target = "serving_trust_encoder.MeanEncoder"
    with monkeypatch.context() as m:  # trained where the module is importable ...
        m.syspath_prepend(str(module_dir))
        overrides = ["~model.encoder.num_layers", "~model.encoder.dropout", f"model.encoder._target_={target}"]
        train(compose_train(tmp_path, *TINY, *overrides))
    sys.modules.pop("serving_trust_encoder", None)  # ... served where it is not
    run_dir = tmp_path / "run"
    trained = f"the model in {run_dir / BEST} was trained with model.encoder._target_={target}, but module "
    for command, entry, argv in (("seqexp-recommend", cli, ["1 2"]), ("seqexp-export", export_cli, [])):
        assert entry([str(run_dir), *argv]) == 2
        assert capsys.readouterr().err == (
            f"{command}: error: {trained}'serving_trust_encoder' cannot be imported here (it is not on the Python "
            f"path); put the folder that holds the module that defines {target} on PYTHONPATH, e.g. "
            f"PYTHONPATH=<dir> {command} {run_dir} ...\n"
        )
    with pytest.raises(RecommendError, match="cannot be imported here"):
        Recommender.from_run(run_dir)
    monkeypatch.syspath_prepend(str(module_dir))  # the fix: the module on the path, and the run serves
    assert cli([str(run_dir), "1 2", "-k", "2"]) == 0 and capsys.readouterr().err == ""


def test_a_class_its_module_no_longer_defines_is_one_error(finished_run, tmp_path, capsys):
    run_dir = copy_run(finished_run, tmp_path)
    ckpt = load_checkpoint(run_dir / BEST)
    cfg = OmegaConf.create(ckpt["config"])
    cfg.model.encoder._target_ = "seqexp.model.encoders.rnn.RenamedEncoder"
    torch.save({**ckpt, "config": OmegaConf.to_yaml(cfg)}, run_dir / BEST)
    assert cli([str(run_dir), "1 2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seqexp-recommend: error: the model in ") and err.count("\n") == 1
    assert "model.encoder._target_=seqexp.model.encoders.rnn.RenamedEncoder, but it cannot be loaded here " in err
    assert "(seqexp.model.encoders.rnn has no 'RenamedEncoder'); restore the version of its module" in err


# ---- 4. a checkpoint file given where the run dir is expected -------------------------------------------
def test_a_runs_best_checkpoint_file_serves_that_run_and_another_file_names_the_run_dir(finished_run, tmp_path, capsys):
    run_dir = copy_run(finished_run, tmp_path)
    capsys.readouterr()
    assert (
        cli([str(run_dir / BEST), "1 2 3", "-k", "3", "--json"]) == 0
    )  # formerly "run dir .../best.pt does not exist"
    assert json.loads(capsys.readouterr().out) == json.loads(_served_json(run_dir, capsys))
    assert export_cli([str(run_dir / BEST)]) == 0  # the default --out is the run's own export/, not best.pt/export
    assert (run_dir / "export" / "users.parquet").exists() and capsys.readouterr().err == ""
    shutil.copy(run_dir / BEST, run_dir / "checkpoints" / "other.pt")
    for command, entry, argv in (("seqexp-recommend", cli, ["1 2"]), ("seqexp-export", export_cli, [])):
        assert entry([str(run_dir / "checkpoints" / "other.pt"), *argv]) == 2
        assert capsys.readouterr().err == (
            f"{command}: error: {run_dir / 'checkpoints' / 'other.pt'} is a checkpoint file, not a run dir; {command} "
            f"serves a run's best checkpoint (checkpoints/best.pt): pass its run dir: {command} {run_dir} ...\n"
        )
        assert entry([str(run_dir / "results.json"), *argv]) == 2
        assert capsys.readouterr().err == (
            f"{command}: error: {run_dir / 'results.json'} is a file, not a run dir; pass the run dir it is in: "
            f"{command} {run_dir} ...\n"
        )


def _served_json(run_dir: Path, capsys) -> str:
    assert cli([str(run_dir), "1 2 3", "-k", "3", "--json"]) == 0
    return capsys.readouterr().out


# ---- 5. times training would drop -----------------------------------------------------------------------
DROPPED_TIMES = {
    "negative": ("i1:pv@-5 i2:cart@-1", "timestamp '-5' of item 'i1' is not after 1970-01-01"),
    "zero": (f"i1:pv@{T0_MS} i2:cart@0", "timestamp '0' of item 'i2' is not after 1970-01-01"),
    "before 1970": (
        "i1:pv@1969-12-31T00:00:00 i2:cart@2023-11-14T22:13:20",
        "'1969-12-31T00:00:00' of item 'i1' is not",
    ),
    "future": ("i1:pv@2023-11-14T22:13:20 i2:cart@2200-01-01T00:00:00", "'2200-01-01T00:00:00' of item 'i2' lies in"),
}


@pytest.mark.parametrize("history, message", DROPPED_TIMES.values(), ids=DROPPED_TIMES.keys())
def test_times_training_drops_are_one_error_naming_the_history_the_item_and_the_time(ms_run, capsys, history, message):
    run_dir, _ = ms_run
    assert cli([str(run_dir), f"i3:pv@{T0_MS}", history]) == 2  # formerly scored, with gaps of times never trained on
    err = capsys.readouterr().err
    assert err.startswith("seqexp-recommend: error: history 2: ") and err.count("\n") == 1 and message in err
    assert "training drops such events (rule bad_timestamp); times must be positive unix seconds or date-times" in err


def test_the_api_refuses_times_training_drops_too(ms_run):
    rec = Recommender.from_run(ms_run[0])
    with pytest.raises(RecommendError, match=r"history 1: timestamp -5 of item 'i1' is not after 1970-01-01"):
        rec.recommend([[Event("i1", "pv", -5), Event("i2", "cart", -1)]])
    assert rec.recommend([[Event("i1", "pv", T0_MS), Event("i2", "cart", T0_MS + 60_000)]], k=2)  # served


# ---- ids a float export wrote ----------------------------------------------------------------------------
def test_item_ids_a_float_export_wrote_are_the_items_training_read_them_as(finished_run, tmp_path, capsys):
    """Preparation reads `12.0` in a column of integer ids as item `12`; serving formerly skipped it as unknown."""
    rec = Recommender.from_run(finished_run)
    assert "1" in rec.index and "1.0" not in rec.index  # a log of integer ids
    as_written = rec.recommend([["1", "2", "3"]], k=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "unknown item id(s) skipped" warning
        assert rec.recommend([["1.0", "2.", "3"]], k=5) == as_written
    events = tmp_path / "events.json"
    events.write_text(json.dumps([[1.0, {"item": 2.0}, "3.0"]]))  # what json.dump of a float column writes
    capsys.readouterr()
    assert cli([str(finished_run), "--events", str(events), "-k", "5", "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and [r["item_id"] for r in json.loads(out)[0]["items"]] == [r.item_id for r in as_written[0]]
    assert rec.encode([["7.5", "1"]]).warnings == ["history 1: 1 unknown item id(s) skipped: ['7.5']"]  # not an id
