"""Sparse item-table gradients, so that a training step's cost does not grow with the catalogue.

A full softmax multiplies the whole item table at every step, so its gradient is dense by nature. A sampled
loss (SampledSoftmax, uniform / popularity / in-batch negatives) only reads the rows of the batch's targets and
negatives; with `enable_sparse_items` those rows, and the input lookups, give a sparse gradient, and
`SparseItemOptimizer` updates the item table row-wise with torch.optim.SparseAdam (the "lazy Adam" that moves
only the rows present in the gradient, as TorchRec's fused row-wise optimisers do) and every other parameter
with the configured dense optimiser. Adam's moments of rows absent from a step are not decayed that step, so the
result is close to, not equal to, dense Adam.

Config (model card or command line):

    model.sparse_items: true
    model.optimizer._target_: seqexp.model.sparse_items.SparseItemOptimizer   # lr, weight_decay, ... as before
    +model/loss=sampled   (or mixed; model/loss=... on esasrec, whose card takes its loss from that group)

Weight decay, when set, applies to the dense parameters only (SparseAdam has none).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from seqexp.errors import ConfigError

SPARSE_TAG = "_seqexp_sparse_rows"  # set on a parameter whose gradient is sparse (the item table)


def enable_sparse_items(model: Any) -> None:
    """Make a SequenceRecommender's item lookups and its loss's row gathers produce sparse gradients."""
    loss = model.loss
    if not getattr(loss, "gathers_rows", False):
        raise ConfigError(
            f"model.sparse_items=true needs a loss that reads only the rows it scores (+model/loss=sampled or "
            f"+model/loss=mixed; model/loss=... on esasrec); {type(loss).__name__} multiplies the whole item table, "
            f"so its gradient is dense"
        )
    if model.text_projection is not None:
        raise ConfigError(
            "model.sparse_items=true cannot be combined with text item vectors in side mode (model.item_init=text): "
            "the text projection touches every row; set model.sparse_items=false"
        )
    model.item_embedding.sparse = True
    setattr(model.item_embedding.weight, SPARSE_TAG, True)
    loss.sparse_rows = True


def loss_table(model: Any) -> Tensor:
    """The item table the training loss reads: the whole weight (N + 2, D) when sparse, since a slice of it would
    turn the sparse gradient dense (PyTorch cannot slice-backward a sparse tensor); otherwise item_table()."""
    if model.item_embedding.sparse:
        return model.item_embedding.weight
    return model.item_table()


class SparseItemOptimizer(torch.optim.Optimizer):
    """Two optimisers behind one: SparseAdam for the parameters tagged sparse (the item table), `dense`
    (a partial, default torch.optim.Adam) for the rest. Takes `params` like any optimiser, so it goes behind
    `model.optimizer` (`_partial_: true`) with no change to the training loop."""

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        lr: float = 1e-3,
        dense: Callable[..., torch.optim.Optimizer] | None = None,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        **dense_kwargs: Any,
    ) -> None:
        params = [p for p in params if p.requires_grad]
        sparse = [p for p in params if getattr(p, SPARSE_TAG, False)]
        rest = [p for p in params if not getattr(p, SPARSE_TAG, False)]
        if not sparse:
            raise ConfigError(
                "model.optimizer=SparseItemOptimizer found no sparse item table: set model.sparse_items=true "
                "(with +model/loss=sampled, or model/loss=sampled on esasrec), or use torch.optim.Adam"
            )
        self.sparse_optimizer = torch.optim.SparseAdam(sparse, lr=lr, betas=tuple(betas), eps=eps)
        make_dense = dense if dense is not None else torch.optim.Adam
        self.dense_optimizer = make_dense(rest, lr=lr, betas=tuple(betas), eps=eps, **dense_kwargs)
        super().__init__(params, {"lr": lr})
        # one list of the children's own group dicts: a change of lr (a scheduler) reaches both
        self.param_groups = self.sparse_optimizer.param_groups + self.dense_optimizer.param_groups

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.sparse_optimizer.step()
        self.dense_optimizer.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.sparse_optimizer.zero_grad(set_to_none)
        self.dense_optimizer.zero_grad(set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"sparse": self.sparse_optimizer.state_dict(), "dense": self.dense_optimizer.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.sparse_optimizer.load_state_dict(state_dict["sparse"])
        self.dense_optimizer.load_state_dict(state_dict["dense"])
        self.param_groups = self.sparse_optimizer.param_groups + self.dense_optimizer.param_groups


def clip_grad_norm_(parameters: Iterable[nn.Parameter], max_norm: float) -> Tensor:
    """torch.nn.utils.clip_grad_norm_ (L2) that also takes sparse gradients, which PyTorch's cannot norm."""
    params = [p for p in parameters if p.grad is not None]
    if not any(p.grad.is_sparse for p in params):
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    for p in params:
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()  # repeated rows summed: the norm of the real gradient
    norms = [(p.grad._values() if p.grad.is_sparse else p.grad).float().norm(2) for p in params]
    total = torch.stack(norms).norm(2)
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for p in params:
        p.grad.mul_(scale.to(p.grad.dtype))
    return total


def clip_gradients(accelerator: Any, parameters: Iterable[nn.Parameter], max_norm: float) -> Any:
    """The training loop's clipping: Accelerate's (unchanged) unless a gradient is sparse; then unscale the
    gradients (mixed precision) and clip with `clip_grad_norm_` above."""
    params = list(parameters)
    if not any(p.grad is not None and p.grad.is_sparse for p in params):
        return accelerator.clip_grad_norm_(params, max_norm)
    accelerator.unscale_gradients()
    return clip_grad_norm_(params, max_norm)
