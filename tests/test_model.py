"""The LSTM encoder and the recommender around it: padding, causality, objective pairing, checkpoints."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from omegaconf import OmegaConf

from conftest import CONF_DIR
from seqexp.errors import CheckpointError, ConfigError
from seqexp.model.encoders.base import SequenceEncoder
from seqexp.model.encoders.rnn import LSTMEncoder
from seqexp.model.objectives import NextItemObjective
from seqexp.model.recommender import SequenceRecommender, build_model
from seqexp.training.checkpoint import load_checkpoint, save_checkpoint


def _lstm_model(n_items=30, d=16, dropout=0.0):
    torch.manual_seed(0)
    return SequenceRecommender(n_items, LSTMEncoder(d, 2, dropout), NextItemObjective(), init_std=1.0).eval()


def test_left_padding_does_not_change_outputs_at_real_positions():
    model = _lstm_model()
    seq = torch.tensor([[3, 9, 4, 17]])
    short = model.encode(seq)  # (1, 4, D)
    padded = model.encode(torch.tensor([[0, 0, 0, 3, 9, 4, 17]]))  # (1, 7, D)
    torch.testing.assert_close(padded[:, 3:], short, rtol=1e-5, atol=1e-6)
    assert torch.all(padded[:, :3] == 0) and torch.isfinite(padded).all()


def test_rows_of_a_batch_are_independent_of_each_others_padding():
    model = _lstm_model()
    batch = torch.tensor([[0, 0, 5, 6], [1, 2, 3, 4]])
    alone = model.encode(torch.tensor([[5, 6]]))
    torch.testing.assert_close(model.encode(batch)[0, 2:], alone[0], rtol=1e-5, atol=1e-6)


def test_causal_a_later_item_does_not_change_earlier_outputs():
    model = _lstm_model()
    a = model.encode(torch.tensor([[0, 4, 5, 6, 7]]))
    b = model.encode(torch.tensor([[0, 4, 5, 6, 20]]))
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4], b[:, 4])


def test_scores_cover_the_catalogue_and_skip_the_mask_row():
    model = _lstm_model(n_items=30)
    assert model.score(torch.tensor([[0, 1, 2], [3, 4, 5]])).shape == (2, 31)
    assert model.item_embedding.num_embeddings == 32  # padding + 30 items + [MASK]


class _Bidirectional(SequenceEncoder):
    causal: ClassVar[bool] = False

    def forward(self, x, padding_mask):
        return x


def test_wrong_objective_encoder_pair_is_refused_with_a_clear_message():
    with pytest.raises(ConfigError, match="needs a causal encoder, but _Bidirectional is bidirectional"):
        SequenceRecommender(10, _Bidirectional(8), NextItemObjective())
    with pytest.raises(ConfigError, match="not a SequenceEncoder"):
        SequenceRecommender(10, torch.nn.Identity(), NextItemObjective())


def test_a_tiny_batch_is_overfit():
    model = _lstm_model(n_items=12).train()
    windows = torch.tensor([[0, 1, 2, 3, 4, 5], [7, 8, 9, 10, 11, 12], [0, 0, 3, 1, 4, 1]])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(80):
        loss = model(*model.training_batch(windows))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]


def test_model_builds_from_the_shipped_yaml():
    cfg = OmegaConf.load(CONF_DIR / "model" / "lstm.yaml")
    cfg.embedding_dim = cfg.encoder.hidden_size = 8  # the YAML interpolates ${model.embedding_dim}; resolve by hand
    model = build_model(cfg, n_items=5)
    assert isinstance(model.encoder, LSTMEncoder) and model.encoder.rnn.num_layers == 2
    with pytest.raises(ConfigError, match=r"model.encoder._target_"):
        build_model(OmegaConf.create({"objective": {"_target_": "seqexp.model.objectives.NextItemObjective"}}), 5)


class _Identity(SequenceEncoder):
    """Returns its inputs: shows exactly what the recommender feeds an encoder."""

    causal: ClassVar[bool] = True

    def forward(self, x, padding_mask):  # (B, L, D), (B, L)
        return x


def test_scale_embeddings_multiplies_the_encoder_input_by_sqrt_d_but_not_the_output_table():
    torch.manual_seed(0)
    plain = SequenceRecommender(12, _Identity(16), NextItemObjective())
    torch.manual_seed(0)
    scaled = SequenceRecommender(12, _Identity(16), NextItemObjective(), scale_embeddings=True)
    seq = torch.tensor([[0, 3, 9, 4]])
    torch.testing.assert_close(scaled.encode(seq), 4.0 * plain.encode(seq))  # sqrt(16) = 4
    torch.testing.assert_close(scaled.item_table(), plain.item_table())  # the scores' item vectors stay unscaled
    assert torch.all(scaled.encode(seq)[0, 0] == 0)  # padding stays zero
    cfg = OmegaConf.load(CONF_DIR / "model" / "sasrec.yaml")
    assert cfg.scale_embeddings is False  # shipped default: off (tuning_beauty.md)
    cfg.encoder, cfg.embedding_dim = {"_target_": f"{__name__}._Identity", "hidden_size": 16}, 16
    cfg.scale_embeddings = True
    assert build_model(cfg, n_items=12).input_scale == 4.0


def test_checkpoint_round_trip_gives_identical_scores_and_bad_files_are_explained(tmp_path):
    model = _lstm_model()
    path = tmp_path / "best.pt"
    save_checkpoint(path, model.state_dict(), item_ids=["a", "b"], epoch=3)
    ckpt = load_checkpoint(path)
    fresh = SequenceRecommender(30, LSTMEncoder(16, 2, 0.0), NextItemObjective()).eval()
    fresh.load_state_dict(ckpt["state_dict"])
    history = torch.tensor([[0, 4, 8, 15]])
    assert torch.equal(fresh.score(history), model.score(history))
    assert ckpt["item_ids"] == ["a", "b"] and ckpt["epoch"] == 3
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a seqexp checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
