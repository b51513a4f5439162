"""Masked-item objective and the sampled softmax."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seqexp.errors import ConfigError
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


def test_rows_with_nothing_drawn_carry_no_loss_when_mask_last_if_none_is_off():
    windows = torch.tensor([[0, 0, 0, 0, 0, 0, 7, 8, 9]] * 2000)  # 3 real events: P(nothing drawn) = 0.8^3 = 0.512
    gen = torch.Generator().manual_seed(0)
    inputs, targets = MaskedItemObjective(0.2, 0.0, mask_last_if_none=False).training_pair(windows, MASK, gen)
    rows_with_loss = (targets > 0).any(dim=1).float().mean().item()
    assert abs(rows_with_loss - (1 - 0.8**3)) < 0.03
    assert torch.equal(inputs == MASK, targets > 0)  # still only masked events are targets
    # the default fills those rows with their last event
    _, targets = MaskedItemObjective(0.2, 0.0).training_pair(windows, MASK, torch.Generator().manual_seed(0))
    assert (targets > 0).any(dim=1).all()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"last_item_prob": 1.5}, r"last_item_prob=1.5 must be a number in \[0, 1\]"),
        ({"last_item_prob": None}, r"last_item_prob=None must be a number"),
        ({"last_item_prob": True}, r"last_item_prob=True must be a number"),  # not read as 1.0
        ({"mask_prob": "0.5abc"}, r"mask_prob='0.5abc' must be a number"),
        ({"mask_prob": 1.0}, r"mask_prob=1.0 must be a number in \(0, 1\)"),
        ({"mask_prob": 1.5}, r"mask_prob=1.5 must be a number in \(0, 1\)"),
        ({"mask_last_if_none": "no"}, r"mask_last_if_none='no' must be true or false"),  # "no" is truthy
        ({"mask_last_if_none": 2}, r"mask_last_if_none=2 must be true or false"),
    ],
)
def test_masking_settings_of_the_wrong_type_or_range_name_the_key(settings, message):
    with pytest.raises(ConfigError, match=rf"model\.objective\.{message}"):
        MaskedItemObjective(**settings)


def test_last_item_rows_mask_only_the_last_event():
    windows = torch.tensor([[0, 1, 2, 3, 4]] * 50)
    inputs, targets = MaskedItemObjective(0.2, last_item_prob=1.0).training_pair(windows, MASK)
    assert (inputs[:, -1] == MASK).all() and (inputs[:, :-1] != MASK).all()
    assert (targets[:, -1] == 4).all() and (targets[:, :-1] == 0).all()


def test_prediction_inputs():
    history = torch.tensor([[0, 0, 7, 8], [1, 2, 3, 4]])
    assert MaskedItemObjective().prediction_inputs(history, MASK).tolist() == [[0, 7, 8, MASK], [2, 3, 4, MASK]]
    assert torch.equal(NextItemObjective().prediction_inputs(history, MASK), history)
    with pytest.raises(ConfigError, match="mask_prob"):
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


def _row_losses(logit_rows: list[list[torch.Tensor]]) -> torch.Tensor:
    """Mean over rows of -log softmax(row)[0]: the target is each row's first logit."""
    return torch.stack([-torch.log_softmax(torch.stack(row), dim=0)[0] for row in logit_rows]).mean()


@pytest.mark.parametrize("logq", [True, False])
def test_in_batch_only_is_a_softmax_over_the_target_and_the_other_rows_targets(logq):
    h, table = torch.randn(4, 8, dtype=torch.float64), torch.randn(10, 8, dtype=torch.float64)
    targets = torch.tensor([3, 7, 1, 9])  # distinct: every count is 1, so log(K_b q_b) = log 1 = 0
    loss = SampledSoftmax(num_negatives=0, logq_correction=logq, in_batch=True)
    loss.bind(9)
    scores = h @ table.T
    rows = [[scores[i, targets[i]]] + [scores[i, targets[j]] for j in range(4) if j != i] for i in range(4)]
    torch.testing.assert_close(loss(h, targets, table), _row_losses(rows).float())


def _mixed_reference(h, targets, table, negatives, k_q, logq):
    """Every one of the P in-batch columns and K sampled columns spelt out; each logit lowered by log(K q + c_b)."""
    scores = h @ table.T
    count = torch.bincount(targets, minlength=table.shape[0]).double()  # c_b
    shift = torch.log(k_q.double() + count) if logq else torch.zeros(table.shape[0], dtype=torch.float64)
    rows = []
    for i, t in enumerate(targets.tolist()):
        row = [scores[i, t] - shift[t]]
        row += [scores[i, j] - shift[j] for j in targets.tolist() + negatives.tolist() if j != t]  # hits dropped
        rows.append(row)
    return _row_losses(rows)


