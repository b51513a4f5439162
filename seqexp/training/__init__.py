"""Training: the epoch loop on Accelerate (loop.py), checkpoints, multi-process set-up."""
