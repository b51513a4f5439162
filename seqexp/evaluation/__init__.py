"""Evaluation under one protocol: full-ranking metrics, the evaluate loop (sharded under DDP), baselines."""

from seqexp.evaluation.protocol import EvalProtocol, EvalResult, evaluate, evaluate_sharded

__all__ = ["EvalProtocol", "EvalResult", "evaluate", "evaluate_sharded"]
