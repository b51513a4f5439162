"""Config values a bad-input hunt found ending in a traceback or read silently wrong (session 14): each is one
ConfigError naming the key and the fix, raised before any data is read or generated."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import TINY, compose_train
from seqexp.app.resume import check_same_run, run_identity
from seqexp.app.train import train
from seqexp.errors import ConfigError, ResumeMismatch


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("seed=-1", "seed=-1 must be >= 0; seeds run from 0 to 4294967295"),
        ("seed=4294967296", "seed=4294967296 must be <= 4294967295"),
        ("trainer.num_threads=-1", "trainer.num_threads=-1 must be >= 1; set null for torch's default"),
        ("trainer.num_threads=abc", "trainer.num_threads='abc' is not a whole number"),
        ("model.embedding_dim=abc", "model.embedding_dim='abc' is not a number"),
        ("model.embedding_dim=16.5", "model.embedding_dim=16.5 must be a whole number"),
        ("model.embedding_dim=0", "model.embedding_dim=0 must be >= 1"),
        ("model.init_std=-1", "model.init_std=-1 must be > 0"),
        ("model.embedding_dropout=2", "model.embedding_dropout=2 must be >= 0 and < 1"),
        ("model.optimizer.weight_decay=-1", "model.optimizer.weight_decay=-1 must be >= 0"),
        (
            "model.optimizer._target_=torch.optim.Adamw",
            "model.optimizer._target_=torch.optim.Adamw: torch.optim has no 'Adamw'; did you mean torch.optim.AdamW?",
        ),
        (
            "model.encoder._target_=seqexp.model.encoders.rnn.LSTMEncodr",
            "seqexp.model.encoders.rnn has no 'LSTMEncodr'; did you mean seqexp.model.encoders.rnn.LSTMEncoder or",
        ),
        (
            "model.encoder._target_=my_encoders.Fancy",
            "model.encoder._target_=my_encoders.Fancy: module my_encoders cannot be imported (not on the Python path)",
        ),
        ("data.header=no", "data.header='no' must be true or false"),
        ("data.min_item_count=abc", "data.min_item_count='abc' is not a whole number"),
        ("data.min_item_count=0", "data.min_item_count=0 must be >= 1"),
        ("data.max_invalid_fraction=abc", "data.max_invalid_fraction='abc' is not a number"),
        ("data.max_invalid_fraction=1.5", "data.max_invalid_fraction=1.5 must be a fraction between 0 and 1"),
        ("data.generate.n_users=0", "data.generate.n_users=0 must be >= 1"),
        ("data.generate.p_follow=2", "data.generate.p_follow=2 must be a fraction between 0 and 1"),
        ("data.behaviors=buy", "data.behaviors='buy' must be a list (or null): write data.behaviors=[buy]"),
        ("split.target_behaviors=buy", "write split.target_behaviors=[buy]"),
        ("model.features=time_gap", "write model.features=[time_gap]"),
        ("eval.ks=10", "write eval.ks=[10]"),
    ],
)
def test_a_bad_value_is_one_config_error_before_any_data_is_read(tmp_path, override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        train(compose_train(tmp_path, *TINY, override))
    assert not (tmp_path / "data").exists()  # refused before the synthetic log was generated


def test_the_model_encoder_activation_is_checked_by_the_encoder(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("model.encoder.activation='swish2' is not an activation")):
        train(compose_train(tmp_path, *TINY, "model=sasrec", "model.encoder.activation=swish2"))


def _seqexp_train(tmp_path, *overrides: str) -> subprocess.CompletedProcess:
    """`seqexp-train` in a subprocess (the path a user's command takes: Hydra's overrides, main's one line)."""
    return subprocess.run(
        [sys.executable, "-m", "seqexp.app.train", *TINY, *overrides, f"hydra.run.dir={tmp_path / 'run'}",
         f"paths.data_dir={tmp_path / 'data'}"],
        capture_output=True, text=True,
    )  # fmt: skip


def test_the_cli_prints_one_line_for_a_typo_in_a_target(tmp_path):
    run = _seqexp_train(tmp_path, "model.optimizer._target_=torch.optim.Adamw")
    assert run.returncode == 2
    assert "seqexp: error: model.optimizer._target_=torch.optim.Adamw" in run.stderr
    assert "Traceback" not in run.stderr


def test_good_values_still_train(tmp_path):
    metrics, _ = train(
        compose_train(
            tmp_path, *TINY, "seed=4294967295", "data.behaviors=[pv,cart,fav,buy]", "data.max_invalid_fraction=0",
            "model.optimizer.weight_decay=0", "trainer.max_epochs=1",
        )
    )  # fmt: skip
    assert 0.0 <= metrics["test/ndcg@10"] <= 1.0


def _identity(tmp_path, *overrides: str) -> dict:
    return run_identity(compose_train(tmp_path, *overrides), "f" * 64, list(overrides), "no", 1.0)


def test_a_resume_may_change_the_item_chunk_but_not_pretrained_settings_in_use(tmp_path):
    saved = {"identity": _identity(tmp_path, "model.item_init=item2vec")}
    check_same_run(saved, _identity(tmp_path, "model.item_init=item2vec", "eval.item_chunk=100"), tmp_path / "l.pt")
    check_same_run(saved, _identity(tmp_path, "model.item_init=item2vec", "pretrained.text.batch_size=8"), tmp_path)
    with pytest.raises(ResumeMismatch, match=r"pretrained.item2vec.window=5, this command has .*window=3"):
        check_same_run(saved, _identity(tmp_path, "model.item_init=item2vec", "pretrained.item2vec.window=3"), tmp_path)


def test_pretrained_settings_do_not_bind_a_randomly_initialised_run_or_an_older_snapshot(tmp_path, caplog):
    check_same_run({"identity": _identity(tmp_path)}, _identity(tmp_path, "pretrained.freeze=true"), tmp_path)
    older = _identity(tmp_path, "model.item_init=item2vec")
    older["config"] = {k: v for k, v in older["config"].items() if not k.startswith("pretrained.")}
    check_same_run({"identity": older}, _identity(tmp_path, "model.item_init=item2vec"), tmp_path / "last.pt")
    assert "does not record" in caplog.text and "pretrained.item2vec.window" in caplog.text


def test_max_invalid_fraction_zero_allows_no_invalid_row(tmp_path):
    from conftest import data_cfg, write_log
    from seqexp.data.prepare import prepare
    from seqexp.errors import DataError

    rows = [(u, i, 100 + i) for u in range(1, 5) for i in range(1, 11)] + [(-1, 3, 500)]  # one negative user id
    log = write_log(tmp_path / "log.csv", rows)
    assert prepare(data_cfg(log, max_invalid_fraction=0.05), tmp_path / "cache").report.dropped("invalid_id") == 1
    with pytest.raises(DataError, match=r"rejects 1 of 41 rows, more than data.max_invalid_fraction=0.0"):
        prepare(data_cfg(log, max_invalid_fraction=0), tmp_path / "cache")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.item_init=item2vec", "pretrained.item2vec.window=0"], "pretrained.item2vec.window=0 must be >= 1"),
        (["model.item_init=item2vec", "pretrained.item2vec.epochs=-1"], "pretrained.item2vec.epochs=-1 must be >= 1"),
        (["model.item_init=item2vec", "pretrained.item2vec.negative=0"], "pretrained.item2vec.negative=0 must be"),
        (["model.item_init=text", "pretrained.text.batch_size=0"], "pretrained.text.batch_size=0 must be >= 1"),
        (["logger=wandb", "logger.tags=baseline"], "must be a list (or null): write logger.tags=[baseline]"),
        (["pretrained.text.columns=title"], "write pretrained.text.columns=[title]"),
        (["model.item_init=vectors.npy"], "model.item_init='vectors.npy': choose one of ['random', 'item2vec',"),
        (["model.item_init=item2vec", "pretrained.item2vec=null"], "pretrained.item2vec=null must hold the item2vec"),
        (["model.item_init=text", "pretrained.text.mode=sid"], "pretrained.text.mode='sid': use side or init"),
        (["model.item_init=text"], "model.item_init=text needs item text: set data.item_side.file"),
        (
            ["model.item_init=item2vec", "pretrained.freeze=true", "model.sparse_items=true", "+model/loss=sampled",
             "model.loss.num_negatives=8", "model.optimizer._target_=seqexp.model.sparse_items.SparseItemOptimizer"],
            "pretrained.freeze=true keeps the item table fixed, so model.sparse_items=true has no item gradient",
        ),
        (["eval.ks=[10,10.5]"], "eval.ks[1]=10.5 is not a whole number"),
        (["eval.ks=[5,10,10]"], "eval.ks=[5, 10, 10] lists a cut-off twice"),
        (
            ["model.sparse_items=true", "+model/loss=sampled", "model.loss.num_negatives=8",
             "model.optimizer._target_=seqexp.model.sparse_items.SparseItemOptimizer",
             "+model.optimizer.dense={_target_:torch.optim.SGD,_partial_:true}"],
            "model.optimizer.dense._target_=torch.optim.SGD: SparseItemOptimizer passes Adam's betas and eps",
        ),
        (
            ["model.sparse_items=true", "+model/loss=sampled", "model.loss.num_negatives=8",
             "model.optimizer._target_=seqexp.model.sparse_items.SparseItemOptimizer",
             "+model.optimizer.dense=torch.optim.AdamW"],
            "model.optimizer.dense=torch.optim.AdamW: give a partial optimiser class",
        ),
    ],
)  # fmt: skip
def test_pretrained_logger_eval_and_dense_optimizer_values_are_checked_before_any_work(tmp_path, overrides, message):
    """A second hunt: item2vec window=0 hung the run (gensim's worker died), the rest were tracebacks or silently
    wrong (tags split into letters, K=10.5 read as 10, SGD given Adam's betas)."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        train(compose_train(tmp_path, *TINY, *overrides))
    assert not (tmp_path / "data").exists()


def test_freezing_a_randomly_initialised_table_is_warned_about(tmp_path, caplog):
    from seqexp.app.model_checks import check_model

    check_model(compose_train(tmp_path, *TINY, "pretrained.freeze=true"))
    assert "pretrained.freeze=true applies to pretrained item vectors only" in caplog.text


def test_a_typo_inside_an_interpolation_on_the_command_line_is_one_line(tmp_path):
    run = _seqexp_train(tmp_path, "model.name=${data.nam}")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "seqexp: error: config key model.name does not resolve" in run.stderr


def test_a_text_model_folder_without_weights_is_one_config_error(tmp_path):
    from seqexp.model.item_init.text import encode_texts

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"pretrained.text.model_dir=.* is not a usable transformers model folder"):
        encode_texts(["a red shoe"], tmp_path)


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["logger=wandb", "logger.log_checkpoint=no"], "logger.log_checkpoint"),  # formerly uploaded the checkpoint
        (["data=movielens_100k", "data.train_stride=null", "data.download.enabled=no"], "data.download.enabled"),
    ],
)
def test_a_no_for_an_upload_or_a_download_is_refused_before_any_work(tmp_path, overrides, key):
    with pytest.raises(ConfigError, match=re.escape(f"{key}='no' must be true or false")):
        train(compose_train(tmp_path, *[o for o in TINY if not o.startswith("data.generate")], *overrides))
    assert not (tmp_path / "data").exists() and not (tmp_path / "run" / "wandb").exists()
