"""Import paths users already typed before the package had folders (in their own YAML `_target_`s and scripts).

`seqexp.encoders.rnn.LSTMEncoder`, `seqexp.objectives.NextItemObjective`, `seqexp.losses.SampledSoftmax`,
`from seqexp.recommend import Recommender`, ... keep working: each old module name is answered by a small module
that forwards every attribute to the module that now holds it (the same objects, so `isinstance` and Hydra's
`_target_` see one class). New code imports the new paths; this table is the only place that knows the old ones.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from typing import Any

OLD_TO_NEW = {
    "seqexp.train": "seqexp.app.train",
    "seqexp.recommend": "seqexp.app.recommend",
    "seqexp.export": "seqexp.app.export",
    "seqexp.resolvers": "seqexp.app.resolvers",
    "seqexp.encoders": "seqexp.model.encoders",
    "seqexp.encoders.base": "seqexp.model.encoders.base",
    "seqexp.encoders.rnn": "seqexp.model.encoders.rnn",
    "seqexp.encoders.transformer": "seqexp.model.encoders.transformer",
    "seqexp.objectives": "seqexp.model.objectives",
    "seqexp.losses": "seqexp.model.losses",
    "seqexp.item_init": "seqexp.model.item_init",
    "seqexp.checkpoint": "seqexp.training.checkpoint",
    "seqexp.metrics": "seqexp.evaluation.metrics",
    "seqexp.baselines": "seqexp.evaluation.baselines",
    "seqexp.sweep_report": "seqexp.tracking.sweep_report",
    "seqexp.results": "seqexp.tracking.results",
    "seqexp.failures": "seqexp.tracking.failures",
    "seqexp.examples": "seqexp.tracking.top_k_table",
    "seqexp.report_table": "seqexp.tracking.console",
    "seqexp.distributed": "seqexp.training.distributed",
    "seqexp.data.sources": "seqexp.data.readers",
    "seqexp.data.prepared": "seqexp.data.sequences",
    "seqexp.data.report": "seqexp.data.prep_report",
}


class _Forwarder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an old module name with a module whose attributes are the new module's."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in OLD_TO_NEW:
            return None
        is_package = any(name.startswith(fullname + ".") for name in OLD_TO_NEW)
        new = importlib.util.find_spec(OLD_TO_NEW[fullname])
        spec = importlib.machinery.ModuleSpec(fullname, self, is_package=is_package)
        spec.origin = new.origin if new is not None else None  # `python -m` runs the new file, as __file__
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        target = importlib.import_module(OLD_TO_NEW[spec.name])
        module = types.ModuleType(spec.name, f"Moved to {target.__name__}.")
        module.__getattr__ = lambda name: getattr(target, name)  # type: ignore[method-assign]  # always live
        if spec.submodule_search_locations is not None:
            module.__path__ = []  # a package: its old submodules are answered by this finder too
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass

    def get_code(self, fullname: str) -> types.CodeType | None:
        """`python -m seqexp.train` (runpy asks the loader for the module's code): run the new module's."""
        spec = importlib.util.find_spec(OLD_TO_NEW[fullname])
        return spec.loader.get_code(spec.name) if spec is not None and spec.loader is not None else None


def install() -> None:
    if not any(isinstance(f, _Forwarder) for f in sys.meta_path):
        sys.meta_path.append(_Forwarder())
