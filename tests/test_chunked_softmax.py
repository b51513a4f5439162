"""ChunkedFullSoftmax: the same loss and gradients as FullSoftmax, with the logits computed chunk by chunk."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

import seqexp.model.chunked_softmax as chunked_module
from conftest import CONF_DIR
from seqexp.errors import ConfigError
from seqexp.model.losses import ChunkedFullSoftmax, FullSoftmax

N_ROWS = 23  # N + 1: item table rows including padding


def _inputs(dtype: torch.dtype, seed: int, with_candidates: bool):
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(9, 6, generator=gen, dtype=dtype).requires_grad_()
    table = torch.randn(N_ROWS, 6, generator=gen, dtype=dtype).requires_grad_()
    candidates = None
    if with_candidates:
        candidates = torch.rand(N_ROWS, generator=gen) < 0.6
        candidates[[1, 2, 5, 22]] = True  # the targets below must be predictable
    targets = torch.tensor([1, 2, 5, 22, 1, 5, 2, 22, 22])
    return h, table, targets, candidates


def plain_cross_entropy(h, targets, table, candidates=None):
    """The textbook full softmax: every logit held at once (the reference both fast paths are checked against)."""
    logits = h @ table.T  # (P, N + 1)
    logits[:, 0] = float("-inf")  # never predict padding
    if candidates is not None:
        logits = logits.masked_fill(~candidates[None, :], float("-inf"))
    return torch.nn.functional.cross_entropy(logits.float(), targets)


def _loss_and_grads(loss_fn, h, table, targets, candidates):
    loss = loss_fn(h, targets, table, candidates)
    grad_h, grad_table = torch.autograd.grad(loss, (h, table))
    return loss, grad_h, grad_table


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("chunk_size", [1, 4, 7, N_ROWS, 1000])  # 4 and 7 do not divide 23; 1000 > N + 1
@pytest.mark.parametrize("with_candidates", [False, True])
def test_chunked_equals_full_softmax_loss_and_gradients(dtype, chunk_size, with_candidates):
    h, table, targets, candidates = _inputs(dtype, seed=chunk_size, with_candidates=with_candidates)
    expected = _loss_and_grads(plain_cross_entropy, h, table, targets, candidates)
    got = _loss_and_grads(ChunkedFullSoftmax(chunk_size), h, table, targets, candidates)
    assert_same_loss_and_gradients(got, expected, candidates, atol=1e-5)


def assert_same_loss_and_gradients(got, expected, candidates, atol: float) -> None:
    """(loss, grad_h, grad_table) equal to the plain loss's; no gradient for padding or a non-candidate item."""
    for e, g in zip(expected, got, strict=True):
        assert e.dtype == g.dtype and e.shape == g.shape
        torch.testing.assert_close(g, e, rtol=1e-5, atol=atol)
    assert got[2][0].abs().max() == 0  # padding row: never a candidate, no gradient
    if candidates is not None:
        assert got[2][~candidates].abs().max() == 0  # nor a non-candidate


def test_chunked_never_materialises_the_whole_logit_matrix(monkeypatch):
    """Every matmul the loss runs covers at most `chunk_size` items."""
    widths = []
    real = chunked_module._chunk_logits

    def spy(h, table, allowed, start, end):
        out = real(h, table, allowed, start, end)
        widths.append(out.shape[1])
        return out

    monkeypatch.setattr(chunked_module, "_chunk_logits", spy)
    h, table, targets, _ = _inputs(torch.float32, seed=0, with_candidates=False)
    _loss_and_grads(ChunkedFullSoftmax(5), h, table, targets, None)
    assert widths == [5, 5, 5, 5, 3] * 2  # forward pass, then backward recomputes each chunk
    assert sum(widths) == 2 * N_ROWS


