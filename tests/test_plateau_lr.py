"""trainer.plateau_lr_factor: when patience runs out, the learning rate decays and patience starts again (up to
trainer.plateau_decays times) instead of the run stopping; a run that stopped before the setting was given
continues from its snapshot exactly as a run given it from the start."""

from __future__ import annotations

import pytest
import torch

from conftest import TINY, compose_train
from seqexp.app.train import train
from seqexp.errors import ConfigError
from seqexp.training.loop import _plateau
from seqexp.training.settings import TrainerSettings
from seqexp.training.state import LoopState


def _optimizer() -> torch.optim.Optimizer:
    weight = torch.nn.Parameter(torch.zeros(2))
    return torch.optim.Adam([{"params": [weight], "lr": 1e-3}, {"params": [], "lr": 2e-3}])


def test_patience_running_out_decays_the_learning_rate_until_the_decays_are_spent():
    optimizer = _optimizer()
    settings = TrainerSettings(batch_size=8, patience=3, plateau_lr_factor=0.1, plateau_decays=2)
    state = LoopState(epoch=7, bad_evals=2)
    assert _plateau(state, settings, optimizer) is False and state.lr_decay_epochs == []  # patience left
    state.bad_evals = 3
    assert _plateau(state, settings, optimizer) is False  # decay 1 of 2: go on
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-4, 2e-4])  # every group
    assert state.bad_evals == 0 and state.lr_decay_epochs == [7]
    state.epoch, state.bad_evals = 12, 3
    assert _plateau(state, settings, optimizer) is False and state.lr_decay_epochs == [7, 12]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-5)
    state.epoch, state.bad_evals = 15, 3
    assert _plateau(state, settings, optimizer) is True  # both decays spent: patience ends the run
    assert state.lr_decay_epochs == [7, 12] and optimizer.param_groups[0]["lr"] == pytest.approx(1e-5)


def test_without_the_factor_patience_stops_the_run_as_before():
    optimizer = _optimizer()
    assert _plateau(LoopState(bad_evals=3), TrainerSettings(batch_size=8, patience=3), optimizer) is True
    assert optimizer.param_groups[0]["lr"] == 1e-3


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("plateau_lr_factor", 1.5, r"trainer.plateau_lr_factor=1.5 must be below 1 \(e.g. 0.1"),
        ("plateau_lr_factor", 0, r"trainer.plateau_lr_factor=0 must be a positive number"),
        ("plateau_lr_factor", "half", r"trainer.plateau_lr_factor='half' is not a number"),
        ("plateau_decays", 0, r"trainer.plateau_decays=0 must be >= 1"),
    ],
)
def test_a_bad_plateau_setting_names_the_key(key, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainerSettings.from_config({key: value}, batch_size=8)


@pytest.mark.slow
def test_a_stopped_run_resumed_with_the_factor_continues_as_a_run_given_it_from_the_start(tmp_path):
    # the tiny run's validation stops improving within 10 epochs: patience 1 ends it early
    base = [*TINY, "trainer.max_epochs=10", "trainer.patience=1"]
    _, stopped = train(compose_train(tmp_path / "a", *base))
    training = stopped["results"]["training"]
    assert training["stopped_early"] and training["lr_decay_epochs"] == []
    stop = training["epochs_run"]
    assert stop < 10

    decayed = [*base, "trainer.plateau_lr_factor=0.5"]
    _, resumed = train(compose_train(tmp_path / "a", *decayed, "trainer.resume=true"))  # the setting may be added
    _, fresh = train(compose_train(tmp_path / "b", *decayed))
    for objects in (resumed, fresh):
        assert objects["results"]["training"]["lr_decay_epochs"][0] == stop
        assert objects["results"]["training"]["epochs_run"] > stop  # went on after the first plateau
    assert resumed["results"]["training"] == fresh["results"]["training"]
    valid = [[row["valid/ndcg@10"] for row in o["results"]["history"]] for o in (resumed, fresh)]
    assert valid[0] == valid[1]  # the same numbers, epoch by epoch (CPU)
    snapshot = torch.load(tmp_path / "a" / "run" / "checkpoints" / "last.pt", weights_only=False)
    lr = snapshot["optimizer"]["param_groups"][0]["lr"]
    assert lr == pytest.approx(compose_train(tmp_path, *base).model.optimizer.lr * 0.5)
