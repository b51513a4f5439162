"""eSASRec's LiGR layers (seqexp/model/encoders/ligr.py): the layer's maths against a reference built on
torch.nn.MultiheadAttention, the gates' limits, masking, causality, left padding, parameter count, errors.
The encoder contract (every conf/model/*.yaml, esasrec included) is in test_encoder_contract.py."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import compose_train
from seqexp.errors import ConfigError
from seqexp.model.encoders import transformer
from seqexp.model.encoders.base import positions_from_the_end
from seqexp.model.encoders.ligr import ESASRecEncoder, LiGRLayer, attention_mask
from seqexp.model.losses import SampledSoftmax
from seqexp.model.recommender import build_model

D, H, M = 8, 2, 3  # width, heads, feed-forward multiplier of the small layers below


def _layer(seed: int = 0, ff_bias: bool = False) -> LiGRLayer:
    torch.manual_seed(seed)
    layer = LiGRLayer(D, H, M, dropout=0.0, attention_dropout=0.0, ff_bias=ff_bias).eval()
    with torch.no_grad():  # non-trivial LayerNorm affine and biases, so that a wrong wiring shows
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return layer


def _reference(layer: LiGRLayer, x: torch.Tensor, gated: bool = True) -> torch.Tensor:
    """The LiGR equations written out on nn.MultiheadAttention with the layer's weights, causal, no padding:
    h' = h + sigmoid(G1 h) * MHA(LN1 h);  out = h' + sigmoid(G2 h') * W2(SiLU(W1 LN2 h') * W3 LN2 h').
    gated=False: the plain pre-LN Transformer block (both gates 1)."""
    mha = nn.MultiheadAttention(D, H, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(layer.attention.qkv.weight)
        mha.in_proj_bias.copy_(layer.attention.qkv.bias)
        mha.out_proj.weight.copy_(layer.attention.out.weight)
        mha.out_proj.bias.copy_(layer.attention.out.bias)
    L = x.shape[1]
    future = torch.ones(L, L, dtype=torch.bool).triu(1)  # True = may not attend
    ln1 = F.layer_norm(x, (D,), layer.attn_norm.weight, layer.attn_norm.bias, 1e-5)
    attn = mha(ln1, ln1, ln1, attn_mask=future, need_weights=False)[0]
    g1 = torch.sigmoid(x @ layer.attn_gate.weight.T + layer.attn_gate.bias) if gated else 1.0
    h = x + g1 * attn
    ln2 = F.layer_norm(h, (D,), layer.ff_norm.weight, layer.ff_norm.bias, 1e-5)
    ff_net = layer.feed_forward
    ff = ff_net.down_proj(F.silu(ff_net.gate_proj(ln2)) * ff_net.up_proj(ln2))
    g2 = torch.sigmoid(h @ layer.ff_gate.weight.T + layer.ff_gate.bias) if gated else 1.0
    return h + g2 * ff


def _all_real(B: int, L: int) -> torch.Tensor:
    return attention_mask(torch.ones(B, L, dtype=torch.bool))


@pytest.mark.parametrize("ff_bias", [False, True])
def test_layer_equals_the_ligr_equations_on_torch_multihead_attention(ff_bias):
    layer = _layer(ff_bias=ff_bias)
    torch.manual_seed(1)
    x = 3.0 * torch.randn(2, 6, D) + 1.0  # far from normalised: a gate that read LN(h) would differ
    with torch.no_grad():
        torch.testing.assert_close(layer(x, _all_real(2, 6)), _reference(layer, x), rtol=1e-5, atol=1e-5)


def test_closed_gates_make_the_layer_the_identity():
    layer = _layer()
    with torch.no_grad():
        for gate in (layer.attn_gate, layer.ff_gate):
            gate.weight.zero_()
            gate.bias.fill_(-200.0)  # sigmoid(-200) == 0 in float32
    x = torch.randn(2, 5, D)
    with torch.no_grad():
        assert torch.equal(layer(x, _all_real(2, 5)), x)


def test_open_gates_make_the_layer_a_pre_layernorm_transformer_block():
    layer = _layer()
    with torch.no_grad():
        for gate in (layer.attn_gate, layer.ff_gate):
            gate.weight.zero_()
            gate.bias.fill_(30.0)  # sigmoid(30) == 1 in float32
        x = torch.randn(2, 5, D)
        out = layer(x, _all_real(2, 5))
        torch.testing.assert_close(out, _reference(layer, x, gated=False), rtol=1e-5, atol=1e-5)
        assert not torch.allclose(out, x, atol=1e-3)  # and both branches do contribute


def test_attention_mask_is_causal_hides_padding_and_keeps_the_diagonal():
    mask = attention_mask(torch.tensor([[False, False, True, True]]))
    expected = torch.tensor(
        [
            [1, 0, 0, 0],  # padded query: only itself (finite, zeroed later)
            [0, 1, 0, 0],
            [0, 0, 1, 0],  # first real event: itself only, never the padding before it
            [0, 0, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert mask.shape == (1, 1, 4, 4) and torch.equal(mask[0, 0], expected)


def _encoder(**kw) -> ESASRecEncoder:
    torch.manual_seed(0)
    return ESASRecEncoder(hidden_size=D, num_heads=H, ff_multiplier=M, max_len=10, **kw).eval()


def test_output_at_t_ignores_later_events_and_padding_is_zero_and_finite():
    enc = _encoder()
    torch.manual_seed(2)
    x = torch.randn(1, 7, D)
    real = torch.tensor([[False, False, True, True, True, True, True]])
    y = x.clone()
    y[:, 5:] = torch.randn(1, 2, D)  # change the last two events
    with torch.no_grad():
        a, b = enc(x, real), enc(y, real)
        torch.testing.assert_close(a[:, :5], b[:, :5], rtol=0, atol=1e-6)
        assert not torch.allclose(a[:, 5:], b[:, 5:])
        assert torch.equal(a[:, :2], torch.zeros(1, 2, D))  # padded positions are zero
        all_padding = enc(torch.randn(1, 4, D), torch.zeros(1, 4, dtype=torch.bool))
    assert torch.isfinite(all_padding).all() and not all_padding.any()


def test_outputs_at_real_events_do_not_depend_on_the_amount_of_left_padding():
    enc = _encoder()
    torch.manual_seed(3)
    seq = torch.randn(1, 4, D)
    with torch.no_grad():
        alone = enc(seq, torch.ones(1, 4, dtype=torch.bool))
        for pad in (1, 3, 6):
            padded = torch.cat([torch.randn(1, pad, D), seq], dim=1)  # whatever sits in the padding
            real = torch.cat([torch.zeros(1, pad, dtype=torch.bool), torch.ones(1, 4, dtype=torch.bool)], dim=1)
            torch.testing.assert_close(enc(padded, real)[:, pad:], alone, rtol=1e-5, atol=1e-6)


def test_parameter_count_matches_a_hand_count():
    layers, max_len = 3, 10
    for ff_bias in (False, True):
        enc = ESASRecEncoder(D, layers, H, M, max_len=max_len, ff_bias=ff_bias)
        attention = 4 * D * D + 4 * D  # q, k, v, out projections with biases
        gates = 2 * (D * D + D)  # G1, g1 and G2, g2
        norms = 2 * 2 * D  # two LayerNorms, weight and bias
        swiglu = 3 * D * (M * D) + (2 * M * D + D) * ff_bias  # W1, W3 (D -> MD), W2 (MD -> D)
        expected = max_len * D + layers * (attention + gates + norms + swiglu)
        assert sum(p.numel() for p in enc.parameters()) == expected


def test_final_norm_layer_normalises_real_outputs_and_keeps_padding_zero():
    plain, normed = _encoder(), _encoder(final_norm=True)  # same seed: same layers, plus one LayerNorm
    torch.manual_seed(4)
    x = torch.randn(2, 5, D)
    real = torch.tensor([[False, False, True, True, True], [True, True, True, True, True]])
    with torch.no_grad():
        normed.final_norm.weight.fill_(2.0)
        normed.final_norm.bias.fill_(0.5)
        a, b = plain(x, real), normed(x, real)
    expected = F.layer_norm(a, (D,), eps=1e-5) * 2.0 + 0.5  # the plain encoder's output, normalised per position
    torch.testing.assert_close(b[real], expected[real], rtol=1e-5, atol=1e-5)
    assert not b[~real].any()  # padded positions stay zero (not the LayerNorm bias)
    assert sum(p.numel() for p in normed.parameters()) == sum(p.numel() for p in plain.parameters()) + 2 * D


def test_weight_matrices_are_xavier_normal_by_default_and_n_0_std_with_initializer_range():
    torch.manual_seed(0)
    width = 64  # big enough matrices for the sample std to sit within a few percent of the target
    xavier, normal = ESASRecEncoder(hidden_size=width), ESASRecEncoder(hidden_size=width, initializer_range=0.02)
    for enc, std_of in ((xavier, lambda w: (2.0 / sum(w.shape)) ** 0.5), (normal, lambda w: 0.02)):
        gate = enc.layers[0].attn_gate.weight  # (D, D): Xavier std sqrt(2 / (D + D)) = 0.125 at D 64
        up = enc.layers[0].feed_forward.up_proj.weight  # (4D, D): Xavier std sqrt(2 / 5D)
        for w in (gate, up, enc.position_embedding.weight):
            assert abs(w.std().item() / std_of(w) - 1) < 0.1, (w.shape, w.std().item(), std_of(w))
    assert xavier.layers[0].attn_gate.weight.std() > 5 * normal.layers[0].attn_gate.weight.std()


def test_dropout_acts_in_training_only():
    enc = _encoder(dropout=0.5, attention_dropout=0.5)
    x, real = torch.randn(2, 6, D), torch.ones(2, 6, dtype=torch.bool)
    with torch.no_grad():
        assert torch.equal(enc(x, real), enc(x, real))
        enc.train()
        assert not torch.equal(enc(x, real), enc(x, real))


def test_positions_match_the_sasrec_convention_and_overlong_input_is_refused():
    real = torch.tensor([[False, True, True], [True, True, True]])
    assert torch.equal(positions_from_the_end(real, 5), transformer.POSITIONS["from_end"](real, 5))
    assert positions_from_the_end(real, 5).tolist() == [[2, 1, 0], [2, 1, 0]]
    with pytest.raises(ConfigError, match="max_len >= data.max_len"):
        _encoder()(torch.randn(1, 11, D), torch.ones(1, 11, dtype=torch.bool))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"hidden_size": 10, "num_heads": 4},
            (
                "num_heads=4 must divide the width model.encoder.hidden_size=10 (= model.embedding_dim); "
                "use one of [1, 2, 5, 10]"
            ),
        ),
        ({"num_layers": 0}, "model.encoder.num_layers=0 must be >= 1"),
        ({"ff_multiplier": 0}, "model.encoder.ff_multiplier=0 must be a whole number >= 1"),
        ({"ff_multiplier": 1.5}, "model.encoder.ff_multiplier=1.5 must be a whole number >= 1"),  # was a torch error
        ({"ff_multiplier": "abc"}, "model.encoder.ff_multiplier='abc' must be a whole number >= 1"),
        ({"layer_norm_eps": -1}, "model.encoder.layer_norm_eps=-1 must be a positive number"),  # was a NaN loss
        ({"dropout": 1.0}, "model.encoder.dropout=1.0 must be in [0, 1)"),
        (
            {"initializer_range": 0.0},
            "initializer_range=0.0 must be a positive number, e.g. 0.02 (a std), or null",
        ),
    ],
)
def test_impossible_settings_name_the_key(kw, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        ESASRecEncoder(**kw)


def test_model_card_builds_esasrec_with_the_papers_sampled_softmax_and_trains(tmp_path):
    cfg = compose_train(tmp_path, "model=esasrec", "data.max_len=6", "model.embedding_dim=16")
    torch.manual_seed(0)
    model = build_model(cfg.model, 300, item_counts=torch.ones(301))
    assert isinstance(model.encoder, ESASRecEncoder) and len(model.encoder.layers) == 2
    loss = model.loss
    assert isinstance(loss, SampledSoftmax)
    assert (loss.num_negatives, loss.distribution, loss.logq_correction) == (256, "uniform", False)
    windows = torch.tensor([[0, 0, 5, 9, 2, 7, 11], [1, 2, 3, 4, 5, 6, 7]])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        value = model(*model.training_batch(windows)[:2])
        opt.zero_grad()
        value.backward()
        opt.step()
        losses.append(value.item())
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < 0.5 * losses[0]
