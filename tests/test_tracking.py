"""W&B tracking is optional and never fatal."""

from __future__ import annotations

import json

import pytest
import wandb

from conftest import TINY, compose_train
from seqexp.tracking import WandbTracker, flatten


def test_flatten_nests_with_dots_and_keeps_lists():
    assert flatten({"model": {"encoder": {"num_layers": 2}}, "eval": {"ks": [5, 10]}, "seed": 0}) == {
        "model.encoder.num_layers": 2,
        "eval.ks": [5, 10],
        "seed": 0,
    }


def _broken_init(*args, **kwargs):
    raise wandb.errors.UsageError("api_key not configured (no-tty)")


def test_a_failing_wandb_init_is_a_warning_and_later_calls_are_no_ops(monkeypatch, tmp_path):
    monkeypatch.setattr(wandb, "init", _broken_init)
    tracker = WandbTracker(mode="online")
    with pytest.warns(UserWarning, match=r"W&B init failed .*wandb sync"):
        tracker.start(tmp_path, {"a": 1}, name="x", tags=["t"])
    tracker.log({"train/loss": 1.0}, epoch=1)
    tracker.summary({"test/ndcg@10": 0.1})
    tracker.finish()
    assert tracker.run is None


def test_training_completes_with_local_results_when_wandb_fails(monkeypatch, tmp_path):
    monkeypatch.setattr(wandb, "init", _broken_init)
    cfg = compose_train(tmp_path, *[o for o in TINY if o != "logger=none"], "logger=wandb")
    from seqexp.train import train

    with pytest.warns(UserWarning, match="W&B init failed"):
        metrics, _ = train(cfg)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "completed" and results["metrics"] == metrics
