"""Process-level defaults seqexp sets before torch loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = "import seqexp, os; print(os.environ['OMP_WAIT_POLICY'])"


@pytest.mark.parametrize("exported, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_openmp_threads_sleep_while_waiting_unless_the_user_says_otherwise(exported, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if exported:
        env["OMP_WAIT_POLICY"] = exported
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


@pytest.mark.parametrize(
    "native_bf16, use_cpu, expected",
    [(True, True, "bf16"), (False, True, "no"), (True, False, "no")],
)
def test_precision_auto_is_bf16_only_on_a_cpu_with_native_bf16(monkeypatch, native_bf16, use_cpu, expected):
    import torch

    from seqexp.training.accelerator import resolve_precision

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert resolve_precision("auto", use_cpu=use_cpu) == expected
    assert resolve_precision("no", use_cpu=use_cpu) == "no"  # an explicit choice is kept
    assert resolve_precision("bf16", use_cpu=use_cpu) == "bf16"


def test_results_json_records_the_precision_auto_resolved_to(tmp_path):
    from conftest import TINY, compose_train
    from seqexp.app.train import train
    from seqexp.training.accelerator import native_cpu_bf16

    _, objects = train(compose_train(tmp_path, *TINY, "model=sasrec", "trainer.precision=auto"))
    assert objects["results"]["training"]["precision"] == ("bf16" if native_cpu_bf16() else "no")
    _, objects = train(compose_train(tmp_path / "fp32", *TINY, "model=sasrec", "trainer.precision=no"))
    assert objects["results"]["training"]["precision"] == "no"


def test_runs_in_one_process_may_use_different_precisions():
    """A basic-launcher multirun (trainer.precision=no,bf16) trains its jobs in one process."""
    from seqexp.training.accelerator import make_accelerator

    assert str(make_accelerator(device="cpu", precision="no").mixed_precision) == "no"
    assert str(make_accelerator(device="cpu", precision="bf16").mixed_precision) == "bf16"
    assert str(make_accelerator(device="cpu", precision="no").mixed_precision) == "no"


def test_an_lstm_that_cannot_run_in_bf16_here_is_refused_before_training(monkeypatch, tmp_path):
    """On a CPU without AVX-512, PyTorch's LSTM dies under bf16 autocast deep inside oneDNN at the first batch;
    the run is refused when the model is built, in one line with the fix; fp32 runs."""
    from conftest import TINY, compose_train
    from seqexp.app.train import train
    from seqexp.errors import ConfigError
    from seqexp.training import accelerator

    monkeypatch.setattr(accelerator, "cpu_runs_bf16_lstm", lambda: False)
    with pytest.raises(ConfigError, match=r"LSTM \(encoder.rnn\) cannot run in bf16 on this CPU.*precision=auto"):
        train(compose_train(tmp_path / "lstm", *TINY, "model=lstm", "trainer.precision=bf16"))
    _, objects = train(compose_train(tmp_path / "fp32", *TINY, "model=lstm", "trainer.precision=no"))
    assert objects["results"]["training"]["precision"] == "no"


@pytest.mark.parametrize(
    "encoder, precision, device, lstm_runs_bf16, refused",
    [
        ("LSTM", "bf16", "cpu", False, True),
        ("LSTM", "bf16", "cpu", True, False),  # a CPU whose oneDNN has the kernel
        ("LSTM", "no", "cpu", False, False),
        ("LSTM", "bf16", "cuda", False, False),  # cuDNN's LSTM, not oneDNN's
        ("GRU", "bf16", "cpu", False, False),  # oneDNN's GRU runs in bf16 on the same CPUs
    ],
)
def test_only_an_lstm_in_cpu_bf16_is_checked(monkeypatch, encoder, precision, device, lstm_runs_bf16, refused):
    from types import SimpleNamespace

    import torch

    from seqexp.errors import ConfigError
    from seqexp.training import accelerator

    monkeypatch.setattr(accelerator, "cpu_runs_bf16_lstm", lambda: lstm_runs_bf16)
    model = torch.nn.Sequential(getattr(torch.nn, encoder)(2, 2))
    fake = SimpleNamespace(mixed_precision=precision, device=torch.device(device))
    if refused:
        with pytest.raises(ConfigError, match=r"LSTM \(0\)"):
            accelerator.check_precision_runs(model, fake)
    else:
        accelerator.check_precision_runs(model, fake)  # no error


def test_the_bf16_lstm_probe_agrees_with_a_real_bf16_lstm_step():
    """The probe is what a run would hit: an LSTM step under CPU bf16 autocast either runs or raises."""
    import torch

    from seqexp.training.accelerator import cpu_runs_bf16_lstm

    lstm = torch.nn.LSTM(4, 4, num_layers=2, batch_first=True)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            lstm(torch.randn(2, 3, 4))[0].sum().backward()
        ran = True
    except RuntimeError:
        ran = False
    assert cpu_runs_bf16_lstm() is ran
