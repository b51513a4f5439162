"""Sparse item-table gradients: the same gradient as the dense table, only the touched rows, a row-wise optimiser."""

from __future__ import annotations

import copy

import pytest
import torch

from seqexp.errors import ConfigError
from seqexp.model.encoders.rnn import LSTMEncoder
from seqexp.model.losses import FullSoftmax, SampledSoftmax
from seqexp.model.objectives import NextItemObjective
from seqexp.model.recommender import SequenceRecommender
from seqexp.model.sparse_items import (
    SparseItemOptimizer,
    clip_grad_norm_,
    clip_gradients,
    enable_sparse_items,
    loss_table,
)

N_ITEMS = 40
INPUTS = torch.tensor([[0, 3, 5, 7], [2, 4, 6, 8]])  # (B, L)
TARGETS = torch.tensor([[0, 5, 7, 9], [4, 6, 8, 10]])  # (B, L), 0 = no loss


def _model(in_batch: bool = False) -> SequenceRecommender:
    torch.manual_seed(0)
    loss = SampledSoftmax(num_negatives=6, in_batch=in_batch)
    return SequenceRecommender(N_ITEMS, LSTMEncoder(8, 1), NextItemObjective(), loss=loss)


def _loss(model: SequenceRecommender) -> torch.Tensor:
    """The recommender's training loss, with the table that `loss_table` hands to the loss."""
    h = model.encode(INPUTS)  # (B, L, D)
    selected = TARGETS > 0
    torch.manual_seed(1)  # the same negatives in every call
    return model.loss(h[selected], TARGETS[selected], loss_table(model))


@pytest.mark.parametrize("in_batch", [False, True])
def test_sparse_gradient_equals_the_dense_one_and_covers_only_touched_rows(in_batch):
    dense, sparse = _model(in_batch), _model(in_batch)
    enable_sparse_items(sparse)
    _loss(dense).backward()
    _loss(sparse).backward()
    grad = sparse.item_embedding.weight.grad
    assert grad.is_sparse and not dense.item_embedding.weight.grad.is_sparse
    torch.testing.assert_close(grad.to_dense(), dense.item_embedding.weight.grad)
    torch.manual_seed(1)
    negatives = torch.multinomial(sparse.loss.probs, 6, replacement=True)
    touched = set(INPUTS.flatten().tolist()) | set(TARGETS.flatten().tolist()) | set(negatives.tolist())
    assert set(grad.coalesce().indices()[0].tolist()) <= touched
    assert N_ITEMS + 1 not in set(grad.coalesce().indices()[0].tolist())  # [MASK] row never gathered


def test_sparse_items_need_a_loss_that_gathers_rows():
    model = SequenceRecommender(N_ITEMS, LSTMEncoder(8, 1), NextItemObjective(), loss=FullSoftmax())
    with pytest.raises(ConfigError, match="model.sparse_items=true needs a loss"):
        enable_sparse_items(model)
    with pytest.raises(ConfigError, match="found no sparse item table"):
        SparseItemOptimizer(model.parameters())


def test_first_step_equals_dense_adam_and_untouched_rows_stay_put():
    dense, sparse = _model(), _model()
    enable_sparse_items(sparse)
    dense_opt = torch.optim.Adam(dense.parameters(), lr=0.01)
    sparse_opt = SparseItemOptimizer(sparse.parameters(), lr=0.01)
    assert [p for g in sparse_opt.sparse_optimizer.param_groups for p in g["params"]] == [sparse.item_embedding.weight]
    assert len(sparse_opt.param_groups) == 2 and sparse_opt.param_groups[0]["lr"] == 0.01
    before = sparse.item_embedding.weight.detach().clone()
    for model, opt in ((dense, dense_opt), (sparse, sparse_opt)):
        _loss(model).backward()
        opt.step()
        opt.zero_grad()
    for (name, a), b in zip(dense.named_parameters(), sparse.parameters(), strict=True):
        # Adam's first step on a zero gradient moves nothing; on touched rows SparseAdam adds eps after the bias
        # correction of sqrt(v), Adam before it: steps of lr = 1e-2 agree to 1e-4
        torch.testing.assert_close(b, a, rtol=0, atol=1e-4, msg=name)
    moved = (sparse.item_embedding.weight != before).any(dim=1)
    assert 0 < int(moved.sum()) < N_ITEMS // 2  # only the gathered rows


def test_state_dict_round_trip_and_lazy_rows():
    model = _model()
    enable_sparse_items(model)
    opt = SparseItemOptimizer(model.parameters(), lr=0.01, weight_decay=0.0)
    _loss(model).backward()
    opt.step()
    saved = copy.deepcopy(opt.state_dict())
    fresh = SparseItemOptimizer(model.parameters(), lr=0.01)
    fresh.load_state_dict(saved)
    table = model.item_embedding.weight
    torch.testing.assert_close(
        fresh.sparse_optimizer.state[table]["exp_avg"], opt.sparse_optimizer.state[table]["exp_avg"]
    )
    assert fresh.param_groups[1] is fresh.dense_optimizer.param_groups[0]


def test_clip_grad_norm_with_a_sparse_gradient_equals_the_dense_clip():
    dense, sparse = _model(), _model()
    enable_sparse_items(sparse)
    _loss(dense).backward()
    _loss(sparse).backward()
    expected = torch.nn.utils.clip_grad_norm_(dense.parameters(), 0.05)
    got = clip_grad_norm_(sparse.parameters(), 0.05)
    torch.testing.assert_close(got, expected)
    assert expected > 0.05  # the clip did something
    for a, b in zip(dense.parameters(), sparse.parameters(), strict=True):
        torch.testing.assert_close(b.grad.to_dense() if b.grad.is_sparse else b.grad, a.grad)


def test_a_training_step_through_accelerate():
    from accelerate import Accelerator

    model = _model(in_batch=True)
    enable_sparse_items(model)
    accelerator = Accelerator(cpu=True)
    model, opt = accelerator.prepare(model, SparseItemOptimizer(model.parameters(), lr=0.01))
    before = model.item_embedding.weight.detach().clone()
    accelerator.backward(_loss(model))
    clip_gradients(accelerator, model.parameters(), 1.0)
    opt.step()
    opt.zero_grad()
    assert not torch.equal(model.item_embedding.weight, before)
