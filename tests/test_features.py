"""Operation type and time as features: codes, masking, and proof that they reach every encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import CONF_DIR, TINY, compose_train
from seqexp.app.recommend import Recommender
from seqexp.app.train import train
from seqexp.data.features import MAX_GAP_BUCKET, time_gap_buckets
from seqexp.errors import ConfigError
from seqexp.model.objectives import MaskedItemObjective, NextItemObjective
from seqexp.model.recommender import build_model

MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))


def test_time_gap_buckets_are_log_scaled_and_restart_per_user():
    ts = np.array([100.0, 100.0, 101.0, 164.0, 1e12, 50.0, 3650.0])
    offsets = np.array([0, 5, 7])
    # first event of each user -> 1; gap 0 -> 2; 1 s -> 3; 63 s -> 2 + 6; huge -> capped; 3600 s -> 2 + 11
    assert time_gap_buckets(ts, offsets).tolist() == [1, 2, 3, 8, MAX_GAP_BUCKET, 1, 13]


def test_masked_positions_hide_their_own_features_and_prediction_appends_unknown():
    windows = torch.tensor([[0, 3, 4, 5]])
    feats = torch.tensor([[0, 2, 3, 1]])
    inputs = torch.tensor([[3, 9, 5]])  # position 1 masked (mask index 9)
    assert MaskedItemObjective().feature_inputs(feats, inputs, 9).tolist() == [[2, 0, 1]]
    assert MaskedItemObjective().prediction_features(torch.tensor([[2, 3, 1]])).tolist() == [[3, 1, 0]]
    assert NextItemObjective().feature_inputs(feats, windows[:, :-1], 9).tolist() == [[0, 2, 3]]


@pytest.mark.parametrize("name", MODELS)
def test_changing_one_behaviour_or_time_gap_changes_the_scores(tmp_path, name):
    cfg = compose_train(tmp_path, f"model={name}", "model.embedding_dim=16", "model.features=[behavior,time_gap]")
    torch.manual_seed(0)
    model = build_model(cfg.model, 20, torch.ones(21), {"behavior": 5, "time_gap": MAX_GAP_BUCKET + 1}).eval()
    history = torch.tensor([[0, 3, 4, 5, 6]])
    behavior = torch.tensor([[0, 1, 1, 2, 1]])
    gaps = torch.tensor([[0, 1, 5, 9, 12]])
    base = model.score(history, {"behavior": behavior, "time_gap": gaps})
    other_behavior = model.score(history, {"behavior": behavior.index_fill(1, torch.tensor([3]), 4), "time_gap": gaps})
    other_gap = model.score(history, {"behavior": behavior, "time_gap": gaps.index_fill(1, torch.tensor([2]), 20)})
    assert not torch.allclose(base, other_behavior) and not torch.allclose(base, other_gap)
    # the tables are trained: both receive gradients from the loss
    windows = torch.tensor([[0, 3, 4, 5, 6, 7]])
    feats = {"behavior": torch.tensor([[0, 1, 1, 2, 1, 3]]), "time_gap": torch.tensor([[0, 1, 5, 9, 12, 3]])}
    model.train()
    model(*model.training_batch(windows, feats, generator=torch.Generator().manual_seed(0))).backward()
    for table in model.feature_embeddings.values():
        assert table.weight.grad is not None and table.weight.grad[1:].abs().sum() > 0


def test_features_and_target_filter_train_end_to_end_under_a_temporal_split(tmp_path):
    cfg = compose_train(
        tmp_path,
        *TINY,
        "model.features=[behavior,time_gap]",
        "split=temporal",
        "split.target_behaviors=[buy]",
        "data.generate.n_users=150",
    )
    metrics, objects = train(cfg)
    res = json.loads((Path(cfg.paths.output_dir) / "results.json").read_text())
    assert res["protocol"]["features"] == ["behavior", "time_gap"] and res["protocol"]["split"] == "temporal"
    assert res["protocol"]["split_config"]["target_behaviors"] == ["buy"]
    data, split = objects["data"], objects["split"]
    buy = data.behavior_vocab.index("buy")
    assert np.all(data.behaviors[split.test.history_end] == buy)  # every test target is a purchase
    assert 0 < res["protocol"]["eval_cases"]["test"] == len(split.test) < data.n_users
    assert all(np.isfinite(v) for v in metrics.values())
    # a saved run with features serves bare item histories (their behaviour and time read as unknown)
    rec = Recommender.from_run(cfg.paths.output_dir)
    assert sorted(rec.model.features) == ["behavior", "time_gap"]
    assert len(rec.recommend([list(data.item_ids[:3])], k=5)[0]) == 5


def test_a_feature_the_log_lacks_is_a_config_error(tmp_path):
    cfg = compose_train(tmp_path, *TINY, "model.features=[behavior]", "data.columns.behavior=null")
    with pytest.raises(ConfigError, match="no behaviour column: map one with data.columns.behavior"):
        train(cfg)
