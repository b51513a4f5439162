"""The metrics table printed at the end of a run: the model beside popularity, validation and test."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.table import Table

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
) -> Table:
    table = Table(title=f"{model_name} vs popularity (full ranking)", caption=footer)
    table.add_column("metric")
    for col in (f"{model_name} valid", f"{model_name} test", "popularity valid", "popularity test"):
        table.add_column(col, justify="right")
    names = [f"{m}@{k}" for m in METRICS for k in ks] + [k for k in test if k.startswith("coverage@")]
    for name in names:
        table.add_row(name, *(f"{d.get(name, float('nan')):.4f}" for d in (valid, test, pop_valid, pop_test)))
    (console or Console()).print(table)
    return table
