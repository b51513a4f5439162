"""benchmarks/_markdown.py: re-running a benchmark replaces only its generated text; prose written by hand around
it in the results file is kept."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location("_markdown", REPO / "benchmarks" / "_markdown.py")
markdown = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(markdown)


def test_a_new_file_holds_the_table_between_the_markers(tmp_path: Path, capsys) -> None:
    out = tmp_path / "results" / "x.md"
    markdown.emit("| a |\n|---|\n| 1 |\n", out)
    assert out.read_text() == f"{markdown.BEGIN}\n| a |\n|---|\n| 1 |\n{markdown.END}\n"
    assert "| 1 |" in capsys.readouterr().out  # printed too


def test_a_rerun_keeps_the_prose_around_the_generated_text(tmp_path: Path) -> None:
    out = tmp_path / "x.md"
    markdown.emit("| a |\n| 1 |", out)
    out.write_text("# Title by hand\n\nHow it was run.\n\n" + out.read_text() + "\nReading: 1 is good.\n")
    markdown.emit("| a |\n| 2 |", out)
    text = out.read_text()
    generated = f"{markdown.BEGIN}\n| a |\n| 2 |\n{markdown.END}\n"
    assert text == f"# Title by hand\n\nHow it was run.\n\n{generated}\nReading: 1 is good.\n"
    assert "| 1 |" not in text


def test_an_empty_file_is_written_whole_and_the_title_once(tmp_path: Path) -> None:
    out = tmp_path / "x.md"
    out.write_text("\n")
    markdown.emit("new", out, title="# Title")
    assert out.read_text() == f"# Title\n\n{markdown.BEGIN}\nnew\n{markdown.END}\n"
    markdown.emit("newer", out, title="# Title")  # the title is written once, outside the generated text
    assert out.read_text() == f"# Title\n\n{markdown.BEGIN}\nnewer\n{markdown.END}\n"


def test_a_file_with_text_but_no_markers_is_left_untouched(tmp_path: Path, capsys) -> None:
    out = tmp_path / "x.md"
    out.write_text("an older table\n\nA reading written by hand.\n")
    with pytest.raises(SystemExit, match=r"x.md holds text but no generated-text markers.*Put the two lines"):
        markdown.emit("| a |\n| 2 |", out)
    assert out.read_text() == "an older table\n\nA reading written by hand.\n"
    assert "| 2 |" in capsys.readouterr().out  # the new table is not lost either


# results files assembled by hand: tables collected from seqexp-train / seqexp-compare runs, or several commands of
# one benchmark merged into sections. They hold no markers, so a benchmark re-run never writes into them: it prints
# its table and says so (test_a_file_with_text_but_no_markers_is_left_untouched).
ASSEMBLED_BY_HAND = {
    "esasrec_ml100k.md", "same_metrics.md", "taobao_features.md", "trust_overhead.md", "tuning_ml100k.md",
    "prepare_scale.md", "scale.md", "speed_cpu.md",
}  # fmt: skip
TITLED_BY_EMIT = {"tuning_beauty.md"}  # its script passes title=: the block starts at its Command line


def test_every_generated_results_file_in_the_repo_has_its_marker_pair_around_a_whole_output() -> None:
    """A re-run of any benchmark keeps the prose its results file gathered by hand, and replaces a whole output:
    the block starts with the script's title (no stale half above it)."""
    files = sorted((REPO / "benchmarks" / "results").glob("*.md"))
    assert len(files) > len(ASSEMBLED_BY_HAND) + 8
    for path in files:
        text = path.read_text()
        if path.name in ASSEMBLED_BY_HAND:
            assert markdown.BEGIN not in text and markdown.END not in text, path.name
            continue
        assert text.count(markdown.BEGIN) == 1 and text.count(markdown.END) == 1, path.name
        assert text.index(markdown.BEGIN) < text.index(markdown.END), path.name
        first = text.split(markdown.BEGIN + "\n", 1)[1].splitlines()[0]
        assert first.startswith("Command:" if path.name in TITLED_BY_EMIT else "# "), (path.name, first)


@pytest.mark.parametrize(
    "damaged",
    [
        "prose\n{BEGIN}\n| a |\nprose written after, end marker deleted\n",
        "prose\n| a |\n{END}\nbegin marker deleted\n",
        "prose\n{END}\n| a |\n{BEGIN}\nout of order\n",
    ],
)
def test_a_file_with_a_damaged_marker_pair_is_left_untouched(tmp_path: Path, damaged: str) -> None:
    out = tmp_path / "x.md"
    text = damaged.format(BEGIN=markdown.BEGIN, END=markdown.END)
    out.write_text(text)
    with pytest.raises(SystemExit, match=r"x.md holds one generated-text marker without the other"):
        markdown.emit("| a |\n| 2 |", out)
    assert out.read_text() == text  # nothing hand-written is lost
