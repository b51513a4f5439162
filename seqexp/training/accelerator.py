"""The HF Accelerate object a run trains with: device placement, mixed precision, DDP, torch.compile."""

from __future__ import annotations

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
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
    # Accelerate keeps one AcceleratorState per process and refuses a second precision in it: a multirun on
    # Hydra's basic launcher (trainer.precision=no,bf16) or a notebook trains several runs in one process. The
    # process group lives in PartialState, which is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(cpu=use_cpu, mixed_precision=resolve_precision(precision, use_cpu), dynamo_plugin=dynamo)


def resolve_precision(precision: str, use_cpu: bool) -> str:
    """`auto`: bf16 autocast on a CPU with native bf16 instructions (AVX512-BF16 or AMX, see native_cpu_bf16),
    where it trains every encoder to the same validation quality in less time (benchmarks/results/bf16_cpu.md);
    fp32 on other CPUs (emulated bf16 is slower) and on CUDA (not measured there yet)."""
    if precision != "auto":
        return precision
    if use_cpu and native_cpu_bf16():
        return "bf16"
    return "no"


def native_cpu_bf16() -> bool:
    """AVX512-BF16 or AMX: oneDNN's own bf16 check is true on any AVX-512 CPU, where bf16 is emulated."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
