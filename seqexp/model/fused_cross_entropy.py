"""Exact full-softmax cross-entropy with its gradient computed in the forward pass, over chunks of positions.

The plain way (`F.cross_entropy(h @ E.T, t)`) holds the (P, N + 1) logits, their log-softmax and, in backward,
their gradient: three P x (N + 1) float32 matrices, each freshly allocated. On a CPU an allocation above glibc's
largest mmap threshold (32 MiB: 154 positions x 54,543 table rows) is a fresh mapping every time, and its first
write page-faults through every page: at 187 x 54,543 on one thread the logits matmul took 83 ms into a fresh
tensor against 54 ms into a reused one, and the log-softmax 49 ms against 16 ms (measured once, session 15).

Here the positions are taken `rows` at a time (a chunk sized to stay under that threshold): each chunk's logits,
log-sum-exp and softmax gradient `softmax - onehot(target)` are computed in one buffer, then folded straight
into grad_h (P, D) and grad_E (N + 1, D); backward only scales the saved gradients. The same three matmuls run,
the (P, N + 1) matrices are never held whole, and no log-softmax backward pass is needed: 1.4-1.9x faster than
the textbook loss on a 2-core CPU (benchmarks/results/fused_cpu.md). This is the
"fused linear cross-entropy" of Liger Kernel (Hsu et al., "Liger Kernel: Efficient Triton Kernels for LLM
Training", 2024), chunked over positions; seqexp/model/chunked_softmax.py instead chunks over items, for
catalogues too large for even one position's full row of logits.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

CPU_CHUNK_ELEMENTS = 4 * 2**20  # logits per chunk on a CPU: 16 MiB in float32, under glibc's 32 MiB mmap ceiling
DEVICE_CHUNK_ELEMENTS = 2**28  # on an accelerator (1 GiB in float32): usually the whole batch in one chunk


def rows_per_chunk(n_columns: int, device: torch.device) -> int:
    """How many positions one chunk of (rows, n_columns) logits holds on `device`."""
    budget = CPU_CHUNK_ELEMENTS if device.type == "cpu" else DEVICE_CHUNK_ELEMENTS
    return max(1, budget // max(n_columns, 1))


class FusedCrossEntropy(torch.autograd.Function):
    """mean_p [logsumexp_j(h_p . E_j over allowed j) - h_p . E_{t_p}], with its gradient taken in forward."""

    @staticmethod
    def forward(
        ctx: Any, h: Tensor, table: Tensor, targets: Tensor, blocked: Tensor | None, rows: int, need_grad: bool
    ) -> Tensor:
        n_pos = h.shape[0]
        loss_sum = torch.zeros((), dtype=torch.float32, device=h.device)
        grad_h = torch.empty_like(h) if need_grad and ctx.needs_input_grad[0] else None  # (P, D)
        grad_table = None  # (N + 1, D) float32 sum over chunks
        if need_grad and ctx.needs_input_grad[1]:
            grad_table = torch.zeros(table.shape, dtype=torch.float32, device=table.device)
        for start in range(0, n_pos, rows):
            h_chunk, t_chunk = h[start : start + rows], targets[start : start + rows]  # (c, D), (c,)
            logits = (h_chunk @ table.T).float()  # (c, N + 1)
            if blocked is None:
                logits[:, 0] = float("-inf")  # never predict padding
            else:
                logits.masked_fill_(blocked[None, :], float("-inf"))
            lse = torch.logsumexp(logits, dim=1)  # (c,)
            target_logit = logits.gather(1, t_chunk[:, None])[:, 0]  # (c,); -inf for a blocked target
            loss_sum += (lse - target_logit).sum()  # inf for a blocked target, as F.cross_entropy's
            if grad_h is None and grad_table is None:
                continue
            probs = logits.sub_(lse[:, None]).exp_()  # (c, N + 1) softmax, in the logits' buffer
            reachable = torch.isfinite(target_logit).to(probs.dtype)  # a blocked target's column has no gradient
            probs[torch.arange(len(t_chunk), device=h.device), t_chunk] -= reachable  # d(lse - target logit) / d logit
            probs = probs.to(h.dtype)
            if grad_h is not None:
                grad_h[start : start + rows] = probs @ table  # (c, D)
            if grad_table is not None:
                if probs.dtype == torch.float32:
                    grad_table.addmm_(probs.T, h_chunk)  # (N + 1, D)
                else:
                    grad_table += (probs.T @ h_chunk).float()
        ctx.save_for_backward(grad_h, grad_table)
        ctx.n_pos, ctx.table_dtype = n_pos, table.dtype
        return loss_sum / n_pos

    @staticmethod
    @once_differentiable  # the gradient is precomputed: a second derivative is an error, never silently zero
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        grad_h, grad_table = ctx.saved_tensors
        scale = grad_out.float() / max(ctx.n_pos, 1)  # P = 0: the loss is NaN (as F.cross_entropy's), no gradient
        if grad_h is not None:
            grad_h = (grad_h.float() * scale).to(grad_h.dtype)
        if grad_table is not None:
            grad_table = (grad_table * scale).to(ctx.table_dtype)
        return grad_h, grad_table, None, None, None, None


@torch.compiler.disable  # under trainer.compile: eager, not one recompile per number of positions (P varies)
def fused_cross_entropy(h: Tensor, table: Tensor, targets: Tensor, blocked: Tensor | None = None) -> Tensor:
    """h (P, D), table (N + 1, D), targets (P,) in 1..N, blocked (N + 1,) bool or None (padding only) -> the mean
    cross-entropy over the catalogue (float32 scalar). Under autocast the matmuls run in the autocast dtype (as
    `h @ table.T` would), the log-sum-exp and softmax in float32. Not twice differentiable (an error says so)."""
    device_type = h.device.type
    if torch.is_autocast_enabled(device_type):
        dtype = torch.get_autocast_dtype(device_type)
        h, table = h.to(dtype), table.to(dtype)
    rows = rows_per_chunk(table.shape[0], h.device)
    with torch.autocast(device_type, enabled=False):
        return FusedCrossEntropy.apply(h, table, targets, blocked, rows, torch.is_grad_enabled())
