"""The preparation report: every cleaning rule, how many rows it dropped, and example rows; and notes on
what was read differently from the file's text without dropping anything (ids `12.0` read as `12`, the
timestamp unit)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RuleCount:
    rule: str  # short name, e.g. "duplicate"
    description: str  # what the rule does, in words
    dropped: int  # rows removed by this rule
    rows_left: int  # rows remaining after it
    examples: list[dict[str, Any]] = field(default_factory=list)  # up to 3 dropped rows, with their file row


@dataclass
class Note:
    what: str  # short name, e.g. "float_id"
    description: str  # what was done and which setting decided it
    rows: int = 0  # rows it touched (0 when it concerns the whole column)
    examples: list[Any] = field(default_factory=list)


@dataclass
class PrepReport:
    source: str  # the file that was read
    file_sha256: str  # fingerprint of its bytes
    rows_in: int
    rules: list[RuleCount] = field(default_factory=list)
    users: int = 0
    items: int = 0
    events: int = 0
    notes: list[Note] = field(default_factory=list)

    def add(self, rule: str, description: str, dropped: int, rows_left: int, examples: list[dict[str, Any]]) -> None:
        """Record a rule: how many rows it dropped, how many are left, and up to 3 of the dropped rows."""
        plain = [{k: _plain(v) for k, v in ex.items()} for ex in examples[:3]]
        self.rules.append(RuleCount(rule, description, int(dropped), int(rows_left), plain))

    def note(self, what: str, description: str, rows: int = 0, examples: list[Any] | None = None) -> None:
        self.notes.append(Note(what, description, int(rows), [_plain(v) for v in (examples or [])[:3]]))

    def dropped(self, rule: str) -> int:
        return sum(r.dropped for r in self.rules if r.rule == rule)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PrepReport:
        rules = [RuleCount(**r) for r in d.get("rules", [])]
        notes = [Note(**n) for n in d.get("notes", [])]
        return cls(**{**d, "rules": rules, "notes": notes})

    def to_text(self) -> str:
        lines = [f"Preparation of {self.source} (sha256 {self.file_sha256[:12]})", f"  rows read: {self.rows_in:,}"]
        width = max([len(r.rule) for r in self.rules] + [4])
        for r in self.rules:
            lines.append(f"  {r.rule:<{width}}  -{r.dropped:>10,}  left {r.rows_left:>10,}   {r.description}")
            for ex in r.examples:
                lines.append(f"  {'':<{width}}     e.g. {ex}")
        for n in self.notes:
            lines.append(
                f"  note {n.what}: {n.description}" + (f" ({n.rows:,} rows, e.g. {n.examples})" if n.rows else "")
            )
        lines.append(f"  result: {self.events:,} events, {self.users:,} users, {self.items:,} items")
        return "\n".join(lines)


def _plain(v: Any) -> Any:
    """numpy scalars -> Python scalars so that the report is JSON."""
    return v.item() if hasattr(v, "item") else v
