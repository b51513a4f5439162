"""Leaderboard output: a terminal table, markdown, csv or json.

Numbers must reach the reader whole: a rich table squeezed into a narrow terminal, a log or a CI console
cuts cells to `0.…`. So the rich table is drawn only on a terminal wide enough for it; anywhere else
(a pipe, a file, 80 columns) the same cells are printed as a markdown table, one line per row.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from seqexp.compare.leaderboard import Row
from seqexp.compare.runs import RunRecord
from seqexp.compare.validate import METRICS, direction, lower_is_better

TITLE = "Leaderboard (test metrics: mean ± std [95% CI] over seeds)"
TEXT_COLUMNS = ("data", "model", "variant")
NOT_RANKED = "Not averaged in (failed, unfinished or skipped):"


def label(metric: str) -> str:
    """ "test/ndcg@10" -> "NDCG@10"; other splits keep their prefix ("valid NDCG@10")."""
    split, _, name = metric.rpartition("/")
    return name.upper() if split in ("", "test") else f"{split} {name.upper()}"


def _metric_names(rows: list[Row]) -> list[str]:
    """METRICS, the ranking metric when it is another one, and the --diversity columns."""
    metric = rows[0].metric if rows else METRICS[0]
    columns = rows[0].columns if rows else ()
    return list(dict.fromkeys((*METRICS, metric, *columns)))


def _sampled(rows: list[Row], name: str) -> str:
    """' (N sampled users)' for a validation metric measured on eval.sample_users users."""
    sizes = {r.protocol.get("valid_sample_users") for row in rows for r in row.runs} - {None}
    if not name.startswith("valid/") or not sizes:
        return ""
    return f" ({'/'.join(map(str, sorted(sizes)))} sampled users)"


def header(rows: list[Row]) -> list[str]:
    metric = rows[0].metric if rows else METRICS[0]
    paired = rows[0].paired_metric if rows else METRICS[0]
    versus = "vs baseline" if metric == METRICS[0] else f"vs baseline ({label(metric)}{_sampled(rows, metric)})"
    if lower_is_better(metric):
        versus = f"{versus[:-1]}, {direction(metric)})"  # a negative change is the better one
    return [
        *TEXT_COLUMNS,
        "seeds",
        *(label(m) + _sampled(rows, m) for m in _metric_names(rows)),
        versus,
        "paired p (t / W)" if paired == METRICS[0] else f"paired p on {label(paired)} (t / W)",
        f"Δ {label(paired)} 95% CI",
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


def cells(row: Row, names: list[str] | None = None) -> list[str]:
    p = row.paired
    return [
        row.data,
        row.model,
        row.variant or "–",
        str(len(row.runs)),
        *(_metric(row, m) for m in names or _metric_names([row])),
        _change(row),
        f"{p.t_pvalue:.3g} / {p.wilcoxon_pvalue:.3g}" if p else (row.note if row.note.startswith("not") else "–"),
        f"{p.mean_diff:+.4f} [{p.boot_low:+.4f}, {p.boot_high:+.4f}]" if p else "–",
        f"{row.mean_of('parameters'):,.0f}",
        _fmt(row.mean_of("train_seconds"), 0),
        _fmt(row.mean_of("sequences_per_second"), 0),
    ]


def _change(row: Row) -> str:
    """The change against the baseline, naming the baseline row when it is not the plain one."""
    if not math.isfinite(row.relative_change):
        return row.note or "–"
    return f"{100 * row.relative_change:+.1f}%" + (f" vs {row.versus}" if row.versus else "")


def describe(record: RunRecord) -> str:
    """One line for a run that is not ranked: status, where, which model and seed, and why."""
    who = f" ({record.model}, seed {record.seed})" if record.model != "?" else ""
    why = record.error or ("no error recorded" if record.status == "failed" else "")
    return f"{record.status}: {record.source}{who}{' — ' + why if why else ''}"


def to_markdown(rows: list[Row], others: list[RunRecord]) -> str:
    names = header(rows)
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(r)) + " |" for r in rows]
    if others:
        lines += ["", NOT_RANKED, ""]
        lines += [f"- {describe(r)}" for r in others]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[Row]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header(rows))
    writer.writerows(cells(r) for r in rows)
    return buf.getvalue()


def to_json(rows: list[Row], others: list[RunRecord]) -> str:
    """Strict JSON: a number that is not defined (one seed's sd, the baseline's change) or not finite is null, never a
    bare NaN / Infinity (not JSON: jq, JavaScript and strict parsers refuse it); allow_nan=False keeps it so."""
    metric = rows[0].metric if rows else METRICS[0]
    payload = {
        "ranked_by": metric,
        "metric_direction": direction(metric),
        "rows": [r.to_dict() for r in rows],
        "not_averaged": [
            {"source": r.source, "status": r.status, "model": r.model, "seed": r.seed, "error": r.error} for r in others
        ],
    }
    return json.dumps(json_safe(payload), indent=1, allow_nan=False, default=lambda o: None)


def json_safe(value: Any) -> Any:
    """`value` with NaN and ±inf as None (JSON null) and numpy values as plain Python ones, at any depth."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray | np.generic):
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def rich_table(rows: list[Row]) -> Table:
    table = Table(title=TITLE)
    for h in header(rows):
        table.add_column(h, justify="left" if h in TEXT_COLUMNS else "right", overflow="fold")
    for r in rows:
        table.add_row(*map(escape, cells(r)))
    return table


def print_table(rows: list[Row], others: list[RunRecord], console: Console | None = None) -> None:
    """The rich table on a terminal wide enough for every cell; markdown anywhere else (pipe, file, CI,
    a narrow terminal), so that no number is ever cut."""
    console = console or Console()
    table = rich_table(rows)
    unbounded = console.options.update_width(1 << 16)  # the width the table needs, not the width it is given
    if not console.is_terminal or console.measure(table, options=unbounded).maximum > console.width:
        console.file.write(to_markdown(rows, others))
        console.file.flush()
        return
    console.print(table)
    for r in others:
        console.print(f"[yellow]not averaged in[/yellow] {escape(describe(r))}", soft_wrap=True)
