"""The optimiser a model card names (`model.optimizer`), in torch's fused implementation when it has one.

torch.optim.Adam, AdamW, SGD and Adagrad take `fused=True` on CPU and CUDA: one kernel per step over all
parameters instead of one op per tensor and update term. It is the same update (to float rounding); on this
project's 2-core CPU an Adam step over a Beauty-sized model (3.7M parameters) took 3.4 ms fused against 13.9 ms
(benchmarks/results/fused_cpu.md). A card that sets `fused` or `foreach` itself keeps its choice, and an
optimiser without the option (RMSprop, seqexp's SparseItemOptimizer, a user's class), or one given the sparse item
table (`model.sparse_items=true` with SGD or Adagrad: the fused kernels take no sparse gradient), is built as written.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any

import torch

from seqexp.model.sparse_items import SPARSE_TAG

log = logging.getLogger(__name__)

FUSED_DEVICES = ("cpu", "cuda")


def build_optimizer(
    factory: Callable[..., torch.optim.Optimizer], params: Iterable[torch.nn.Parameter], device: torch.device
) -> torch.optim.Optimizer:
    """`factory(params)`, with `fused=True` added where torch supports it for these parameters on `device`."""
    params = list(params)
    if not can_fuse(factory, params, device):
        return factory(params)
    try:
        return factory(params, fused=True)
    except (RuntimeError, ValueError) as err:  # torch refuses the combination at construction (dtype, device
        # and sparse-gradient checks run only at the first step: can_fuse keeps those cases out)
        log.info("model.optimizer: torch's fused implementation does not apply here (%s); the plain one runs", err)
        return factory(params)


def can_fuse(factory: Callable[..., Any], params: list[torch.nn.Parameter], device: torch.device) -> bool:
    """A torch.optim class (from `_partial_: true`) with a `fused` option the card leaves unset, on CPU or CUDA."""
    if not isinstance(factory, functools.partial) or factory.args:
        return False
    cls = factory.func
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and cls.__module__.startswith("torch.")):
        return False
    if "fused" not in inspect.signature(cls).parameters or {"fused", "foreach"} & set(factory.keywords):
        return False
    dense = not any(p.is_sparse or getattr(p, SPARSE_TAG, False) for p in params)  # fused kernels take no sparse grad
    return device.type in FUSED_DEVICES and dense and all(p.is_floating_point() for p in params)
