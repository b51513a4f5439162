"""trainer.selection_window: model selection and patience on the mean of the last k validations."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from conftest import TINY, compose_train
from seqexp.app.train import train
from seqexp.errors import ResumeMismatch
from seqexp.training.loop import selection_score, validate
from seqexp.training.state import LoopState

# a flat, noisy curve: a spike at epoch 4, then a stretch that is better on average from epoch 6 on
CURVE = [0.10, 0.20, 0.22, 0.30, 0.21, 0.26, 0.27, 0.28, 0.24, 0.25]
MODEL = SimpleNamespace(eval=lambda: None, score=None)  # the scripted protocol never scores


def _select(window: int, patience: int) -> tuple[int, float, int]:
    """Drive `validate` over CURVE as the loop does; returns (best epoch, best score, epochs run)."""
    state = LoopState()
    for epoch, value in enumerate(CURVE, start=1):
        protocol = SimpleNamespace(
            selection_metric="ndcg@10",
            evaluate=lambda score, valid, device, v=value: SimpleNamespace(metrics={"ndcg@10": v}, seconds=0.0),
        )
        row = {"epoch": epoch}
        validate(MODEL, None, protocol, state, row, torch.device("cpu"), window)
        state.history.append(row)
        state.epoch = epoch
        if state.bad_evals >= patience:
            break
    return state.best_epoch, state.best_score, state.epoch


def test_selection_score_is_the_mean_of_the_last_k_validations():
    history = [{"epoch": 1, "valid/ndcg@10": 0.1}, {"epoch": 2}, {"epoch": 3, "valid/ndcg@10": 0.3}]  # 2: no valid
    assert selection_score(history, 0.5, "ndcg@10", 1) == 0.5
    assert selection_score(history, 0.5, "ndcg@10", 2) == pytest.approx((0.3 + 0.5) / 2)
    assert selection_score(history, 0.5, "ndcg@10", 3) == pytest.approx((0.1 + 0.3 + 0.5) / 3)
    assert selection_score(history, 0.5, "ndcg@10", 10) == pytest.approx((0.1 + 0.3 + 0.5) / 3)  # fewer at the start
    assert selection_score([], 0.5, "ndcg@10", 3) == 0.5


def test_one_lucky_validation_wins_alone_but_not_in_a_window():
    assert _select(window=1, patience=20) == (4, 0.30, 10)  # the spike
    best_epoch, best_score, _ = _select(window=3, patience=20)
    assert best_epoch == 8 and best_score == pytest.approx((0.26 + 0.27 + 0.28) / 3)  # the end of the best stretch


def test_patience_counts_validations_without_a_better_window_mean():
    # alone: after the spike at 4, epochs 5-7 are worse -> patience 3 stops at epoch 7, best 4
    assert _select(window=1, patience=3)[::2] == (4, 7)
    # window 3: means .10 .15 .173 .24 .243 .257 .247 .27 .263 .257 -> best at 8, patience 2 stops at 10
    assert _select(window=3, patience=2)[::2] == (8, 10)


def test_a_run_records_the_window_mean_and_a_resume_may_not_change_the_window(tmp_path):
    overrides = [*TINY, "trainer.max_epochs=3", "trainer.patience=3", "trainer.selection_window=2"]
    _, objects = train(compose_train(tmp_path, *overrides))
    history = objects["results"]["history"]
    means = [row["valid/ndcg@10_mean2"] for row in history]
    raw = [row["valid/ndcg@10"] for row in history]
    assert means[0] == pytest.approx(raw[0]) and means[2] == pytest.approx((raw[1] + raw[2]) / 2)
    best = objects["results"]["training"]["best_epoch"]
    assert means[best - 1] == max(means) and not math.isnan(max(means))
    with pytest.raises(
        ResumeMismatch, match=r"trainer.selection_window=2, this command has trainer.selection_window=1"
    ):
        train(compose_train(tmp_path, *overrides[:-1], "trainer.resume=true", "trainer.max_epochs=4"))
