"""What every benchmark does with its table: print it and write it under benchmarks/results/.

A results file may hold hand-written prose (how the runs were made, what they mean) around the generated part:
the generated text goes between the two markers below, and a re-run replaces only what lies between them, so
nothing written by hand is lost. A new (or empty) file is written whole, with the markers (a `title` first). A file
with text but no marker, only one of them, or them out of order is left untouched and the run says so: its
hand-written text cannot be told from an older table (every file a benchmark writes under benchmarks/results has
the pair, tested; a few there are collected by hand and have none).
"""

from __future__ import annotations

from pathlib import Path

BEGIN = "<!-- generated: re-running the benchmark replaces the text down to the end marker -->"
END = "<!-- end of generated text -->"


def emit(text: str, out: Path, title: str | None = None) -> None:
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    block = f"{BEGIN}\n{text.rstrip()}\n{END}\n"
    old = out.read_text() if out.exists() else ""
    if not old.strip():
        out.write_text((f"{title}\n\n" if title else "") + block)
        return
    if BEGIN not in old and END not in old:
        raise SystemExit(
            f"{out} holds text but no generated-text markers, so its hand-written text cannot be told from an older "
            f"table; the file was not changed and the new table is printed above. Put the two lines\n{BEGIN}\n{END}\n"
            f"around the part the benchmark writes (or move the file away) and re-run"
        )
    if BEGIN not in old or END not in old.split(BEGIN, 1)[1]:
        raise SystemExit(
            f"{out} holds one generated-text marker without the other (or the end marker before the begin marker), "
            f"so its generated part cannot be told from the hand-written text; the file was not changed and the "
            f"new table is printed above. Put the two lines\n{BEGIN}\n{END}\nback around the generated part and re-run"
        )
    before, rest = old.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    out.write_text(before + block + after.removeprefix("\n"))
