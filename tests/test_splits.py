"""Leave-one-out split, left-padded tensors, and the leakage guarantee."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import TINY, compose_train, unique_item_log
from seqexp.app.train import train
from seqexp.data.loader import eval_tensors, left_padded_windows, train_tensors
from seqexp.data.splits import leave_one_out, make_split, ranges_to_index
from seqexp.errors import ConfigError
from seqexp.model.objectives import NextItemObjective


def test_leave_one_out_targets(tmp_path):
    data = unique_item_log(tmp_path)
    split = leave_one_out(data)
    for u in range(data.n_users):
        seq = data.sequence(u)
        assert split.valid.targets[u] == seq[-2] and split.test.targets[u] == seq[-1]
        assert list(data.items[split.train_start[u] : split.train_end[u]]) == list(seq[:-2])
        assert list(data.items[split.test.history_start[u] : split.test.history_end[u]]) == list(seq[:-1])


def test_no_validation_or_test_target_reaches_training_inputs(tmp_path):
    data = unique_item_log(tmp_path)
    split = leave_one_out(data)
    for stride in (None, 2):
        train = train_tensors(data, split, max_len=4, stride=stride)
        inputs, targets = NextItemObjective().training_pair(train.windows, mask_index=99)
        trained_on = set(inputs[inputs > 0].tolist()) | set(targets[targets > 0].tolist())
        held_out = set(split.valid.targets.tolist()) | set(split.test.targets.tolist())
        assert trained_on and not trained_on & held_out
    valid = eval_tensors(data, split.valid, max_len=4)
    assert not set(valid.inputs[valid.inputs > 0].tolist()) & (set(split.valid.targets) | set(split.test.targets))
    test = eval_tensors(data, split.test, max_len=4)
    assert not set(test.inputs[test.inputs > 0].tolist()) & set(split.test.targets.tolist())


def test_valid_users_holds_out_only_the_sampled_users_validation_targets(tmp_path):
    """split.valid_users (RecTools' protocol): sampled users validate as before, the others train on their
    validation target too; nobody ever trains on a test target and the test set is unchanged."""
    data = unique_item_log(tmp_path, lengths=(3, 4, 9, 12, 5, 6))
    full = leave_one_out(data)
    cfg = OmegaConf.create({"name": "leave_one_out", "valid_users": 2, "valid_seed": 0})
    split = make_split(data, cfg)
    sampled = set(split.valid.users.tolist())
    assert len(sampled) == 2 and split.name == "leave_one_out"
    assert np.array_equal(split.test.targets, full.test.targets)
    assert np.array_equal(split.test.history_end, full.test.history_end)
    for row, u in enumerate(split.valid.users):
        assert split.valid.targets[row] == data.sequence(u)[-2]
    for u in range(data.n_users):
        seq = list(data.sequence(u))
        trained = list(data.items[split.train_start[u] : split.train_end[u]])
        assert trained == (seq[:-2] if u in sampled else seq[:-1])
    train = train_tensors(data, split, max_len=12)
    inputs, targets = NextItemObjective().training_pair(train.windows, mask_index=99)
    trained_on = set(inputs[inputs > 0].tolist()) | set(targets[targets > 0].tolist())
    assert not trained_on & set(split.test.targets.tolist())  # no test target is ever trained on
    assert not trained_on & set(split.valid.targets.tolist())  # nor a sampled user's validation target
    assert trained_on & (set(full.valid.targets.tolist()) - set(split.valid.targets.tolist()))
    again = make_split(data, cfg)
    assert np.array_equal(again.valid.users, split.valid.users)  # seeded: the same sample every run
    samples = {tuple(make_split(data, OmegaConf.merge(cfg, {"valid_seed": s})).valid.users) for s in range(8)}
    assert len(samples) > 1  # the seed chooses the sample
    everyone = make_split(data, OmegaConf.merge(cfg, {"valid_users": 100}))  # more than there are: all users
    assert np.array_equal(everyone.train_end, full.train_end) and len(everyone.valid) == data.n_users


def test_valid_users_with_target_behaviors_samples_among_the_evaluated_users(tmp_path):
    """With split.target_behaviors, validation and test targets are the user's last two marked events; users
    outside the sample train up to (not including) their test target, users never evaluated on everything."""
    from test_temporal_splits import _random_log

    from seqexp.data.features import target_mask

    data = _random_log(tmp_path, behaviors=True)
    is_buy = target_mask(data, ["buy"])
    full = make_split(data, OmegaConf.create({"name": "leave_one_out"}), is_buy)
    split = make_split(data, OmegaConf.create({"name": "leave_one_out", "valid_users": 3}), is_buy)
    assert len(split.valid) == 3 and set(split.valid.users) <= set(full.valid.users)
    assert np.array_equal(split.test.users, full.test.users)
    test_end = dict(zip(full.test.users.tolist(), full.test.history_end.tolist(), strict=True))
    for u in range(data.n_users):
        if u in set(split.valid.users.tolist()) or u not in test_end:
            assert split.train_end[u] == full.train_end[u]  # sampled, or never evaluated (trains on all)
        else:
            assert split.train_end[u] == test_end[u] > full.train_end[u]
            assert is_buy[full.valid.history_end[list(full.valid.users).index(u)]]  # a buy it now trains on


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", r"split.valid_users=0 must be a positive number"),
        ("0.5", r"split.valid_users=0.5 is not a whole number"),
        ("true", r"split.valid_users=True is not a whole number"),
        ("all", r"split.valid_users='all' is not a whole number"),
    ],
)
def test_valid_users_must_be_a_positive_whole_number(tmp_path, value, message):
    from seqexp.app.config_checks import check_config

    with pytest.raises(ConfigError, match=message):  # checked before any work starts
        check_config(compose_train(tmp_path, *TINY, f"split.valid_users={value}"), [])
    data = unique_item_log(tmp_path)  # and by the split itself, for callers of the Python API
    with pytest.raises(ValueError, match=r"split.valid_users=0 must be a positive number"):
        make_split(data, OmegaConf.create({"name": "leave_one_out", "valid_users": 0}))


def test_valid_users_is_refused_where_it_means_nothing(tmp_path):
    data = unique_item_log(tmp_path)
    with pytest.raises(ValueError, match=r"applies to split=leave_one_out only.*remove split.valid_users"):
        make_split(data, OmegaConf.create({"name": "temporal", "valid_users": 2}))


def test_a_run_with_valid_users_validates_on_the_sample_and_records_it(tmp_path):
    _, objects = train(compose_train(tmp_path, *TINY, "split.valid_users=25", "split.valid_seed=3"))
    res, split, data = objects["results"], objects["split"], objects["data"]
    assert res["protocol"]["eval_cases"] == {"valid": 25, "test": data.n_users}
    assert res["protocol"]["split_config"]["valid_users"] == 25 and res["protocol"]["split_config"]["valid_seed"] == 3
    longer = np.flatnonzero(split.train_end == split.test.history_end)  # users who train on their validation target
    assert len(longer) == data.n_users - 25 and not set(longer) & set(split.valid.users.tolist())
    with pytest.raises(ConfigError, match=r"split.valid_users=-1 must be a positive number"):
        train(compose_train(tmp_path / "bad", *TINY, "split.valid_users=-1"))
    with pytest.raises(ConfigError, match=r"split.valid_users=25 and eval.sample_users=10 both choose.*set one"):
        train(compose_train(tmp_path / "both", *TINY, "split.valid_users=25", "eval.sample_users=10"))
    with pytest.raises(ConfigError, match=r"applies to split=leave_one_out only.*remove split.valid_users"):
        train(compose_train(tmp_path / "temporal", *TINY, "split=temporal", "split.valid_users=25"))


def test_windows_are_left_padded_and_keep_the_most_recent_events():
    flat = np.arange(1, 11)
    w = left_padded_windows(flat, np.array([0, 2]), np.array([2, 9]), 4)
    np.testing.assert_array_equal(w, [[0, 0, 1, 2], [6, 7, 8, 9]])


def test_train_windows_shift_targets_and_stride_covers_long_histories(tmp_path):
    data = unique_item_log(tmp_path, lengths=(12,))
    split = leave_one_out(data)  # trains on items 1..10
    one = train_tensors(data, split, max_len=4)
    np.testing.assert_array_equal(one.windows.numpy(), [[6, 7, 8, 9, 10]])
    inputs, targets = NextItemObjective().training_pair(one.windows, mask_index=99)
    assert inputs.tolist() == [[6, 7, 8, 9]] and targets.tolist() == [[7, 8, 9, 10]]
    strided = train_tensors(data, split, max_len=4, stride=4)
    assert strided.windows.tolist() == [[6, 7, 8, 9, 10], [2, 3, 4, 5, 6], [0, 0, 0, 1, 2]]
    assert strided.n_targets == 4 + 4 + 1
    inputs, targets = NextItemObjective().training_pair(strided.windows, mask_index=99)
    assert targets[2].tolist() == [0, 0, 0, 2]  # no target where the input is padding


def test_eval_tensors_carry_the_full_history_for_filtering(tmp_path):
    data = unique_item_log(tmp_path, lengths=(9,))
    test = eval_tensors(data, leave_one_out(data).test, max_len=3)
    inputs, targets, rows, cols = test.slice(0, 1)
    assert inputs.tolist() == [[6, 7, 8]] and targets.tolist() == [9]
    assert cols.tolist() == list(range(1, 9)) and rows.tolist() == [0] * 8  # beyond the window too


def test_ranges_to_index():
    np.testing.assert_array_equal(ranges_to_index(np.array([5, 0, 9]), np.array([2, 0, 3])), [5, 6, 9, 10, 11])
    assert ranges_to_index(np.array([1]), np.array([0])).dtype == np.int64
    assert torch.equal(torch.from_numpy(ranges_to_index(np.array([3]), np.array([1]))), torch.tensor([3]))
