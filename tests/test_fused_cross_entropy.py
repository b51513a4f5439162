"""FullSoftmax computes the textbook cross-entropy and its gradients chunk by chunk of positions."""

from __future__ import annotations

import pytest
import torch
from test_chunked_softmax import (
    N_ROWS,
    _inputs,
    _loss_and_grads,
    assert_same_loss_and_gradients,
    plain_cross_entropy,
)

import seqexp.model.fused_cross_entropy as fused
from seqexp.model.losses import FullSoftmax


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("rows", [1, 2, 4, 9, 1000])  # 2 and 4 do not divide the 9 positions; 1000 > 9
@pytest.mark.parametrize("with_candidates", [False, True])
def test_full_softmax_equals_the_plain_loss_and_gradients(monkeypatch, dtype, rows, with_candidates):
    monkeypatch.setattr(fused, "CPU_CHUNK_ELEMENTS", rows * N_ROWS)  # chunks of `rows` positions
    h, table, targets, candidates = _inputs(dtype, seed=rows, with_candidates=with_candidates)
    expected = _loss_and_grads(plain_cross_entropy, h, table, targets, candidates)
    got = _loss_and_grads(FullSoftmax(), h, table, targets, candidates)
    assert_same_loss_and_gradients(got, expected, candidates, atol=1e-6)


def test_chunks_cover_every_position_once(monkeypatch):
    """Each chunk of the forward pass (one log-sum-exp each) holds at most `rows` positions, and together they
    cover all P once."""
    monkeypatch.setattr(fused, "CPU_CHUNK_ELEMENTS", 4 * N_ROWS)
    assert fused.rows_per_chunk(N_ROWS, torch.device("cpu")) == 4
    assert fused.rows_per_chunk(10**9, torch.device("cpu")) == 1  # a catalogue wider than the budget: one row
    heights = []
    real_logsumexp = torch.logsumexp

    def spy(x, dim):
        heights.append(x.shape[0])
        return real_logsumexp(x, dim)

    monkeypatch.setattr(fused.torch, "logsumexp", spy)
    h, table, targets, _ = _inputs(torch.float32, seed=0, with_candidates=False)
    _loss_and_grads(FullSoftmax(), h, table, targets, None)
    assert heights == [4, 4, 1]


def test_gradients_scale_with_the_upstream_gradient_and_frozen_inputs_get_none():
    h, table, targets, _ = _inputs(torch.float32, seed=5, with_candidates=False)
    loss = FullSoftmax()(h, targets, table)
    (3.0 * loss).backward()
    grad_h, grad_table = h.grad.clone(), table.grad.clone()
    h.grad = table.grad = None
    (3.0 * plain_cross_entropy(h, targets, table)).backward()
    torch.testing.assert_close(grad_h, h.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad_table, table.grad, rtol=1e-5, atol=1e-6)
    frozen = table.detach()  # e.g. pretrained.freeze=true: only h needs a gradient
    (only_h,) = torch.autograd.grad(FullSoftmax()(h, targets, frozen), (h,))
    torch.testing.assert_close(only_h, grad_h / 3.0, rtol=1e-5, atol=1e-6)


def test_without_grad_mode_only_the_loss_is_computed():
    h, table, targets, _ = _inputs(torch.float32, seed=6, with_candidates=False)
    with torch.no_grad():
        loss = FullSoftmax()(h, targets, table)
    assert not loss.requires_grad
    torch.testing.assert_close(loss, plain_cross_entropy(h, targets, table).detach())


def test_under_bf16_autocast_it_runs_and_is_close():
    h, table, targets, _ = _inputs(torch.float32, seed=3, with_candidates=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, grad_h, grad_table = _loss_and_grads(FullSoftmax(), h, table, targets, None)
    exact = _loss_and_grads(plain_cross_entropy, h, table, targets, None)
    assert loss.dtype == torch.float32 and grad_h.dtype == torch.float32 and grad_table.dtype == torch.float32
    torch.testing.assert_close(loss, exact[0], rtol=0.05, atol=0.05)  # bf16 logits: close, not equal
    torch.testing.assert_close(grad_h, exact[1], rtol=0.05, atol=0.02)
    torch.testing.assert_close(grad_table, exact[2], rtol=0.05, atol=0.02)


def test_edge_cases_match_the_plain_loss_or_fail_clearly():
    h, table, targets, _ = _inputs(torch.float32, seed=7, with_candidates=False)
    # no position at all: a NaN loss, as F.cross_entropy gives, and no gradient (not NaN) in the table
    empty = FullSoftmax()(h[:0], targets[:0], table)
    (grad_table,) = torch.autograd.grad(empty, (table,))
    assert torch.isnan(empty) and torch.equal(grad_table, torch.zeros_like(table))
    # a target the candidates mask blocks: an infinite loss on both paths, and the same gradients
    candidates = torch.ones(N_ROWS, dtype=torch.bool)
    candidates[targets[0]] = False
    got = _loss_and_grads(FullSoftmax(), h, table, targets, candidates)
    want = _loss_and_grads(plain_cross_entropy, h, table, targets, candidates)
    assert torch.isinf(got[0]) and torch.isinf(want[0])
    torch.testing.assert_close(got[1:], want[1:], rtol=1e-5, atol=1e-6)
    # a second derivative is an error, never a silent zero
    (grad_h,) = torch.autograd.grad(FullSoftmax()(h, targets, table), (h,), create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(grad_h.sum(), (h,))


def test_under_torch_compile_a_changing_number_of_positions_compiles_once():
    """trainer.compile: the loss runs eagerly inside the compiled forward, so P changing every batch does not
    recompile it (before, one graph per P until dynamo's recompile limit)."""
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    gen = torch.Generator().manual_seed(8)
    table = torch.randn(N_ROWS, 6, generator=gen).requires_grad_()
    loss_fn = FullSoftmax()

    def step(h, targets):
        return loss_fn(torch.tanh(h), targets, table)

    compiled = torch.compile(step, backend="eager", dynamic=True)
    for n_pos in range(3, 12):
        h = torch.randn(n_pos, 6, generator=gen).requires_grad_()
        targets = torch.randint(1, N_ROWS, (n_pos,), generator=gen)
        got = torch.autograd.grad(compiled(h, targets), (h, table))
        want = torch.autograd.grad(plain_cross_entropy(torch.tanh(h), targets, table), (h, table))
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] <= 2
    torch._dynamo.reset()
