"""What every benchmark does with its table: print it and write it under benchmarks/results/."""

from __future__ import annotations

from pathlib import Path


def emit(text: str, out: Path) -> None:
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
