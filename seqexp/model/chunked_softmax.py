"""Exact full-softmax cross-entropy whose (P, N + 1) logit matrix is never held whole.

The log-sum-exp runs over item chunks with a streaming max and sum (the "online softmax" of Milakov and
Gimelshein, "Online normalizer calculation for softmax", 2018, as used by memory-efficient cross-entropy kernels);
backward recomputes each chunk's logits and softmax from the saved log-sum-exp and accumulates grad_h (P, D) and
that chunk's rows of grad_item_table. Peak extra memory is O(P * chunk_size) instead of O(P * (N + 1)).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def _chunk_logits(h: Tensor, table: Tensor, allowed: Tensor, start: int, end: int) -> Tensor:
    """(P, end - start) float32 logits of one item chunk; columns that may not be predicted are -inf."""
    logits = (h @ table[start:end].T).float()  # (P, C)
    return logits.masked_fill(~allowed[None, start:end], float("-inf"))


class ChunkedCrossEntropy(torch.autograd.Function):
    """mean_p [logsumexp_j(h_p . E_j over allowed j) - h_p . E_{t_p}], computed chunk by chunk."""

    @staticmethod
    def forward(ctx: Any, h: Tensor, table: Tensor, targets: Tensor, allowed: Tensor, chunk_size: int) -> Tensor:
        n_rows, n_pos = table.shape[0], h.shape[0]
        run_max = torch.full((n_pos,), float("-inf"), device=h.device)  # (P,)
        run_sum = torch.zeros(n_pos, device=h.device)  # (P,) sum of exp(logit - run_max)
        target_logit = torch.full((n_pos,), float("-inf"), device=h.device)  # (P,)
        for start in range(0, n_rows, chunk_size):
            end = min(start + chunk_size, n_rows)
            logits = _chunk_logits(h, table, allowed, start, end)  # (P, C)
            new_max = torch.maximum(run_max, logits.max(dim=1).values)
            shift = torch.where(torch.isinf(new_max), torch.zeros_like(new_max), new_max)  # no (-inf) - (-inf)
            run_sum = run_sum * torch.exp(run_max - shift) + torch.exp(logits - shift[:, None]).sum(dim=1)
            run_max = new_max
            here = (targets >= start) & (targets < end)  # (P,) rows whose target is in this chunk
            column = (targets - start).clamp(0, end - start - 1)[:, None]  # (P, 1)
            target_logit = torch.where(here, logits.gather(1, column)[:, 0], target_logit)
        lse = torch.where(torch.isinf(run_max), run_max, run_max + torch.log(run_sum))  # (P,)
        ctx.save_for_backward(h, table, targets, allowed, lse)
        ctx.chunk_size = chunk_size
        return (lse - target_logit).mean()

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        h, table, targets, allowed, lse = ctx.saved_tensors
        n_rows, n_pos = table.shape[0], h.shape[0]
        scale = grad_out.float() / n_pos
        grad_h = torch.zeros(h.shape, dtype=torch.float32, device=h.device)  # (P, D)
        grad_table = torch.zeros_like(table) if ctx.needs_input_grad[1] else None  # (N + 1, D)
        rows = torch.arange(n_pos, device=h.device)
        for start in range(0, n_rows, ctx.chunk_size):
            end = min(start + ctx.chunk_size, n_rows)
            probs = torch.exp(_chunk_logits(h, table, allowed, start, end) - lse[:, None])  # (P, C) softmax
            here = (targets >= start) & (targets < end)
            probs[rows[here], targets[here] - start] -= 1.0  # d(lse - target_logit) / d logit
            probs = (probs * scale).to(h.dtype)
            grad_h += (probs @ table[start:end]).float()  # (P, D)
            if grad_table is not None:
                grad_table[start:end] = probs.T @ h  # (C, D)
        return grad_h.to(h.dtype), grad_table, None, None, None


def chunked_cross_entropy(h: Tensor, table: Tensor, targets: Tensor, allowed: Tensor, chunk_size: int) -> Tensor:
    """h (P, D), table (N + 1, D), targets (P,), allowed (N + 1,) bool -> mean cross-entropy (float32 scalar).

    Under autocast the matmuls run in the autocast dtype (as `h @ table.T` would), the log-sum-exp in float32."""
    device_type = h.device.type
    if torch.is_autocast_enabled(device_type):
        dtype = torch.get_autocast_dtype(device_type)
        h, table = h.to(dtype), table.to(dtype)
    with torch.autocast(device_type, enabled=False):
        return ChunkedCrossEntropy.apply(h, table, targets, allowed, chunk_size)
