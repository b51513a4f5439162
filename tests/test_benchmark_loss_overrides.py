"""benchmarks/_runs.py `loss_overrides`: the benchmarks ask for a loss by name on any card; esasrec takes its loss
from the model/loss group (swapped with `model/loss=`), the other cards hold an inline full softmax (`+model/loss=`)."""

from __future__ import annotations

import importlib.util

import pytest

from conftest import CONF_DIR, REPO, compose_train
from seqexp.tracking.results import FULL_SOFTMAX

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
