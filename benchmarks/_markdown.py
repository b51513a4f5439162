"""What every benchmark does with its table: print it and write it under benchmarks/results/.

A results file may hold hand-written prose (how the runs were made, what they mean) around the generated part:
the generated text goes between the two markers below, and a re-run replaces only what lies between them, so
nothing written by hand is lost. A file without the markers is written whole, with them.
"""

from __future__ import annotations

from pathlib import Path

BEGIN = "<!-- generated: re-running the benchmark replaces the text down to the end marker -->"
END = "<!-- end of generated text -->"


def emit(text: str, out: Path) -> None:
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    block = f"{BEGIN}\n{text.rstrip()}\n{END}\n"
    old = out.read_text() if out.exists() else ""
    if BEGIN in old and END in old.split(BEGIN, 1)[1]:
        before, rest = old.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        out.write_text(before + block + after.removeprefix("\n"))
    else:
        out.write_text(block)
