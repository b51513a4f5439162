"""model.loss_auto: above a catalogue size a card's full softmax becomes a sampled softmax, logged, recorded in
results.json (training.loss) and overridable (model.loss_auto.above_items=null)."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from conftest import TINY, compose_train
from seqexp.errors import ConfigError
from seqexp.model.loss_choice import FULL_SOFTMAX, loss_choice
from seqexp.model.losses import FullSoftmax, SampledSoftmax

SAMPLED = {"_target_": "seqexp.model.losses.SampledSoftmax", "num_negatives": 7}
CHUNKED = {"_target_": "seqexp.model.losses.ChunkedFullSoftmax", "chunk_size": 4}


def card(loss: dict | None, above: object) -> dict:
    return {"loss": loss, "loss_auto": {"above_items": above, "loss": SAMPLED}}


def test_the_full_softmax_is_replaced_only_above_the_threshold():
    full = {"_target_": FULL_SOFTMAX}
    auto = {"class": SAMPLED["_target_"], "chosen": "auto (11 items > 10)"}
    assert loss_choice(card(full, 10), 11) == (SAMPLED, auto)
    assert loss_choice(card(full, 10), 10) == (full, {"class": FULL_SOFTMAX, "chosen": "configured"})  # not above
    assert loss_choice(card(full, None), 10**9) == (full, {"class": FULL_SOFTMAX, "chosen": "configured"})  # off
    assert loss_choice({"loss": full}, 10**9)[1]["chosen"] == "configured"  # a card without model.loss_auto
    # no model.loss at all is the full softmax (SequenceRecommender's default): replaced, or built as None
    assert loss_choice(card(None, 10), 11)[0] == SAMPLED
    assert loss_choice(card(None, 10), 5) == (None, {"class": FULL_SOFTMAX, "chosen": "configured"})
    # a loss the user chose is never replaced, however large the catalogue
    assert loss_choice(card(CHUNKED, 10), 10**7) == (CHUNKED, {"class": CHUNKED["_target_"], "chosen": "configured"})


def test_bad_settings_name_the_key_and_the_fix():
    full = {"_target_": FULL_SOFTMAX}
    for bad in ("many", -1, 2.5, True):
        with pytest.raises(ConfigError, match=r"model.loss_auto.above_items=.*or null"):
            loss_choice(card(full, bad), 5)
    with pytest.raises(ConfigError, match=r"model.loss_auto.loss._target_ is not set"):
        loss_choice({"loss": full, "loss_auto": {"above_items": 1, "loss": {}}}, 5)


def losses(res: dict) -> list[float]:
    return [epoch["train/loss"] for epoch in res["history"]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Four tiny runs: the automatic switch (threshold 10 items), the same loss by hand, the default, and off."""
    from seqexp.app.train import train

    out = {}
    for name, overrides in {
        "auto": ["model.loss_auto.above_items=10"],
        "hand": ["+model/loss=sampled"],  # the settings model.loss_auto.loss has
        "default": [],
        "off": ["model.loss_auto.above_items=null"],
    }.items():
        tmp = tmp_path_factory.mktemp(name)
        stages = logging.getLogger("seqexp.app.stages")
        records: list[logging.LogRecord] = []
        handler = logging.Handler(logging.INFO)
        handler.emit = records.append
        stages.addHandler(handler)
        level = stages.level
        stages.setLevel(logging.INFO)
        try:
            metrics, objects = train(compose_train(tmp, *TINY, *overrides))
        finally:
            stages.removeHandler(handler)
            stages.setLevel(level)
        res = json.loads((tmp / "run" / "results.json").read_text())
        out[name] = (metrics, objects["model"], res, [r.getMessage() for r in records])
    return out


def test_a_tiny_threshold_trains_the_sampled_loss_logs_it_and_records_it(runs):
    metrics, model, res, said = runs["auto"]
    n = res["data_summary"]["items"]
    assert n > 10
    assert isinstance(model.loss, SampledSoftmax) and model.loss.num_negatives == 2048 and not model.loss.in_batch
    chosen = f"auto ({n} items > 10)"
    assert res["training"]["loss"] == {"class": "seqexp.model.losses.SampledSoftmax", "chosen": chosen}
    said = [line for line in said if "model.loss_auto.above_items=10" in line]
    assert len(said) == 1 and f"{n} items" in said[0] and "SampledSoftmax" in said[0]

    # the same run as asking for that loss by hand (+model/loss=sampled has the same settings), recorded as such
    by_hand, model_hand, res_hand, _ = runs["hand"]
    assert isinstance(model_hand.loss, SampledSoftmax)
    assert res_hand["training"]["loss"] == {"class": "seqexp.model.losses.SampledSoftmax", "chosen": "configured"}
    assert losses(res_hand) == losses(res) and by_hand == metrics
    assert losses(res) != pytest.approx(losses(runs["default"][2]))  # and not the full softmax's training


def test_the_default_threshold_and_null_keep_the_full_softmax_bit_for_bit(runs):
    default, model, res, said = runs["default"]
    off, model_off, res_off, _ = runs["off"]
    assert type(model.loss) is FullSoftmax and type(model_off.loss) is FullSoftmax
    assert res["training"]["loss"] == res_off["training"]["loss"] == {"class": FULL_SOFTMAX, "chosen": "configured"}
    assert default == off and losses(res) == losses(res_off)
    assert res["config"]["model"]["loss_auto"]["above_items"] == 500000
    assert not [line for line in said if "loss_auto" in line]  # nothing to say when nothing changes


def test_sparse_items_on_a_full_softmax_card_train_once_the_switch_picks_the_sampled_loss(tmp_path):
    """The large-catalogue recipe of docs/scale.md: sparse item table + row-wise optimiser, loss left to loss_auto."""
    from seqexp.app.train import train

    sparse = ["model.sparse_items=true", "model.optimizer._target_=seqexp.model.sparse_items.SparseItemOptimizer"]
    _, objects = train(compose_train(tmp_path / "on", *TINY, *sparse, "model.loss_auto.above_items=10"))
    assert objects["model"].item_embedding.sparse and objects["model"].loss.sparse_rows
    assert objects["results"]["training"]["loss"]["chosen"].startswith("auto (")
    # served as it was trained (formerly restore_model rebuilt the card's full softmax, which sparse_items refuses)
    from seqexp.app.recommend import Recommender

    served = Recommender.from_run(tmp_path / "on" / "run")
    assert isinstance(served.model.loss, SampledSoftmax) and served.model.item_embedding.sparse
    trained = objects["model"].state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in served.model.state_dict().items())
    assert len(served.recommend([served.item_ids[:3]], k=5)[0]) == 5
    with pytest.raises(ConfigError, match=r"model.sparse_items=true needs a loss that reads only the rows"):
        train(compose_train(tmp_path / "off", *TINY, *sparse, "model.loss_auto.above_items=null"))
