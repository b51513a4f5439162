"""W&B tracking is optional and never fatal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import wandb

from conftest import TINY, compose_train
from seqexp.tracking.trackers import WandbTracker, flatten


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
    tracker = WandbTracker(mode="offline")
    with pytest.warns(UserWarning, match=r"W&B init failed .*api_key.*untracked"):
        tracker.start(tmp_path, {"a": 1}, name="x", tags=["t"])
    tracker.log({"train/loss": 1.0}, epoch=1)
    tracker.summary({"test/ndcg@10": 0.1})
    tracker.finish()
    assert tracker.run is None


def test_an_unreachable_online_wandb_falls_back_to_offline_and_says_how_to_sync(monkeypatch, tmp_path):
    real_init = wandb.init

    def online_fails(*args, **kwargs):
        if kwargs.get("mode") == "online":
            raise wandb.errors.CommError("failed to reach api.wandb.ai (no network)")
        return real_init(*args, **kwargs)

    monkeypatch.setattr(wandb, "init", online_fails)
    tracker = WandbTracker(mode="online")
    with pytest.warns(UserWarning, match=r"tracking offline instead. Upload later with: wandb sync ") as caught:
        tracker.start(tmp_path, {"a": 1}, name="x", tags=[])
    tracker.log({"train/loss": 1.0}, epoch=1)
    tracker.finish()
    sync_dir = str(caught[0].message).rsplit("wandb sync ", 1)[1]
    assert Path(sync_dir).name.startswith("offline-run-") and any(Path(sync_dir).glob("*.wandb"))


def test_training_completes_with_local_results_when_wandb_fails(monkeypatch, tmp_path):
    monkeypatch.setattr(wandb, "init", _broken_init)
    cfg = compose_train(tmp_path, *[o for o in TINY if o != "logger=none"], "logger=wandb")
    from seqexp.app.train import train

    with pytest.warns(UserWarning, match="W&B init failed"):
        metrics, _ = train(cfg)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "completed" and results["metrics"] == metrics


def test_checkpoint_artifact_is_logged_when_asked(tmp_path):
    from seqexp.tracking.trackers import WandbTracker

    logged = []

    class FakeRun:
        def log_artifact(self, artifact):
            logged.append(artifact)

    tracker = WandbTracker(log_checkpoint=True)
    tracker.run = FakeRun()
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"weights")
    tracker.log_artifact(ckpt, name="model-lstm-synthetic-s0", kind="model")
    (artifact,) = logged
    assert artifact.name == "model-lstm-synthetic-s0" and artifact.type == "model"
    assert "best.pt" in artifact.manifest.entries
