"""Training: the epoch loop on Accelerate (loop.py), checkpoints, multi-process set-up."""

from seqexp.training.accelerator import make_accelerator
from seqexp.training.loop import FitHooks, fit
from seqexp.training.state import FitResult, LoopState

__all__ = ["FitHooks", "FitResult", "LoopState", "fit", "make_accelerator"]
