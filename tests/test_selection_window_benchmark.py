"""benchmarks/selection_window.py: its table reads each run's kept epoch, the window mean there and test."""

from __future__ import annotations

import argparse

from conftest import load_benchmark


def _results(best: int, values: list[float], window: int, test: float) -> dict:
    history = []
    for epoch, value in enumerate(values, start=1):
        row = {"epoch": epoch, "valid/ndcg@10": value}
        if window > 1:
            row[f"valid/ndcg@10_mean{window}"] = sum(values[max(0, epoch - window) : epoch]) / min(epoch, window)
        history.append(row)
    return {
        "training": {"best_epoch": best, "epochs_run": len(values)},
        "history": history,
        "metrics": {"test/ndcg@10": test, "test/hr@10": 2 * test},
    }


def test_the_table_shows_the_kept_epoch_and_the_mean_over_seeds():
    bench = load_benchmark("selection_window")
    args = argparse.Namespace(models=["bert4rec"], windows=[1, 3], seeds=[0, 1])
    curve = [0.1, 0.3, 0.2, 0.25, 0.26]
    results = {
        ("bert4rec", 1, 0): _results(2, curve, 1, 0.040),
        ("bert4rec", 1, 1): _results(2, curve, 1, 0.044),
        ("bert4rec", 3, 0): _results(5, curve, 3, 0.046),
        ("bert4rec", 3, 1): None,  # failed
    }
    lines = bench.table(args, results)
    assert "| bert4rec | 1 | 0 | 2 (5) | 0.3000 | 0.3000 | 0.0400 | 0.0800 |" in lines
    assert "| bert4rec | 3 | 0 | 5 (5) | 0.2600 | 0.2367 | 0.0460 | 0.0920 |" in lines  # (0.2 + 0.25 + 0.26) / 3
    assert "| bert4rec | 3 | 1 | failed | – | – | – | – |" in lines
    assert "| bert4rec | 1 | 0.0420 ± 0.0028 (2 seeds) | 2.0 | 5.0 |" in lines
    assert "| bert4rec | 3 | 0.0460 ± nan (1 seeds) | 5.0 | 5.0 |" in lines
