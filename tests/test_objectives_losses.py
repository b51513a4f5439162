"""Masked-item objective and the sampled softmax."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seqexp.model.losses import FullSoftmax, SampledSoftmax
from seqexp.model.objectives import MaskedItemObjective, NextItemObjective

MASK = 99


def test_masked_item_masks_only_real_events_and_targets_only_masked_positions():
    windows = torch.tensor([[0, 0, 0, 1, 2, 3, 4, 5, 6]] * 200)
    obj = MaskedItemObjective(mask_prob=0.3, last_item_prob=0.0)
    inputs, targets = obj.training_pair(windows, MASK, torch.Generator().manual_seed(0))
    seq = windows[:, 1:]
    masked = inputs == MASK
    assert not masked[seq == 0].any()  # padding is never masked
    assert torch.equal(targets[masked], seq[masked]) and (targets[~masked] == 0).all()
    assert torch.equal(inputs[~masked], seq[~masked])
    assert masked.any(dim=1).all()  # every row carries a loss
    share = masked[:, -6:].float().mean().item()
    assert 0.25 < share < 0.4  # about mask_prob (plus rows that had nothing drawn)


def test_last_item_rows_mask_only_the_last_event():
    windows = torch.tensor([[0, 1, 2, 3, 4]] * 50)
    inputs, targets = MaskedItemObjective(0.2, last_item_prob=1.0).training_pair(windows, MASK)
    assert (inputs[:, -1] == MASK).all() and (inputs[:, :-1] != MASK).all()
    assert (targets[:, -1] == 4).all() and (targets[:, :-1] == 0).all()


def test_prediction_inputs():
    history = torch.tensor([[0, 0, 7, 8], [1, 2, 3, 4]])
    assert MaskedItemObjective().prediction_inputs(history, MASK).tolist() == [[0, 7, 8, MASK], [2, 3, 4, MASK]]
    assert torch.equal(NextItemObjective().prediction_inputs(history, MASK), history)
    with pytest.raises(ValueError, match="mask_prob"):
        MaskedItemObjective(mask_prob=0.0)


def test_full_softmax_never_predicts_padding():
    h, table = torch.randn(3, 4), torch.randn(6, 4)
    targets = torch.tensor([1, 5, 2])
    logits = h @ table.T
    expected = F.cross_entropy(logits[:, 1:], targets - 1)
    torch.testing.assert_close(FullSoftmax()(h, targets, table), expected)


def test_sampled_softmax_distribution_and_accidental_hits():
    loss = SampledSoftmax(num_negatives=5, distribution="popularity")
    loss.bind(4, torch.tensor([0, 3, 1, 0, 0]))
    torch.testing.assert_close(loss.probs, torch.tensor([0, 4, 2, 1, 1]) / 8.0)
    only_target = SampledSoftmax(num_negatives=8, distribution="popularity")
    only_target.bind(2, torch.tensor([0, 10**9, 0]))  # item 1 is (almost) always drawn
    h, table = torch.randn(2, 4), torch.randn(3, 4)
    torch.manual_seed(0)
    # every negative equals the target -> ignored -> the target is the only candidate: loss 0
    assert only_target(h, torch.tensor([1, 1]), table).item() == pytest.approx(0.0, abs=1e-6)


def test_uniform_logq_correction_is_a_constant_shift():
    h, table, targets = torch.randn(5, 8), torch.randn(30, 8), torch.tensor([3, 7, 1, 29, 12])
    a, b = SampledSoftmax(50, "uniform", True), SampledSoftmax(50, "uniform", False)
    a.bind(29), b.bind(29)
    torch.manual_seed(1)
    la = a(h, targets, table)
    torch.manual_seed(1)
    lb = b(h, targets, table)
    torch.testing.assert_close(la, lb)
    assert math.isfinite(la.item())


def test_popularity_logq_correction_lowers_popular_candidates():
    loss = SampledSoftmax(num_negatives=1, distribution="popularity", logq_correction=True)
    loss.bind(3, torch.tensor([0, 97, 1, 1]))  # probs ~ [0, .98, .02, .02]
    log_kq = torch.log(loss.probs * 1)
    assert log_kq[1] > log_kq[2]  # popular items get the larger subtraction
    unbound = SampledSoftmax(distribution="popularity")
    unbound.bind(3, None)  # a model rebuilt for inference: no counts, no sampling
    with pytest.raises(RuntimeError, match="item_counts"):
        unbound(torch.randn(1, 2), torch.tensor([1]), torch.randn(4, 2))
