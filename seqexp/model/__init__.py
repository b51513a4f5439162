"""The model: item (+ feature) embeddings -> encoder -> tied output head; objectives, losses, item init."""

from seqexp.model.recommender import (
    SequenceRecommender,
    build_model,
    columns_to_keep,
    count_parameters,
    restore_model,
)

__all__ = ["SequenceRecommender", "build_model", "columns_to_keep", "count_parameters", "restore_model"]
