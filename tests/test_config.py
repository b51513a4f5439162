"""Every shipped config composes; train(cfg) runs in-process and is deterministic for a seed."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import CONF_DIR, TINY, compose_train
from seqexp.app.train import train
from seqexp.errors import ConfigError
from seqexp.model.loss_choice import FULL_SOFTMAX
from seqexp.tracking.trackers import NullTracker, WandbTracker


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml") if not p.stem.startswith("_"))  # _base: shared


@pytest.mark.parametrize("group", ["data", "split", "model", "trainer", "logger"])
def test_every_option_of_every_group_composes_and_resolves(tmp_path, group):
    for option in _options(group):
        extra = ["data.path=x.csv"] if (group, option) == ("data", "csv") else []
        cfg = compose_train(tmp_path, f"{group}={option}", *extra)
        OmegaConf.resolve(cfg)  # every interpolation resolves
        assert cfg.model.name and cfg.data.name and cfg.optimized_metric == "valid/ndcg@10"


def test_loggers_instantiate_to_trackers(tmp_path):
    assert isinstance(instantiate(compose_train(tmp_path, "logger=none").logger), NullTracker)
    tracker = instantiate(compose_train(tmp_path).logger)
    assert isinstance(tracker, WandbTracker) and tracker.mode == "offline"


def test_train_in_process_is_deterministic_for_a_seed(tmp_path):
    from seqexp.training.accelerator import cpu_runs_bf16_lstm

    cpu_runs_bf16_lstm.cache_clear()  # the first run of a process probes bf16 LSTMs (where auto picks bf16)
    before = torch.get_rng_state()
    cpu_runs_bf16_lstm()
    assert torch.equal(torch.get_rng_state(), before)  # formerly its weights came from the seeded stream
    cpu_runs_bf16_lstm.cache_clear()
    first, objects = train(compose_train(tmp_path / "a", *TINY))
    second, _ = train(compose_train(tmp_path / "b", *TINY))
    assert first == second  # same seed, same data, same numbers (CPU)
    assert set(first) >= {"valid/ndcg@10", "test/ndcg@10", "test/hr@20", "test/mrr@5"}
    assert objects["results"]["training"]["epochs_run"] == 2
    third, _ = train(compose_train(tmp_path / "c", *TINY, "seed=1"))
    assert third != first


def test_too_short_max_len_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"data.max_len=1"):
        train(compose_train(tmp_path, *TINY, "data.max_len=1"))


def test_sampled_softmax_trains_through_the_config(tmp_path):
    metrics, objects = train(
        compose_train(
            tmp_path, *TINY, "model=sasrec", "+model/loss=sampled", "model.loss.num_negatives=10",
            "model.loss.distribution=popularity",
        )
    )  # fmt: skip
    loss = objects["model"].loss
    assert type(loss).__name__ == "SampledSoftmax" and loss.num_negatives == 10 and loss.logq_correction
    assert loss.probs.shape == (objects["data"].n_items + 1,)
    assert all(0.0 <= v <= 1.0 for k, v in metrics.items() if k.split("/")[1].split("@")[0] in ("hr", "ndcg", "mrr"))
    preset = compose_train(tmp_path, "model=lstm", "+model/loss=sampled").model.loss  # any card takes it
    assert preset._target_ == "seqexp.model.losses.SampledSoftmax" and preset.num_negatives == 2048


def test_limit_train_batches_ends_each_epoch_early(tmp_path):
    _, objects = train(compose_train(tmp_path, *TINY, "model.batch_size=16", "trainer.limit_train_batches=3"))
    results = objects["results"]
    assert results["training"]["batches_per_epoch"] == 3  # as run (formerly the epoch's full count was recorded)
    assert [row["train/batches"] for row in results["history"]] == [3, 3]
    # 3 batches of 16 windows per epoch, counted as such in the throughput
    rows = results["history"][0]
    assert rows["train/sequences_per_second"] * rows["train/epoch_seconds"] == pytest.approx(48)


def test_ml100k_preset_reads_a_recbole_atomic_folder(tmp_path):
    from seqexp.data import load_data

    folder = tmp_path / "ml-100k"
    folder.mkdir()
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    lines += [f"{u}\t{i}\t{1 + (u + i) % 5}\t{881250949 + 10 * i + u}" for u in (196, 186, 22) for i in range(1, 6)]
    (folder / "ml-100k.inter").write_text("\n".join(lines) + "\n")
    cfg = compose_train(tmp_path, "data=ml100k", f"data.path={folder}", "data.item_side.file=null")
    data = load_data(cfg.data, cfg.paths.cache_dir)
    assert (data.n_users, data.n_items, data.n_events) == (3, 5, 15)
    assert sorted(data.user_ids) == ["186", "196", "22"]
    assert [data.item_ids[i - 1] for i in data.sequence(0)] == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize(
    ("preset", "filename", "text", "expected", "malformed_line"),
    [
        ("beauty", "beauty.txt", "1 1\n1 2\n2 3\n1 3\n2 1\n2 2\n7\n", {"1": ["1", "2", "3"], "2": ["3", "1", "2"]}, 7),
        (
            "taobao",
            "UserBehavior.csv",
            "".join(f"7,{10 + i},99,{'pv' if i % 3 else 'cart'},{1511544070 + i}\n" for i in range(25))
            + "7,99,98,pv,15",
            {"7": [str(10 + i) for i in range(25)]},
            None,
        ),  # a truncated last row ("...,pv,15", as in the rdav27_ slice) is dropped as bad_timestamp
        (
            "yoochoose",
            "yoochoose-clicks-100k_train_full.txt",
            "SessionId\tItemId\tTime\n3\t5\t1396437466.9\n3\t6\t1396437470.1\n3\t5\t1396437480.5\n4\t1\t2\t3\n",
            {"3": ["5", "6", "5"]},
            5,
        ),
    ],
)
def test_real_data_presets_read_their_format(tmp_path, preset, filename, text, expected, malformed_line):
    from seqexp.data import load_data

    folder = tmp_path / preset
    folder.mkdir()
    (folder / filename).write_text(text)
    cfg = compose_train(tmp_path, f"data={preset}", f"data.path={folder}", "data.max_invalid_fraction=0.5")
    data = load_data(cfg.data, cfg.paths.cache_dir)
    got = {data.user_ids[u]: [data.item_ids[i - 1] for i in data.sequence(u)] for u in range(data.n_users)}
    assert got == expected
    if preset == "taobao":  # the log itself is the item table: category ids as item text
        assert set(data.item_side["category_id"]) == {"99"}
    malformed = next(r for r in data.report.rules if r.rule == "malformed_row")
    assert malformed.dropped == (malformed_line is not None)  # a row with the wrong field count, counted ...
    assert [e["row"] for e in malformed.examples] == ([malformed_line] if malformed_line else [])  # ... at its line


def test_experiment_presets_hold_overrides_only_and_compose(tmp_path):
    for path in sorted((CONF_DIR / "experiment").glob("*.yaml")):
        assert path.read_text().startswith("# @package _global_"), path
    baseline = compose_train(tmp_path, "experiment=article_baseline")
    assert (baseline.model.name, baseline.data.name, baseline.trainer.patience) == ("lstm", "ml100k", 10)
    assert baseline.model.optimizer.lr == 1e-3  # the article's, not the card's
    assert compose_train(tmp_path, "model=lstm").model.optimizer.lr == 3e-3
    grid = compose_train(tmp_path, "experiment=compare_encoders")
    assert grid.trainer.max_epochs == 300 and grid.task_name == "compare_encoders"
    sweep = OmegaConf.load(CONF_DIR / "experiment" / "compare_encoders.yaml").hydra.sweeper.params
    cards = {p.stem for p in (CONF_DIR / "model").glob("*.yaml")}
    assert set(sweep.model.split(",")) == cards  # every shipped card is in the comparison
    sparse = compose_train(tmp_path, "experiment=sparse_catalogue", "data=beauty")
    card = compose_train(tmp_path, "model=sasrec", "data=beauty")
    assert (sparse.model.name, sparse.model.scale_embeddings, sparse.model.optimizer.lr) == ("sasrec", True, 1e-3)
    assert (sparse.model.encoder.dropout, card.model.encoder.dropout, card.model.scale_embeddings) == (0.1, 0.2, False)
    esasrec = compose_train(tmp_path, "experiment=sparse_catalogue_esasrec", "data=beauty")
    assert esasrec.model.name == "esasrec" and dict(esasrec.model.loss) == {"_target_": FULL_SOFTMAX}
    assert (esasrec.model.scale_embeddings, esasrec.model.encoder.final_norm) == (True, True)
    recipe = compose_train(tmp_path, "experiment=sparse_catalogue_bert4rec", "data=beauty")
    bert4rec = recipe.model
    assert (bert4rec.name, bert4rec.encoder.dropout, bert4rec.encoder.attention_dropout) == ("bert4rec", 0.1, 0.1)
    assert dict(bert4rec.loss) == {"_target_": FULL_SOFTMAX}  # the card's loss, untouched
    # the RecSys'23 BERT4Rec code's positions and masking (tuning_beauty.md); the card keeps its own (defaults_rank.md)
    card = compose_train(tmp_path, "model=bert4rec", "data=beauty").model
    assert (bert4rec.encoder.positions, card.encoder.positions) == ("from_start", "from_end")
    assert (bert4rec.objective.last_item_prob, bert4rec.objective.mask_last_if_none) == (0, False)
    assert (card.objective.last_item_prob, card.objective.mask_last_if_none) == (0.1, True)
    trainer = recipe.trainer
    assert (trainer.grad_clip, trainer.precision, trainer.patience) == (None, "no", 20)


def test_esasrec_takes_its_loss_from_the_loss_group(tmp_path):
    card = compose_train(tmp_path, "model=esasrec").model
    assert (card.loss.num_negatives, card.loss.per_position) == (256, True)
    assert (card.encoder.final_norm, card.encoder.initializer_range) == (True, 0.02)  # chosen in defaults_rank.md
    assert dict(compose_train(tmp_path, "model=esasrec", "model/loss=full").model.loss) == {"_target_": FULL_SOFTMAX}
    swapped = compose_train(tmp_path, "model=esasrec", "model/loss=sampled").model.loss  # replaced, not merged
    assert (swapped.num_negatives, swapped.per_position, swapped.logq_correction) == (2048, False, True)


def test_max_minutes_stops_after_the_epoch_that_spends_the_budget(tmp_path):
    _, objects = train(compose_train(tmp_path, *TINY, "trainer.max_epochs=5", "trainer.max_minutes=1e-6"))
    training = objects["results"]["training"]
    assert training["epochs_run"] == 1 and training["out_of_time"] and not training["stopped_early"]
    _, unlimited = train(compose_train(tmp_path / "b", *TINY))
    assert not unlimited["results"]["training"]["out_of_time"]


def test_a_run_resumed_after_spending_its_budget_trains_no_further_epoch(tmp_path):
    """Killed after its last snapshot (say, in the test evaluation): the same command resumed ends as it would have.
    Formerly the budget was checked only after an epoch, so the resume trained one more (and resume=auto one more
    at every relaunch)."""
    budget = [*TINY, "trainer.max_epochs=5", "trainer.max_minutes=1e-6"]
    metrics, first = train(compose_train(tmp_path, *budget))
    (tmp_path / "run" / "results.json").unlink()
    again, resumed = train(compose_train(tmp_path, *budget, "trainer.resume=true"))
    assert resumed["results"]["training"]["epochs_run"] == 1 and resumed["results"]["training"]["out_of_time"]
    assert again == metrics
    _, larger = train(compose_train(tmp_path, *TINY, "trainer.max_epochs=5", "trainer.resume=true",
                                    "trainer.max_minutes=100"))  # fmt: skip
    training = larger["results"]["training"]
    assert training["epochs_run"] > 1 and not training["out_of_time"]  # a larger budget continues it


def test_data_presets_share_one_base_and_hold_only_what_differs():
    """Every preset lists `defaults: [_base]` and repeats no value of conf/data/_base.yaml (issue #15)."""
    import yaml

    base = yaml.safe_load((CONF_DIR / "data" / "_base.yaml").read_text())
    for path in sorted((CONF_DIR / "data").glob("*.yaml")):
        if path.name == "_base.yaml":
            continue
        preset = yaml.safe_load(path.read_text())
        assert preset["defaults"] == ["_base"], path
        repeated = [k for k, v in preset.items() if k in base and k not in ("name", "path") and v == base[k]]
        repeated += [f"columns.{k}" for k, v in (preset.get("columns") or {}).items() if base["columns"].get(k) == v]
        assert repeated == [], f"{path.name} repeats the base's {repeated}"


def test_the_epoch_at_which_the_time_budget_ends_is_validated_whatever_eval_every(tmp_path):
    """Formerly only epochs divisible by eval_every (and max_epochs) were validated: a budget ending at epoch 1 with
    eval_every=3 left the run without any validation, reported as diverged ("lower model.optimizer.lr")."""
    _, objects = train(
        compose_train(tmp_path, *TINY, "trainer.max_epochs=10", "trainer.eval_every=3", "trainer.max_minutes=0.000001")
    )
    training = objects["results"]["training"]
    assert training["out_of_time"] is True and training["epochs_run"] == 1 and training["best_epoch"] == 1
