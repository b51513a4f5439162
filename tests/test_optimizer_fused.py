"""build_optimizer: the card's torch optimiser in its fused form when torch has one, the same update either way."""

from __future__ import annotations

import functools

import torch

from seqexp.model.sparse_items import SparseItemOptimizer
from seqexp.training.optimizer import build_optimizer, can_fuse

CPU = torch.device("cpu")


def _params(seed: int) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(50, 8, generator=gen)), torch.nn.Parameter(torch.randn(8, generator=gen))]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    return params


def test_adam_and_adamw_are_built_fused_and_take_the_same_steps():
    for cls in (torch.optim.Adam, torch.optim.AdamW):
        factory = functools.partial(cls, lr=1e-2, weight_decay=0.1)
        fused, plain = _params(0), _params(0)
        before = [p.detach().clone() for p in fused]
        fused_opt = build_optimizer(factory, fused, CPU)
        plain_opt = factory(plain)
        assert fused_opt.defaults["fused"] is True and not plain_opt.defaults["fused"]
        for _ in range(3):
            fused_opt.step()
            plain_opt.step()
        for f, p, b in zip(fused, plain, before, strict=True):
            torch.testing.assert_close(f, p, rtol=1e-6, atol=1e-6)
            assert not torch.equal(f, b)  # the steps moved it


def test_a_card_that_chooses_foreach_or_fused_keeps_its_choice():
    for choice in ({"foreach": False}, {"foreach": True}, {"fused": False}):
        opt = build_optimizer(functools.partial(torch.optim.Adam, lr=1e-3, **choice), _params(1), CPU)
        assert not opt.defaults["fused"], choice
        assert all(opt.defaults[k] == v for k, v in choice.items())


def test_optimisers_without_the_option_and_other_factories_are_built_as_written():
    rmsprop = build_optimizer(functools.partial(torch.optim.RMSprop, lr=1e-3), _params(2), CPU)
    assert type(rmsprop) is torch.optim.RMSprop and "fused" not in rmsprop.defaults
    assert not can_fuse(functools.partial(SparseItemOptimizer, lr=1e-3), _params(2), CPU)  # seqexp's own class
    assert not can_fuse(lambda params: torch.optim.Adam(params), _params(2), CPU)  # not a partial: left alone
    assert not can_fuse(functools.partial(torch.optim.Adam, lr=1e-3), _params(2), torch.device("meta"))
    built = build_optimizer(lambda params: torch.optim.SGD(params, lr=0.5), _params(2), CPU)
    assert type(built) is torch.optim.SGD and not built.defaults["fused"]


def test_the_sparse_item_table_is_never_given_to_a_fused_kernel():
    """model.sparse_items=true with SGD or Adagrad: their fused kernels refuse sparse gradients at the first step."""
    from seqexp.model.sparse_items import SPARSE_TAG

    for cls in (torch.optim.SGD, torch.optim.Adagrad):
        table = torch.nn.Embedding(30, 4, sparse=True)
        setattr(table.weight, SPARSE_TAG, True)  # what seqexp.model.sparse_items does to the item table
        opt = build_optimizer(functools.partial(cls, lr=0.1), table.parameters(), CPU)
        assert not opt.defaults["fused"], cls
        before = table.weight.detach().clone()
        table(torch.tensor([[1, 2, 3]])).sum().backward()
        assert table.weight.grad.is_sparse
        opt.step()  # the plain kernel takes the sparse gradient
        moved = (table.weight.detach() != before).any(dim=1)
        assert moved[1:4].all() and not moved[4:].any() and not moved[0]  # only the rows the step touched
