"""Evaluation under one protocol: full-ranking metrics, the evaluate loop (sharded under DDP), baselines."""
