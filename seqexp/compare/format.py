"""Leaderboard output: a terminal table, markdown, csv or json."""

from __future__ import annotations

import csv
import io
import json
import math

from rich.console import Console
from rich.table import Table

from seqexp.compare.leaderboard import METRICS, Row
from seqexp.compare.runs import RunRecord

HEADER = [
    "data",
    "model",
    "variant",
    "seeds",
    "NDCG@10",
    "HR@10",
    "MRR@10",
    "vs baseline",
    "paired p (t / W)",
    "Δ NDCG@10 95% CI",
    "params",
    "train s",
    "seq/s",
]


def _fmt(x: float, digits: int = 4) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _metric(row: Row, name: str) -> str:
    s = row.summaries[name]
    if s.n < 2:
        return _fmt(s.mean)
    return f"{s.mean:.4f} ± {s.std:.4f} [{s.ci_low:.4f}, {s.ci_high:.4f}]"


def cells(row: Row) -> list[str]:
    p = row.paired
    return [
        row.data,
        row.model,
        row.variant or "–",
        str(len(row.runs)),
        *(_metric(row, m) for m in METRICS),
        f"{100 * row.relative_change:+.1f}%" if math.isfinite(row.relative_change) else (row.note or "–"),
        f"{p.t_pvalue:.3g} / {p.wilcoxon_pvalue:.3g}" if p else (row.note if row.note.startswith("not") else "–"),
        f"{p.mean_diff:+.4f} [{p.boot_low:+.4f}, {p.boot_high:+.4f}]" if p else "–",
        f"{row.mean_of('parameters'):,.0f}",
        _fmt(row.mean_of("train_seconds"), 0),
        _fmt(row.mean_of("sequences_per_second"), 0),
    ]


def to_markdown(rows: list[Row], others: list[RunRecord]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    if others:
        lines += ["", "Not averaged in (failed or unfinished):", ""]
        lines += [f"- `{r.source}`: {r.status}{' — ' + r.error if r.error else ''}" for r in others]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[Row]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(HEADER)
    writer.writerows(cells(r) for r in rows)
    return buf.getvalue()


def to_json(rows: list[Row], others: list[RunRecord]) -> str:
    return json.dumps(
        {
            "rows": [r.to_dict() for r in rows],
            "not_averaged": [{"source": r.source, "status": r.status, "error": r.error} for r in others],
        },
        indent=1,
        default=lambda o: None,
    )


def print_table(rows: list[Row], others: list[RunRecord], console: Console | None = None) -> None:
    table = Table(title="Leaderboard (test metrics: mean ± std [95% CI] over seeds)")
    for h in HEADER:
        table.add_column(h, justify="left" if h in ("data", "model", "variant") else "right")
    for r in rows:
        table.add_row(*cells(r))
    console = console or Console()
    console.print(table)
    for r in others:
        console.print(f"[yellow]not averaged in[/yellow] {r.source}: {r.status} {r.error}")
