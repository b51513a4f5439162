"""The HF Accelerate object a run trains with: device placement, mixed precision, DDP, torch.compile."""

from __future__ import annotations

import functools
import logging

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import TorchDynamoPlugin

from seqexp.errors import ConfigError
from seqexp.training.settings import DEVICES, PRECISIONS

log = logging.getLogger(__name__)


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
    if precision == "bf16" and use_cpu and not native_cpu_bf16():
        log.warning(
            "trainer.precision=bf16 on a CPU without native bf16 (AVX512-BF16 or AMX): PyTorch emulates it, which is "
            "usually slower than fp32; trainer.precision=auto picks fp32 on this CPU"
        )
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


def check_precision_runs(model: torch.nn.Module, accelerator: Accelerator) -> None:
    """Refuse, before any training, a model whose layers this machine cannot run in the run's precision (else the
    first batch dies deep inside oneDNN). Known case: PyTorch's CPU LSTM under bf16 autocast needs oneDNN's bf16
    LSTM kernel, which CPUs without AVX-512 lack ("could not create a primitive descriptor for the LSTM")."""
    if str(accelerator.mixed_precision) != "bf16" or accelerator.device.type != "cpu":
        return
    lstm = next((name for name, m in model.named_modules() if isinstance(m, torch.nn.LSTM)), None)
    if lstm is not None and not cpu_runs_bf16_lstm():
        raise ConfigError(
            f"trainer.precision=bf16: this model's LSTM ({lstm}) cannot run in bf16 on this CPU (PyTorch's CPU LSTM "
            "has no bf16 kernel without AVX-512, and this CPU has no native bf16 either); use trainer.precision=auto "
            "(fp32 on this CPU) or trainer.precision=no"
        )


@functools.cache
def cpu_runs_bf16_lstm() -> bool:
    """Whether a one-step LSTM runs under CPU bf16 autocast here (probed once per process, on a 1x1x2 input). The
    probe's weights are drawn on a forked RNG: formerly they came from the run's seeded stream on the first call
    only, so the first LSTM run of a process (every standalone run) and the later ones of an in-process sweep
    trained from different random streams, and a sweep's job gave other numbers than the same command alone."""
    with torch.random.fork_rng(devices=[]):
        probe = torch.nn.LSTM(2, 2, batch_first=True)
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            probe(torch.zeros(1, 1, 2))
    except RuntimeError:
        return False
    return True