@pytest.mark.parametrize("logq", [True, False])
@pytest.mark.parametrize("num_negatives", [0, 6])
def test_in_batch_with_repeated_targets_and_uniform_negatives_matches_the_spelt_out_softmax(logq, num_negatives):
    torch.manual_seed(5)
    h, table = torch.randn(7, 8, dtype=torch.float64), torch.randn(12, 8, dtype=torch.float64)
    targets = torch.tensor([3, 7, 3, 11, 7, 3, 2])  # repeated targets: accidental hits between rows
    loss = SampledSoftmax(num_negatives=num_negatives, logq_correction=logq, in_batch=True)
    loss.bind(11)
    torch.manual_seed(2)
    got = loss(h, targets, table)
    torch.manual_seed(2)
    negatives = torch.multinomial(loss.probs, num_negatives, replacement=True) if num_negatives else targets[:0]
    expected = _mixed_reference(h, targets, table, negatives, loss.probs * num_negatives, logq)
    torch.testing.assert_close(got, expected.float())


def test_logq_lowers_each_sampled_logit_by_exactly_log_k_q():
    h, table, targets = (
        torch.randn(3, 4, dtype=torch.float64),
        torch.randn(6, 4, dtype=torch.float64),
        torch.tensor([1, 4, 5]),
    )
    loss = SampledSoftmax(num_negatives=4, distribution="popularity", logq_correction=True)
    loss.bind(5, torch.tensor([0, 9, 0, 3, 1, 0]))
    torch.manual_seed(7)
    got = loss(h, targets, table)
    torch.manual_seed(7)
    negatives = torch.multinomial(loss.probs, 4, replacement=True)
    log_kq = torch.log(4 * loss.probs.double())
    scores = h @ table.T
    rows = [
        [scores[i, t] - log_kq[t]] + [scores[i, j] - log_kq[j] for j in negatives.tolist() if j != t]
        for i, t in enumerate(targets.tolist())
    ]
    torch.testing.assert_close(got, _row_losses(rows).float())


def test_in_batch_gradient_reaches_only_gathered_rows_and_options_are_checked():
    h, table = torch.randn(3, 4), torch.randn(8, 4, requires_grad=True)
    loss = SampledSoftmax(num_negatives=0, in_batch=True)
    loss.bind(7)
    loss(h, torch.tensor([2, 5, 5]), table).backward()
    touched = table.grad.abs().sum(dim=1) > 0
    assert touched.nonzero().flatten().tolist() == [2, 5]
    with pytest.raises(ConfigError, match="model.loss.num_negatives=0"):
        SampledSoftmax(num_negatives=0)  # no negatives at all
    with pytest.raises(ConfigError, match="model.loss.num_negatives=-1"):
        SampledSoftmax(num_negatives=-1, in_batch=True)


def test_per_position_negatives_give_each_row_its_own_softmax():
    """per_position=True: row p's loss is a softmax over [its target, its own K draws] (hand-computed here with
    the same generator state), accidental hits masked, logQ shifting each logit by log(K q)."""
    from seqexp.model.losses import SampledSoftmax

    torch.manual_seed(0)
    n_items, d, k = 9, 4, 5
    table = torch.randn(n_items + 1, d)
    h, targets = torch.randn(3, d), torch.tensor([1, 4, 7])
    loss = SampledSoftmax(num_negatives=k, logq_correction=True, per_position=True)
    loss.bind(n_items)
    state = torch.get_rng_state()
    got = loss(h, targets, table)
    torch.set_rng_state(state)
    draws = torch.multinomial(loss.probs, 3 * k, replacement=True).view(3, k)
    log_kq = torch.log(loss.probs * k)
    expected = []
    for p in range(3):
        logits = [h[p] @ table[targets[p]] - log_kq[targets[p]]]
        logits += [h[p] @ table[j] - log_kq[j] for j in draws[p] if j != targets[p]]
        expected.append(-torch.log_softmax(torch.stack(logits), dim=0)[0])
    assert got.item() == pytest.approx(torch.stack(expected).mean().item(), abs=1e-5)
    with pytest.raises(ConfigError, match="per_position=true"):
        SampledSoftmax(num_negatives=5, in_batch=True, per_position=True)


def test_more_sampled_negatives_than_items_is_a_warning_naming_the_key(caplog):
    counts = torch.tensor([0, 3, 1, 2, 5])  # 4 items
    with caplog.at_level("WARNING", logger="seqexp.model.losses"):
        SampledSoftmax(num_negatives=3).bind(4, counts)
    assert not caplog.records  # fewer negatives than items: silent
    with caplog.at_level("WARNING", logger="seqexp.model.losses"):
        SampledSoftmax(num_negatives=100).bind(4, counts)
        SampledSoftmax(num_negatives=100).bind(4, None)  # rebuilt to serve: nothing is sampled, nothing to say
    (record,) = caplog.records
    assert "model.loss.num_negatives=100" in record.message and "(4)" in record.message
    assert "full softmax" in record.message and "below 4" in record.message
