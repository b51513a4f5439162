"""benchmarks/_runs.py `loss_overrides`: the benchmarks ask for a loss by name on any card; esasrec takes its loss
from the model/loss group (swapped with `model/loss=`), the other cards hold an inline full softmax (`+model/loss=`)."""

from __future__ import annotations

import importlib.util

import pytest

from conftest import CONF_DIR, REPO, compose_train
from seqexp.model.loss_choice import FULL_SOFTMAX

_spec = importlib.util.spec_from_file_location("_runs", REPO / "benchmarks" / "_runs.py")
runs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runs)
CARDS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))


@pytest.mark.parametrize("card", CARDS)
def test_every_card_composes_with_the_loss_asked_for(tmp_path, card):
    full = compose_train(tmp_path, f"model={card}", *runs.loss_overrides(card, "full")).model.loss
    assert dict(full) == {"_target_": FULL_SOFTMAX}
    sampled = compose_train(tmp_path, f"model={card}", *runs.loss_overrides(card, "sampled")).model.loss
    assert (sampled.num_negatives, sampled.per_position, sampled.logq_correction) == (2048, False, True)
    chunked = compose_train(tmp_path, f"model={card}", *runs.loss_overrides(card, "chunked")).model.loss
    assert chunked._target_.endswith("ChunkedFullSoftmax") and "num_negatives" not in chunked


def test_only_esasrec_swaps_its_loss_group():
    assert runs.loss_overrides("esasrec", "sampled") == ["model/loss=sampled"]
    assert runs.loss_overrides("sasrec", "sampled") == ["+model/loss=sampled"]
    assert runs.loss_overrides("sasrec", "full") == []


def test_values_not_composed_parses_as_hydra_and_lets_the_last_override_win():
    config = {"model": {"optimizer": {"lr": 0.002}, "encoder": {"init": None, "norm": True}, "sparse": 0}}
    same = [
        "model=sasrec", "+model/loss=sampled", "~model.loss.num_negatives", "hydra.run.dir=/x",
        "model.optimizer.lr=1e-3", "model.optimizer.lr=2e-3", "model.encoder.init=null", "model.encoder.norm=true",
    ]  # fmt: skip
    assert runs.values_not_composed(config, same) == []  # groups, deletions and hydra. skipped; 2e-3 is 0.002
    assert runs.values_not_composed(config, ["model.optimizer.lr=2e-3", "model.optimizer.lr=1e-3"]) == [
        "model.optimizer.lr=1e-3"
    ]
    assert runs.values_not_composed(config, ["model.sparse=false"]) == ["model.sparse=false"]  # 0 is not False
    assert runs.values_not_composed(config, ["model.encoder.init=0.02", "model.absent=1"]) == [
        "model.encoder.init=0.02", "model.absent=1",
    ]  # fmt: skip
