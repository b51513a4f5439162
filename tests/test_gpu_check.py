"""benchmarks/gpu_check.sh --smoke: the GPU check's every step on the CPU (tiny synthetic data), so that the
script cannot rot between GPU runs; and its table's failure reporting."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import time

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow
SPEC = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(gpu_check)


def table_rows(text: str) -> dict[tuple[str, str], str]:
    rows = [line.strip("|").split(" | ") for line in text.splitlines() if line.startswith("| ")]
    return {(c.strip(), m.strip()): v.strip() for c, m, v in rows[1:]}  # rows[0]: the header


def test_smoke_mode_runs_every_step_and_prints_every_row(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "RAY_ADDRESS")}
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--smoke", "--workdir", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=240, cwd=tmp_path,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    log = (tmp_path / "steps.log").read_text()[-6000:] if (tmp_path / "steps.log").exists() else ""
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:] + log
    rows = table_rows(proc.stdout)
    assert list(rows) == gpu_check.expected_rows(["gru"])  # every row, in order, and nothing else
    assert not [v for v in rows.values() if "FAILED" in v], proc.stdout
    assert rows[("ray", "sweep of 2 jobs sharing one device")].startswith("2/2 jobs completed")
    assert "processes=1" in rows[("torchrun", "1-process job")]
    assert rows[("gru", "peak MB chunked CE")].endswith("(cpu RSS)")
    # the runs behind the cells really were what the rows say
    variant = {
        v: json.loads((tmp_path / "train" / f"gru-{v}" / "results.json").read_text()) for v in gpu_check.VARIANTS
    }
    assert variant["bf16"]["training"]["precision"] == "bf16" and variant["compile"]["training"]["compile"] is True
    assert variant["chunked"]["config"]["model"]["loss"]["_target_"] == "seqexp.model.losses.ChunkedFullSoftmax"
    assert variant["fp32"]["training"]["precision"] == "no" and variant["fp32"]["training"]["compile"] is False
    print(f"gpu_check.sh --smoke: {wall:.0f} s")


def test_a_missing_or_failed_step_is_a_failed_cell_and_exit_1(tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    gpu_check.write_row(rows, "gru", "s/epoch fp32", "0.5")
    gpu_check.write_row(rows, "eval", "users/s, exact full ranking", "FAILED (OutOfMemoryError: ...)")
    assert gpu_check.main(["table", "--rows", str(rows), "--encoders", "gru", "--out", str(tmp_path / "t.md")]) == 1
    got = table_rows(capsys.readouterr().out)
    assert got[("gru", "s/epoch fp32")] == "0.5"
    assert got[("gru", "s/epoch bf16")].startswith("FAILED (no value")  # never written: the step died
    assert got[("eval", "users/s, exact full ranking")].startswith("FAILED (OutOfMemoryError")
    assert len(got) == len(gpu_check.expected_rows(["gru"])) == 5 + 3
    assert (tmp_path / "t.md").read_text().count("\n") == 2 + 8

    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"status": "failed"}))
    gpu_check.main(["collect-run", str(run), "3", "--rows", str(rows)])
    gpu_check.main(["collect-ray", str(tmp_path / "no-sweep"), "3", "--rows", str(rows)])
    last = [json.loads(line)["value"] for line in rows.read_text().splitlines()[-2:]]
    assert last == ["FAILED (status failed)", "FAILED (0/2 jobs completed in 3 s (devices -))"]


def test_the_eval_step_ranks_exactly_like_the_whole_catalogue_path():
    from seqexp.evaluation.protocol import evaluate

    table, tensors = gpu_check.synthetic_eval(n_items=3000, n_users=50, dim=8, max_len=6)
    scorer = gpu_check.LastItemScorer(table)
    chunked = evaluate(scorer, tensors, n_items=3000, item_chunk=256, batch_size=16)
    whole = evaluate(lambda h: scorer.user_states(h) @ table.T, tensors, n_items=3000, batch_size=16)
    for name, value in whole.metrics.items():
        assert chunked.metrics[name] == pytest.approx(value, abs=1e-9), name
    assert len(chunked.users) == 50 and int(tensors.seen_offsets[-1]) == 50 * 6