def test_chunked_under_bf16_autocast_runs_and_is_close():
    h, table, targets, _ = _inputs(torch.float32, seed=3, with_candidates=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, grad_h, grad_table = _loss_and_grads(ChunkedFullSoftmax(6), h, table, targets, None)
    exact = _loss_and_grads(plain_cross_entropy, h, table, targets, None)
    assert loss.dtype == torch.float32 and grad_h.dtype == torch.float32 and grad_table.dtype == torch.float32
    assert torch.isfinite(grad_h).all() and torch.isfinite(grad_table).all()
    torch.testing.assert_close(loss, exact[0], rtol=0.05, atol=0.05)  # bf16 logits: close, not equal


def test_chunk_size_is_checked_and_the_preset_builds_it():
    with pytest.raises(ConfigError, match="model.loss.chunk_size"):
        ChunkedFullSoftmax(0)
    loss = instantiate(OmegaConf.load(CONF_DIR / "model" / "loss" / "chunked.yaml"))
    assert isinstance(loss, ChunkedFullSoftmax) and loss.chunk_size >= 1


def test_chunked_and_mixed_losses_train_through_the_config(tmp_path):
    from conftest import TINY, compose_train
    from seqexp.app.train import train

    fp32 = "trainer.precision=no"  # the same exact loss in fp32; bf16 rounds the two paths' matmuls differently
    full, _ = train(compose_train(tmp_path / "full", *TINY, "model=sasrec", fp32))
    chunked, objects = train(
        compose_train(
            tmp_path / "chunked", *TINY, "model=sasrec", "+model/loss=chunked", "model.loss.chunk_size=7", fp32
        )
    )
    assert isinstance(objects["model"].loss, ChunkedFullSoftmax) and objects["model"].loss.chunk_size == 7
    assert chunked.keys() == full.keys()
    for key in full:  # the same exact loss: identical metrics here; 0.02 < one user of 30 changing rank
        assert chunked[key] == pytest.approx(full[key], abs=0.02), key
    mixed, objects = train(
        compose_train(tmp_path / "mixed", *TINY, "model=sasrec", "+model/loss=mixed", "model.loss.num_negatives=5")
    )
    assert objects["model"].loss.in_batch and objects["model"].loss.num_negatives == 5
    accuracy = {k: v for k, v in mixed.items() if k.split("/")[1].split("@")[0] in ("hr", "ndcg", "mrr", "coverage")}
    assert accuracy and all(0.0 <= v <= 1.0 for v in accuracy.values())


def test_the_cut_cross_entropy_adapter_gives_the_full_softmax(monkeypatch):
    """The optional GPU path: the adapter hands cut-cross-entropy the classifier without the padding row and the
    targets shifted by one, so the loss equals FullSoftmax's (checked with a stand-in for the package's function,
    which needs CUDA); without the package it is one ConfigError saying what to install or use."""
    import sys
    import types

    import torch.nn.functional as F

    from seqexp.errors import ConfigError
    from seqexp.model.losses import CutCrossEntropy

    torch.manual_seed(0)
    h, table, targets = torch.randn(6, 8), torch.randn(12, 8), torch.randint(1, 12, (6,))
    monkeypatch.setitem(sys.modules, "cut_cross_entropy", None)  # not installed
    with pytest.raises(ConfigError, match=r"pip install cut-cross-entropy.*\+model/loss=chunked"):
        CutCrossEntropy()(h, targets, table)
    stand_in = types.ModuleType("cut_cross_entropy")
    stand_in.linear_cross_entropy = lambda e, c, t, impl, reduction: F.cross_entropy(e @ c.T, t, reduction=reduction)
    monkeypatch.setitem(sys.modules, "cut_cross_entropy", stand_in)
    assert CutCrossEntropy()(h, targets, table).item() == pytest.approx(FullSoftmax()(h, targets, table).item(), 1e-6)
    with pytest.raises(ConfigError, match="cannot leave items out"):
        CutCrossEntropy()(h, targets, table, torch.ones(12, dtype=torch.bool))
