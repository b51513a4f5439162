"""The shipped sparse-catalogue recipes (conf/experiment/sparse_catalogue*.yaml) are the settings that were
measured: each composes the same model and split as the Beauty trial of benchmarks/tune_beauty.py it was chosen
by (benchmarks/results/tuning_beauty.md), and the same gradient clipping, selection window and learning-rate decay.
Trainer budgets (patience, minutes) and precision are the trials' own and not compared; the trials' recorded
overrides are in the results file, this checks today's TRIALS table."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from conftest import compose_train, load_benchmark

RECIPE_OF_TRIAL = {  # trial of tuning_beauty.md that chose it -> the experiment file that ships it
    "sasrec-recsys23-scaled-bf16": "sparse_catalogue",
    "esasrec-full-scaled-norm-init002-valid2048": "sparse_catalogue_esasrec",
    "bert4rec-recsys23-exact-window5-plateau": "sparse_catalogue_bert4rec",
}


@pytest.fixture(scope="module")
def trials() -> dict[str, list[str]]:
    return load_benchmark("tune_beauty").TRIALS


@pytest.mark.parametrize(("trial", "experiment"), sorted(RECIPE_OF_TRIAL.items()))
def test_recipe_composes_the_model_its_trial_measured(tmp_path, trials, trial, experiment):
    assert not any(o.startswith("experiment=") for o in trials[trial])  # the trial spells its settings out
    split = [o for o in trials[trial] if o.startswith("split.")]  # the protocol is the user's choice, not the recipe's
    measured = compose_train(tmp_path, "data=beauty", *trials[trial])
    shipped = compose_train(tmp_path, "data=beauty", f"experiment={experiment}", *split)
    assert OmegaConf.to_container(shipped.model) == OmegaConf.to_container(measured.model)
    assert shipped.split == measured.split
    for key in ("grad_clip", "selection_window", "plateau_lr_factor"):  # change the optimisation or the selection,
        assert shipped.trainer[key] == measured.trainer[key], key  # not only the budget


def test_every_trial_composes_with_what_it_names(tmp_path, trials):
    """A typo in a trial would cost a long Beauty run: each trial composes, and each `key=value` it sets is in the
    composed config with that value (no override silently landing elsewhere; a later one of a key wins, as in Hydra)."""
    for name, overrides in trials.items():
        cfg = compose_train(tmp_path, "data=beauty", *overrides)
        assert load_benchmark("_runs").values_not_composed(cfg, overrides) == [], name


def test_a_budget_stopped_trial_continues_only_when_given_a_larger_budget():
    tune = load_benchmark("tune_beauty")
    stopped = {"training": {"out_of_time": True}, "config": {"trainer": {"max_minutes": 110}}}
    assert tune.more_budget(stopped, ["trainer.max_minutes=230"])
    assert tune.more_budget(stopped, ["trainer.max_minutes=null"])
    assert not tune.more_budget(stopped, ["trainer.max_minutes=110"])
    assert not tune.more_budget(stopped, [])
    assert not tune.more_budget({**stopped, "training": {"out_of_time": False}}, ["trainer.max_minutes=230"])
