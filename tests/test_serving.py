"""Serving computes what evaluation computed: for every test user of a feature model (behaviour + time gap),
`Recommender` scores and exported user vectors equal the test evaluation's, to 1e-5 (issue #14)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import TINY, compose_train
from seqexp.app.events import Event
from seqexp.app.export import cli as export_cli
from seqexp.app.export import export_run
from seqexp.app.recommend import Recommender
from seqexp.app.train import train
from seqexp.data.features import event_features
from seqexp.data.loader import eval_tensors
from seqexp.errors import ExportError
from seqexp.evaluation.protocol import evaluate

FEATURES = "model.features=[behavior,time_gap]"


@pytest.fixture(scope="module", params=["lstm", "bert4rec"])
def feature_run(request, tmp_path_factory):
    """A tiny model trained with behaviour and time-gap features; its run dir and training objects."""
    tmp = tmp_path_factory.mktemp(f"serve-{request.param}")
    _, objects = train(compose_train(tmp, *TINY, f"model={request.param}", FEATURES))
    return tmp / "run", objects


def events_of(data, start: int, end: int) -> list[Event]:
    """The prepared log's events start..end as a client would send them: raw ids, behaviour names, unix times."""
    return [
        Event(str(data.item_ids[data.items[e] - 1]), data.behavior_vocab[data.behaviors[e]], float(data.timestamps[e]))
        for e in range(start, end)
    ]


def test_recommender_scores_equal_the_test_evaluation_for_every_user(feature_run):
    run_dir, objects = feature_run
    data, test_set = objects["data"], objects["split"].test
    rec = Recommender.from_run(run_dir)
    assert rec.model.features == ["behavior", "time_gap"] and rec.behavior_vocab == data.behavior_vocab
    tensors = eval_tensors(data, test_set, rec.max_len, event_features(data, rec.model.features))
    # the checkpoint's model reproduces the reported test metric: these are the evaluation's scores
    result = evaluate(rec.model.score, tensors, n_items=data.n_items)
    assert result.metrics["ndcg@10"] == pytest.approx(objects["results"]["metrics"]["test/ndcg@10"], abs=1e-6)
    expected = rec.model.score(tensors.inputs, tensors.features)  # (M, N + 1)
    histories = [events_of(data, s, e) for s, e in zip(test_set.history_start, test_set.history_end, strict=True)]
    assert len(histories) == data.n_users == 60
    served = rec.scores(histories)
    torch.testing.assert_close(served, expected, atol=1e-5, rtol=0)
    # the features matter: bare ids read every behaviour and gap as unknown, and serving says so
    with pytest.warns(UserWarning, match=r"uses features \['behavior', 'time_gap'\], but history 1, 2, "):
        bare = rec.scores([[e.item for e in h] for h in histories])
    assert (bare - expected).abs().max() > 1e-3
    top_served, top_bare = expected[:, 1:].topk(10).indices, bare[:, 1:].topk(10).indices
    assert (top_served != top_bare).any(dim=1).sum() > 0


def test_exported_user_vectors_score_like_the_recommender(feature_run, tmp_path):
    run_dir, objects = feature_run
    data = objects["data"]
    out = export_run(run_dir, tmp_path / "export")
    users, items = pd.read_parquet(out / "users.parquet"), pd.read_parquet(out / "items.parquet")
    assert users["user_id"].tolist() == data.user_ids.tolist() and items["item_id"].tolist() == data.item_ids.tolist()
    user_vectors, item_vectors = (np.stack(t["vector"].to_numpy()).astype(np.float64) for t in (users, items))
    exported = torch.from_numpy(user_vectors @ item_vectors.T)  # (U, N)
    rec = Recommender.from_run(run_dir)
    full = [events_of(data, data.offsets[u], data.offsets[u + 1]) for u in range(data.n_users)]  # whole histories
    torch.testing.assert_close(exported, rec.scores(full)[:, 1:].double(), atol=1e-5, rtol=0)


def test_export_refuses_a_log_that_changed_since_training(feature_run, tmp_path, capsys):
    run_dir, objects = feature_run
    log = objects["results"]["config"]["data"]["path"]
    original = open(log, "rb").read()
    lines = original.decode().splitlines(keepends=True)
    try:
        with open(log, "w") as f:  # the same events, two rows swapped: same items, another fingerprint
            f.writelines([lines[0], lines[2], lines[1], *lines[3:]])
        with pytest.raises(ExportError, match=r"data_fingerprint.*restore the run's log, or retrain"):
            export_run(run_dir, tmp_path / "export")
        assert export_cli([str(run_dir), "--out", str(tmp_path / "export")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("seqexp-export: error: the data at data.path=") and err.count("\n") == 1
        assert not (tmp_path / "export").exists()
    finally:
        with open(log, "wb") as f:
            f.write(original)


def test_export_cli_user_mistakes_end_in_one_line(tmp_path, capsys):
    assert export_cli([str(tmp_path / "no-run")]) == 2
    err = capsys.readouterr().err
    no_run = tmp_path / "no-run"
    assert err == f"seqexp-export: error: run dir {no_run} does not exist; pass the folder a `seqexp-train` run wrote\n"
    assert export_cli([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seqexp-export: error: no checkpoint at ") and err.count("\n") == 1


def test_user_states_is_the_path_score_takes(feature_run):
    """`score` is `user_states @ item_table().T`, bit for bit (one prediction path, issue #15)."""
    run_dir, objects = feature_run
    model, data = Recommender.from_run(run_dir).model, objects["data"]
    tensors = eval_tensors(data, objects["split"].test, 10, event_features(data, model.features))
    states = model.user_states(tensors.inputs, tensors.features)
    assert states.shape == (len(tensors), model.encoder.hidden_size)
    assert torch.equal(model.score(tensors.inputs, tensors.features), states @ model.item_table().T)
