"""A model.encoder is checked on a small probe batch when it is built, before any data is trained on.

The README's contract ("Add an encoder"): `forward(x (B, L, D), padding_mask (B, L)) -> (B, L, D)` with finite values
at every position (padding included), a class attribute `causal`, and `hidden_size` = model.embedding_dim (the item
vectors take the encoder's width). Formerly a user's encoder that broke it ended in a torch traceback from deep in the
model (a mask shape, a matmul, a missing attribute), or, for a width other than model.embedding_dim, trained silently
at another size than results.json recorded. Here each is one line naming the class and what to change.
"""

from __future__ import annotations

from typing import Any

import torch

from seqexp.errors import ConfigError
from seqexp.model.encoders.base import SequenceEncoder

PROBE_LEN = 8  # positions of the probe batch (two sequences, the second left-padded)


def check_encoder_contract(encoder: Any, embedding_dim: Any) -> None:
    """ConfigError naming `encoder`'s class when it breaks the contract above. Draws nothing from the global RNG."""
    if not isinstance(encoder, SequenceEncoder):
        return  # SequenceRecommender says what to subclass
    name = f"{type(encoder).__module__}.{type(encoder).__qualname__}"
    if not isinstance(getattr(type(encoder), "causal", None), bool):
        raise ConfigError(
            f"model.encoder {name} does not say whether it is causal: set the class attribute `causal: "
            f"ClassVar[bool] = True` (position t sees only positions <= t; next-item objective) or False (masked-item)"
        )
    hidden = getattr(encoder, "hidden_size", None)
    if not isinstance(hidden, int) or hidden < 1:
        raise ConfigError(f"model.encoder {name} has hidden_size={hidden!r}: call super().__init__(hidden_size)")
    if isinstance(embedding_dim, int) and hidden != embedding_dim:
        raise ConfigError(
            f"model.embedding_dim={embedding_dim}, but {name} was built with hidden_size={hidden} and the item vectors "
            f"take the encoder's width, so results.json would record another size than trained; add `hidden_size: "
            f"${{model.embedding_dim}}` under model.encoder"
        )
    built_for = getattr(encoder, "max_len", None)  # encoders with position embeddings take at most max_len
    length = min(PROBE_LEN, built_for) if isinstance(built_for, int) and built_for >= 2 else PROBE_LEN
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, length, hidden, generator=generator)  # (B, L, D)
    mask = torch.ones(2, length, dtype=torch.bool)
    mask[1, : length // 2] = False  # left padding
    was_training = encoder.training
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            encoder.eval()
            out = encoder(x * mask[:, :, None], mask)
    except Exception as e:
        raise ConfigError(
            f"model.encoder {name} failed on a probe batch (x (2, {length}, {hidden}), padding_mask (2, "
            f"{length})): {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}; forward(x, padding_mask) "
            f"must return (B, L, D)"
        ) from None
    finally:
        encoder.train(was_training)
    shape = tuple(getattr(out, "shape", ()))
    if not isinstance(out, torch.Tensor) or shape != (2, length, hidden):
        raise ConfigError(
            f"model.encoder {name} returned {shape or type(out).__name__} for x (2, {length}, {hidden}); forward "
            f"must return one state per position, (B, L, D) = (2, {length}, {hidden})"
        )
    if not bool(torch.isfinite(out).all()):
        raise ConfigError(
            f"model.encoder {name} returned values that are not finite on a probe batch (padding positions "
            f"included); guard its divisions and logs (e.g. a mean over positions: .clamp(min=1) on the count)"
        )
