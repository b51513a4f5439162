"""The embedded synthetic log: one file per generator setting, never a log of other settings than the run records
(formerly only n_users, n_items and seed named the file, and a p_follow sweep trained every job on one log)."""

from __future__ import annotations

import json
import logging

import pytest

from conftest import compose_train
from seqexp.app.train import train
from seqexp.data.synthetic import ensure_synthetic_log, generate_log, synthetic_file_name
from seqexp.errors import ConfigError

SMALL = {"n_users": 30, "n_items": 20, "mean_events": 5, "seed": 0}


def _csv(settings: dict) -> bytes:
    return generate_log(**settings).to_csv(index=False).encode()


def test_every_generator_setting_names_its_own_file(tmp_path):
    default = compose_train(tmp_path, "logger=none")
    assert default.data.path.endswith("/synthetic/taobao_like_u2000_i1000_s0.csv")  # unchanged for the defaults
    paths = {compose_train(tmp_path, "logger=none", f"data.generate.p_follow={p}").data.path for p in (0.3, 0.5, 0.7)}
    assert len(paths) == 3 and default.data.path in paths  # 0.7 is the default
    assert synthetic_file_name({**SMALL, "mean_events": 5.0}) == synthetic_file_name(SMALL)  # 5 and 5.0: one value
    assert synthetic_file_name({**SMALL, "p_follow": 0.7}) == synthetic_file_name(SMALL)  # the default, written out
    assert synthetic_file_name({**SMALL, "zipf_a": 1.3}) != synthetic_file_name(SMALL)


def test_a_file_of_other_settings_is_moved_aside_and_written_again(tmp_path, caplog):
    path = tmp_path / "log.csv"
    ensure_synthetic_log(path, **SMALL)
    assert path.read_bytes() == _csv(SMALL)
    assert json.loads((tmp_path / "log.csv.params.json").read_text())["p_follow"] == 0.7
    with caplog.at_level(logging.WARNING):
        ensure_synthetic_log(path, **SMALL, p_follow=0.2)
    assert path.read_bytes() == _csv({**SMALL, "p_follow": 0.2}) != _csv(SMALL)
    (aside,) = tmp_path.glob("log.replaced-*.csv")
    assert aside.read_bytes() == _csv(SMALL)  # nothing is deleted
    assert "generated with other data.generate settings" in caplog.text


def test_a_file_from_before_the_settings_were_recorded_is_kept_only_when_these_settings_reproduce_it(tmp_path):
    same, other = tmp_path / "same.csv", tmp_path / "other.csv"
    same.write_bytes(_csv(SMALL))
    other.write_bytes(_csv({**SMALL, "p_follow": 0.2}))  # what a p_follow=0.2 run used to leave under the name
    mtime = same.stat().st_mtime_ns
    ensure_synthetic_log(same, **SMALL)
    ensure_synthetic_log(other, **SMALL)
    assert same.stat().st_mtime_ns == mtime and (tmp_path / "same.csv.params.json").exists()
    assert other.read_bytes() == _csv(SMALL) and len(list(tmp_path.glob("other.replaced-*.csv"))) == 1


def test_an_unknown_generator_setting_is_one_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"data.generate.p_folow is not a setting of the synthetic log; .*p_follow"):
        train(compose_train(tmp_path, "logger=none", "+data.generate.p_folow=0.3"))
    assert not (tmp_path / "data").exists()  # refused before any log was written
