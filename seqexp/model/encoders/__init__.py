"""Sequence encoders: (B, L, D) embeddings -> (B, L, D) hidden states. One file per family."""

from seqexp.model.encoders.base import SequenceEncoder

__all__ = ["SequenceEncoder"]
