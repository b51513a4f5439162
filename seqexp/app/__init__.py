"""Entry points: `seqexp-train` (train.py, the Hydra app), `seqexp-recommend`, `seqexp-export`."""
