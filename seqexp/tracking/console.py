"""The metrics table printed at the end of a run: the model beside popularity, validation and test."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.table import Table

from seqexp.evaluation.beyond_accuracy import BEYOND
from seqexp.evaluation.metrics import METRICS


def print_metrics_table(
    model_name: str,
    valid: Mapping[str, float],
    test: Mapping[str, float],
    pop_valid: Mapping[str, float],
    pop_test: Mapping[str, float],
    ks: tuple[int, ...],
    footer: str = "",
    console: Console | None = None,
    valid_users: int | None = None,
) -> Table:
    """Accuracy metrics, coverage and the beyond-accuracy metrics (those present) for the four evaluations;
    `valid_users` (eval.sample_users) labels the validation columns as a sample."""
    table = Table(title=f"{model_name} vs popularity (full ranking)", caption=footer)
    table.add_column("metric")
    v = f"valid ({valid_users} sampled users)" if valid_users else "valid"
    for col in (f"{model_name} {v}", f"{model_name} test", f"popularity {v}", "popularity test"):
        table.add_column(col, justify="right")
    names = [f"{m}@{k}" for m in METRICS for k in ks] + [k for k in test if k.startswith("coverage@")]
    names += [k for b in BEYOND for k in test if k.split("@")[0] == b]
    for name in names:
        table.add_row(name, *(f"{d.get(name, float('nan')):.4f}" for d in (valid, test, pop_valid, pop_test)))
    (console or Console()).print(table)
    return table
