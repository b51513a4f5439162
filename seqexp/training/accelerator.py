"""The HF Accelerate object a run trains with: device placement, mixed precision, DDP, torch.compile."""

from __future__ import annotations

import torch
from accelerate import Accelerator
from accelerate.utils import TorchDynamoPlugin

from seqexp.errors import ConfigError
from seqexp.training.settings import DEVICES, PRECISIONS


def make_accelerator(device: str = "auto", precision: str = "no", compile: bool = False) -> Accelerator:
    """Accelerate places the model, runs autocast for `precision` and, with `compile`, wraps the training
    forward in `torch.compile` (inductor, dynamic shapes: padding trimming changes the length per batch)."""
    if device not in DEVICES:
        raise ConfigError(f"trainer.device={device!r} is not one of {list(DEVICES)}")
    if precision not in PRECISIONS:
        raise ConfigError(f"trainer.precision={precision!r} is not one of {list(PRECISIONS)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device=cuda but no CUDA device is visible; use trainer.device=auto or cpu")
    use_cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    if precision == "fp16" and use_cpu:
        raise ConfigError(
            "trainer.precision=fp16 needs a CUDA device, and this run is on the CPU (it would silently run in fp32); "
            "use trainer.precision=bf16 (this CPU path supports it) or trainer.precision=no"
        )
    dynamo = TorchDynamoPlugin(backend="inductor", dynamic=True) if compile else None
    return Accelerator(cpu=use_cpu, mixed_precision=str(precision), dynamo_plugin=dynamo)
