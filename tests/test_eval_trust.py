"""Trust rules for evaluation and training outcomes: a metric ceiling, a sample size or an untrained model is never
recorded silently."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from conftest import TINY, compose_train, eval_tensors_of, write_log
from seqexp.app.train import train
from seqexp.errors import ConfigError
from seqexp.evaluation.reach import repeated_target_share

CEILING = "already in the user's history and can never be hit under eval.filter_seen=true"


def _results(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "run" / "results.json").read_text())


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and text in r.getMessage()]


def test_repeated_target_share_counts_rows_whose_target_is_in_their_history():
    tensors = eval_tensors_of([[1, 2], [3, 4], [0, 5]], [2, 9, 5], [[1, 2, 2], [3, 4], [5]])
    assert repeated_target_share(tensors) == pytest.approx(2 / 3)  # rows 0 and 2 (row 0 counted once)


def test_targets_hidden_by_filter_seen_are_recorded_and_warned_about_once(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    train(compose_train(tmp_path, *TINY))  # the synthetic log repeats items: most targets are in the history
    shares = _results(tmp_path)["protocol"]["unreachable_targets"]
    assert shares["test"] > 0.5 and shares["valid"] > 0.5
    (line,) = _warnings(caplog, CEILING)
    assert f"{100 * shares['test']:.0f}% of test targets" in line and "set eval.filter_seen=false" in line
    # every metric is capped by the reachable share, whatever the model
    assert _results(tmp_path)["metrics"]["test/hr@20"] <= 1 - shares["test"] + 1e-9


def test_no_ceiling_is_recorded_or_warned_about_without_filter_seen_or_without_repeats(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    train(compose_train(tmp_path / "a", *TINY, "eval.filter_seen=false"))
    assert _results(tmp_path / "a")["protocol"]["unreachable_targets"] == {"valid": 0.0, "test": 0.0}
    rows = [(u, 1 + (u + 7 * t) % 30, 100 + t) for u in range(30) for t in range(8)]  # no user repeats an item
    log = write_log(tmp_path / "log.csv", rows)
    overrides = [o for o in TINY if not o.startswith("data.generate")]
    train(compose_train(tmp_path / "b", *overrides, "data=csv", f"data.path={log}", "data.columns.behavior=null"))
    assert _results(tmp_path / "b")["protocol"]["unreachable_targets"] == {"valid": 0.0, "test": 0.0}
    assert _warnings(caplog, CEILING) == []


def test_a_validation_sample_of_at_least_every_user_is_recorded_as_every_user(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    train(compose_train(tmp_path, *TINY, "eval.sample_users=1000"))
    res = _results(tmp_path)
    assert res["protocol"]["valid_sample_users"] is None  # not 1000: all 60 users validated
    (line,) = _warnings(caplog, "eval.sample_users=1000")
    assert "covers every one of the 60 validation users" in line


def test_a_smaller_validation_sample_is_still_recorded(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    train(compose_train(tmp_path, *TINY, "eval.sample_users=20"))
    assert _results(tmp_path)["protocol"]["valid_sample_users"] == 20
    assert _warnings(caplog, "eval.sample_users=") == []


def test_an_epoch_without_a_single_target_fails_the_run_naming_the_objective_keys(tmp_path):
    masked_nothing = (
        "model=bert4rec",
        "model.objective.mask_prob=0.001",
        "model.objective.last_item_prob=0",
        "model.objective.mask_last_if_none=false",
    )
    with pytest.raises(ConfigError, match=r"epoch 1 trained on 0 targets.*mask_prob=0.001 masks no position") as e:
        train(compose_train(tmp_path, *TINY, *masked_nothing))
    assert "raise model.objective.mask_prob or set model.objective.last_item_prob>0" in str(e.value)
    assert not (tmp_path / "run" / "results.json").exists() or _results(tmp_path)["status"] != "completed"
