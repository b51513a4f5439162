"""The package reads as its data flow (issue #15): layers import downwards only, no import circles, small
functions and modules. Checked with `ast` on the source (no extra dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "seqexp"

# higher layers may import lower ones (and their own); DESIGN.md "Layout"
LAYERS = {
    "app": 6,
    "compare": 6,
    "training": 5,
    "tracking": 4,
    "evaluation": 3,
    "model": 2,
    "data": 1,
}  # everything else (errors, io, ranks, _legacy, the package __init__) is layer 0
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 300


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], 0) if len(parts) > 1 else 0


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(module: str) -> set[str]:
    """seqexp modules imported by `module` at any depth of its code (function-level imports count too)."""
    out = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        out |= {n for n in names if n in MODULES and n != module}
    return out


GRAPH = {m: _imports(m) for m in MODULES}


def test_layers_import_downwards_only():
    upward = [
        f"{m} (layer {_layer(m)}) imports {dep} (layer {_layer(dep)})"
        for m, deps in GRAPH.items()
        for dep in deps
        if _layer(dep) > _layer(m) and not dep.startswith(m + ".")
    ]
    assert upward == []


def test_the_import_graph_has_no_circle():
    def package_of(m: str) -> str:  # a package importing its own submodules is not a circle
        return m

    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for dep in sorted(GRAPH[m]):
            if dep.startswith(m + ".") or m.startswith(dep + "."):  # a package and its own modules
                continue
            if state.get(dep) == 1:
                circles.append(path[path.index(dep) :] + [dep] if dep in path else [m, dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])
    assert circles == []


def test_the_top_level_holds_folders_and_a_few_modules():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert modules == ["__init__.py", "_legacy.py", "errors.py", "io.py", "ranks.py"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_and_functions_stay_small(module):
    source = MODULES[module].read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES, f"{module} has {len(source.splitlines())} lines"
    long = [
        f"{node.name} ({_body_lines(node)} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _body_lines(node) > MAX_FUNCTION_LINES
    ]
    assert long == [], module


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function's code: its signature and docstring are not counted."""
    body = node.body[1:] if ast.get_docstring(node) is not None and len(node.body) > 1 else node.body
    return node.end_lineno - body[0].lineno + 1


OLD_STYLE_ENCODER = '''
"""An encoder written against the README of November 2026 (old import paths)."""
from torch import nn
from seqexp.encoders import SequenceEncoder


class MeanEncoder(SequenceEncoder):
    causal = True

    def __init__(self, hidden_size: int = 16) -> None:
        super().__init__(hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, x, padding_mask):
        # causal running mean of the real events: (B, L, D)
        weights = padding_mask.float().cumsum(dim=1).clamp(min=1)[:, :, None]
        return self.proj((x * padding_mask[:, :, None]).cumsum(dim=1) / weights) * padding_mask[:, :, None]
'''


def test_an_out_of_package_encoder_on_old_paths_still_trains(tmp_path, monkeypatch):
    from conftest import TINY, compose_train
    from seqexp.app.train import train

    (tmp_path / "old_style_encoder.py").write_text(OLD_STYLE_ENCODER)
    monkeypatch.syspath_prepend(str(tmp_path))
    overrides = [
        *TINY,
        "model.encoder._target_=old_style_encoder.MeanEncoder",
        "~model.encoder.num_layers",
        "~model.encoder.dropout",
        "model.objective._target_=seqexp.objectives.NextItemObjective",
        "model.loss._target_=seqexp.losses.FullSoftmax",
    ]
    metrics, objects = train(compose_train(tmp_path, *overrides))
    assert type(objects["model"].encoder).__name__ == "MeanEncoder"
    assert 0.0 <= metrics["test/ndcg@10"] <= 1.0 and objects["results"]["training"]["epochs_run"] == 2


def test_old_public_paths_name_the_same_objects():
    from seqexp.app.recommend import Recommender
    from seqexp.encoders.rnn import LSTMEncoder as OldLSTM
    from seqexp.encoders.transformer import SASRecEncoder as OldSASRec
    from seqexp.losses import SampledSoftmax as OldSampled
    from seqexp.model.encoders.rnn import LSTMEncoder
    from seqexp.model.encoders.transformer import SASRecEncoder
    from seqexp.model.losses import SampledSoftmax
    from seqexp.model.objectives import MaskedItemObjective
    from seqexp.objectives import MaskedItemObjective as OldMasked
    from seqexp.recommend import Recommender as OldRecommender  # noqa: I001 (old paths, after the new)

    assert (OldRecommender, OldLSTM, OldSASRec, OldSampled, OldMasked) == (
        Recommender,
        LSTMEncoder,
        SASRecEncoder,
        SampledSoftmax,
        MaskedItemObjective,
    )


def test_every_test_the_reliability_table_names_exists():
    """docs/reliability.md points at the test of each row: the file and the function must exist."""
    import re

    table = (PACKAGE.parent / "docs" / "reliability.md").read_text()
    named = set(re.findall(r"`(test_[a-z_]+\.py)::(test_[a-z0-9_]+)`", table))
    tests = PACKAGE.parent / "tests"
    missing = [
        f"{f}::{t}" for f, t in sorted(named) if not (tests / f).exists() or f"def {t}(" not in (tests / f).read_text()
    ]
    assert len(named) >= 50 and missing == []
