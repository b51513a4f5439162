"""seqexp's Optuna sweeper (hparams_search=optuna): hydra-optuna-sweeper's, run by seqexp.app.optuna_search.

Hydra instantiates a sweeper only from a class under the hydra_plugins package, so this thin subclass lives here;
what it adds (its settings checked before the study is created, seqexp's failed trials counted by max_failure_rate,
a search in which no trial completed or that too many failures stopped ended in one line and a sweep summary) is in
seqexp/app/optuna_search.py. Without the [optuna] extra it defines nothing, and Hydra's plugin scan (which imports
every module here, on every run) stays quiet and does not load optuna.
"""

from __future__ import annotations

from typing import Any

try:
    from hydra_plugins.hydra_optuna_sweeper import optuna_sweeper
except ImportError:  # hydra-optuna-sweeper is not installed
    optuna_sweeper = None

if optuna_sweeper is not None:

    class SeqexpOptunaSweeper(optuna_sweeper.OptunaSweeper):
        """hydra-optuna-sweeper's OptunaSweeper; its sweep runs through seqexp.app.optuna_search.run_search."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            from seqexp.app.optuna_search import check_failure_rate

            if "max_failure_rate" in kwargs:  # the plugin asserts its range: a bare AssertionError
                check_failure_rate(kwargs["max_failure_rate"])
            super().__init__(*args, **kwargs)

        def sweep(self, arguments: list[str]) -> None:
            from seqexp.app.optuna_search import run_search

            return run_search(self.sweeper, arguments)
