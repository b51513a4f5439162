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
