"""benchmarks/_runs.py `loss_overrides`: the benchmarks ask for a loss by name on any card; esasrec takes its loss
from the model/loss group (swapped with `model/loss=`), the other cards hold an inline full softmax (`+model/loss=`)."""

from __future__ import annotations

import importlib.util
import re

import pytest

from conftest import CONF_DIR, REPO, compose_train
from seqexp.model.loss_choice import FULL_SOFTMAX

_spec = importlib.util.spec_from_file_location("_runs", REPO / "benchmarks" / "_runs.py")
runs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runs)
CARDS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))


@pytest.mark.parametrize("card", CARDS)
def test_every_card_composes_with_the_loss_asked_for(tmp_path, card):
    full = compose_train(tmp_path, f"model={card}", *runs.loss_overrides(card, "full")).model.loss
    assert dict(full) == {"_target_": FULL_SOFTMAX}
    sampled = compose_train(tmp_path, f"model={card}", *runs.loss_overrides(card, "sampled")).model.loss
    assert (sampled.num_negatives, sampled.per_position, sampled.logq_correction) == (2048, False, True)
    chunked = compose_train(tmp_path, f"model={card}", *runs.loss_overrides(card, "chunked")).model.loss
    assert chunked._target_.endswith("ChunkedFullSoftmax") and "num_negatives" not in chunked


def test_only_esasrec_swaps_its_loss_group():
    assert runs.loss_overrides("esasrec", "sampled") == ["model/loss=sampled"]
    assert runs.loss_overrides("sasrec", "sampled") == ["+model/loss=sampled"]
    assert runs.loss_overrides("sasrec", "full") == []


def test_values_not_composed_parses_as_hydra_and_lets_the_last_override_win():
    config = {"model": {"optimizer": {"lr": 0.002}, "encoder": {"init": None, "norm": True}, "sparse": 0}}
    same = [
        "model=sasrec", "+model/loss=sampled", "~model.loss.num_negatives", "hydra.run.dir=/x",
        "model.optimizer.lr=1e-3", "model.optimizer.lr=2e-3", "model.encoder.init=null", "model.encoder.norm=true",
    ]  # fmt: skip
    assert runs.values_not_composed(config, same) == []  # groups, deletions and hydra. skipped; 2e-3 is 0.002
    assert runs.values_not_composed(config, ["model.optimizer.lr=2e-3", "model.optimizer.lr=1e-3"]) == [
        "model.optimizer.lr=1e-3"
    ]
    assert runs.values_not_composed(config, ["model.sparse=false"]) == ["model.sparse=false"]  # 0 is not False
    assert runs.values_not_composed(config, ["model.encoder.init=0.02", "model.absent=1"]) == [
        "model.encoder.init=0.02", "model.absent=1",
    ]  # fmt: skip


def test_a_finished_run_is_reused_only_when_it_ran_with_the_values_asked_for(tmp_path):
    """Benchmarks find runs by dir name: formerly a run of other settings there (another --epochs, override or
    data file) was reused, and the results file printed the new command above its numbers."""
    import json

    (tmp_path / "data").mkdir()
    log = tmp_path / "data" / "beauty.txt"
    log.write_text("")
    run_dir = tmp_path / "sasrec-fp32"
    run_dir.mkdir()
    config = {"data": {"path": str(log)}, "trainer": {"max_epochs": 2, "num_threads": 1}, "model": {"lr": 0.001}}
    (run_dir / "results.json").write_text(json.dumps({"status": "completed", "config": config}))
    same = [f"data.path={tmp_path / 'x' / '..' / 'data' / 'beauty.txt'}", "trainer.max_epochs=2", "model.lr=1e-3"]
    neutral = ["trainer.num_threads=2", "trainer.resume=auto", "hydra.run.dir=/x", "paths.cache_dir=/c", "logger=none"]
    assert runs.finished_as_asked(run_dir, [*same, *neutral])["config"] == config  # the same file, spelled otherwise
    assert runs.finished_as_asked(tmp_path / "absent", same) is None  # not finished: the caller trains it
    # keys added since the run: the value that gives the old behaviour is what it ran with, another one is not
    older = [*same, "trainer.plateau_lr_factor=null", "trainer.selection_window=1"]
    assert runs.finished_as_asked(run_dir, older)["config"] == config
    for other in ("trainer.max_epochs=5", "model.lr=3e-3", f"data.path={tmp_path / 'other.txt'}",
                  "trainer.plateau_lr_factor=0.1"):  # fmt: skip
        with pytest.raises(SystemExit, match=rf"{run_dir} holds a finished run of other settings \(its config has "
                           rf"not {re.escape(other)}\); move it away or choose another --workdir"):  # fmt: skip
            runs.finished_as_asked(run_dir, [*same, other])
