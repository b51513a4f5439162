"""Pretrained item representations: item2vec without leakage, text vectors from a tiny local model, cold
items recommended through their text, and the export of user and item vectors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import TINY, compose_train, unique_item_log, write_log
from seqexp.app.export import export_run
from seqexp.app.recommend import Recommender
from seqexp.app.train import train
from seqexp.data.splits import leave_one_out
from seqexp.model.item_init.item2vec import item2vec_vectors, training_sentences
from seqexp.model.item_init.text import encode_texts

pytest.importorskip("gensim")


@pytest.fixture(scope="module")
def tiny_text_model(tmp_path_factory):
    """A small random BertModel and a word-level tokenizer, saved like any local model folder."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "genre", "|", "drama", "comedy"] + [
        f"g{i}" for i in range(12)
    ]
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(words)})
    assert tokenizer("genre g0")["input_ids"] == [2, 5, 9, 3]  # real tokens, not [UNK]
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    BertModel(config).save_pretrained(folder)
    return folder


def test_item2vec_reads_training_events_only(tmp_path):
    data = unique_item_log(tmp_path, lengths=(5, 6, 7, 8, 9, 10))
    split = leave_one_out(data)
    tokens = {int(t) for sentence in training_sentences(data, split) for t in sentence}
    held_out = set(split.valid.targets.tolist()) | set(split.test.targets.tolist())
    assert tokens and not tokens & held_out
    vectors, trained = item2vec_vectors(data, split, 8, {"epochs": 2}, seed=0, cache_dir=tmp_path / "c")
    assert vectors.shape == (data.n_items + 1, 8) and not trained[list(held_out)].any()
    assert np.all(vectors[list(held_out)] == 0) and trained[list(tokens)].all()
    again, _ = item2vec_vectors(data, split, 8, {"epochs": 2}, seed=0, cache_dir=tmp_path / "c")  # from the cache
    np.testing.assert_array_equal(vectors, again)


def test_text_vectors_are_mean_pooled_normalised_and_equal_for_equal_text(tiny_text_model, tmp_path):
    texts = ["genre g0 | drama", "genre g1 | comedy", "genre g0 | drama", ""]
    v = encode_texts(texts, tiny_text_model, batch_size=2, cache_dir=tmp_path)
    assert v.shape == (4, 16)
    np.testing.assert_allclose(np.linalg.norm(v[:3], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(v[0], v[2], rtol=1e-6)  # equal text, equal vector
    assert not np.allclose(v[0], v[1])  # different text, different vector
    assert np.all(v[3] == 0)  # no text, no vector


def test_text_vectors_follow_the_model_saved_in_the_folder_not_its_path(tiny_text_model, tmp_path):
    """Formerly keyed by the folder's path: a model saved again in the same folder was served the old vectors."""
    import shutil

    from transformers import BertConfig, BertModel

    folder = tmp_path / "model"
    shutil.copytree(tiny_text_model, folder)
    texts = ["genre g0 | drama", "genre g1 | comedy"]
    before = encode_texts(texts, folder, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(encode_texts(texts, folder, cache_dir=tmp_path / "cache"), before)  # cached
    torch.manual_seed(1)
    config = BertConfig.from_pretrained(folder)
    BertModel(config).save_pretrained(folder)  # other weights, same path
    after = encode_texts(texts, folder, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(after, encode_texts(texts, folder))  # the new model's vectors (uncached run)
    assert not np.allclose(after, before)


def test_a_cut_off_cache_entry_is_computed_again_with_a_warning(tiny_text_model, tmp_path, caplog):
    """Formerly np.load's BadZipFile / ValueError traceback on every later run."""
    data = unique_item_log(tmp_path, lengths=(5, 6, 7, 8, 9, 10))
    split = leave_one_out(data)
    vectors, _ = item2vec_vectors(data, split, 8, {"epochs": 2}, seed=0, cache_dir=tmp_path / "c")
    texts = ["genre g0 | drama", "genre g1 | comedy"]
    encoded = encode_texts(texts, tiny_text_model, cache_dir=tmp_path / "c")
    for entry in (*(tmp_path / "c" / "item2vec").iterdir(), *(tmp_path / "c" / "text_vectors").iterdir()):
        entry.write_bytes(entry.read_bytes()[:100])  # a kill mid-write
    again, _ = item2vec_vectors(data, split, 8, {"epochs": 2}, seed=0, cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(again, vectors)
    np.testing.assert_array_equal(encode_texts(texts, tiny_text_model, cache_dir=tmp_path / "c"), encoded)
    assert caplog.text.count("are unreadable") == 2 and "computing them again" in caplog.text
    assert not list((tmp_path / "c").rglob("*.tmp"))  # written whole, by rename


def _genre_log(tmp_path):
    """10 genres x 3 items; each user cycles through one genre. Item 'cold' (text of genre g0) occurs only as
    the last event of one g0 user: in the catalogue, never in training."""
    rows, t = [], 0
    for u in range(40):
        g = u % 10
        for k in range(9):
            t += 1
            rows.append((f"u{u}", f"g{g}_{k % 3}", t))
    rows.append(("u0", "cold", t + 1))
    log = write_log(tmp_path / "log.csv", rows)
    items = [(f"g{g}_{k}", f"genre g{g}") for g in range(10) for k in range(3)] + [("cold", "genre g0")]
    pd.DataFrame(items, columns=["item_id", "title"]).to_csv(tmp_path / "items.csv", index=False)
    return log


def _train_genres(tmp_path, *extra):
    tmp_path.mkdir(parents=True, exist_ok=True)
    log = _genre_log(tmp_path)
    cfg = compose_train(
        tmp_path,
        *[o for o in TINY if not o.startswith("data.generate")],
        "data=csv",
        f"data.path={log}",
        "data.columns.behavior=null",
        f"data.item_side.file={tmp_path / 'items.csv'}",
        "data.item_side.columns=[title]",
        "trainer.max_epochs=40",
        "model.embedding_dim=32",
        "model.optimizer.lr=1e-2",
        *extra,
    )
    metrics, objects = train(cfg)
    return cfg, objects


def test_cold_items_are_recommended_through_their_text(tiny_text_model, tmp_path):
    history = ["g0_0", "g0_1", "g0_2"]
    cfg, objects = _train_genres(
        tmp_path / "text", "model.item_init=text", f"pretrained.text.model_dir={tiny_text_model}"
    )
    assert objects["results"]["protocol"]["item_init"]["mode"] == "side"
    recs = [r.item_id for r in Recommender.from_run(cfg.paths.output_dir).recommend([history], k=3)[0]]
    assert "cold" in recs  # its text says g0, like the history: it is recommended without any training event
    cfg_r, _ = _train_genres(tmp_path / "random")
    ranked = [r.item_id for r in Recommender.from_run(cfg_r.paths.output_dir).recommend([history], k=28)[0]]
    assert ranked.index("cold") > recs.index("cold")  # a random vector gives it no such place


def test_item2vec_init_trains_and_export_round_trips_ids_and_shapes(tmp_path):
    cfg, objects = _train_genres(tmp_path, "model.item_init=item2vec", "pretrained.freeze=true")
    model, data = objects["model"], objects["data"]
    info = objects["results"]["protocol"]["item_init"]
    assert info["kind"] == "item2vec" and info["frozen"] and info["items_initialised"] == 30  # not 'cold'
    assert not model.item_embedding.weight.requires_grad
    out = export_run(cfg.paths.output_dir)
    users, items = pd.read_parquet(out / "users.parquet"), pd.read_parquet(out / "items.parquet")
    assert users["user_id"].tolist() == list(data.user_ids) and items["item_id"].tolist() == list(data.item_ids)
    U, V = np.stack(users["vector"].to_numpy()), np.stack(items["vector"].to_numpy())
    assert U.shape == (data.n_users, 32) and V.shape == (data.n_items, 32) and U.dtype == np.float32
    np.testing.assert_allclose(V, model.item_table()[1:].detach().numpy(), rtol=1e-6)
    # a user's exported vector scores like the model does on the user's latest events
    seq = torch.from_numpy(data.sequence(3)[-int(cfg.data.max_len) :])[None]
    expected = model.score(seq)[0, 1:].numpy()
    np.testing.assert_allclose(U[3] @ V.T, expected, rtol=1e-4, atol=1e-5)


def test_a_text_run_resumed_with_another_item_table_or_columns_is_refused(tiny_text_model, tmp_path):
    """Formerly it resumed: training went on with the old text's vectors while results.json recorded the new
    columns (and an edited table went unnoticed: the data fingerprint covers the log only)."""
    from seqexp.errors import ResumeMismatch

    text = ("model.item_init=text", f"pretrained.text.model_dir={tiny_text_model}", "trainer.max_epochs=1")
    _train_genres(tmp_path, *text)
    edited = tmp_path / "edited.csv"  # _train_genres writes items.csv afresh each time
    items = pd.read_csv(tmp_path / "items.csv").assign(tag="drama")
    items.to_csv(edited, index=False)  # the same titles, and a new column
    again = (*text[:2], "trainer.max_epochs=2", "trainer.resume=true", f"data.item_side.file={edited}")
    with pytest.raises(ResumeMismatch, match=r"data.item_side.columns=\['title'\], this command has .*'tag'\]"):
        _train_genres(tmp_path, *again, "data.item_side.columns=[title,tag]")
    items.assign(title=items.title.str.replace("g1", "g2")).to_csv(edited, index=False)
    with pytest.raises(
        ResumeMismatch, match=r"was trained on other item table values \(data.item_side.file was edited"
    ):
        _train_genres(tmp_path, *again)
    items.to_csv(edited, index=False)  # the titles it trained with, from another file: resumed
    _, objects = _train_genres(tmp_path, *again)
    assert objects["results"]["training"]["epochs_run"] == 2


def test_a_max_length_beyond_the_models_positions_is_one_line(tiny_text_model):
    from seqexp.errors import ConfigError

    long_text = ["genre " * 600]  # formerly torch's "The size of tensor a (513) must match ... (512)" traceback
    with pytest.raises(ConfigError, match=r"pretrained.text.max_length=513 is longer than the 512 tokens the model"):
        encode_texts(long_text, tiny_text_model, max_length=513)
    assert encode_texts(long_text, tiny_text_model, max_length=512).shape == (1, 16)


def test_text_columns_outside_the_item_side_columns_are_refused_before_the_data_step(tmp_path):
    from seqexp.errors import ConfigError

    with pytest.raises(ConfigError, match=r"pretrained.text.columns \['genre'\] are not in data.item_side.columns"):
        _train_genres(tmp_path, "model.item_init=text", "pretrained.text.columns=[genre]")
    assert not (tmp_path / "run" / "checkpoints").exists()
