"""SASRec / BERT4Rec settings the HF backbones cannot build are refused in one line naming the key."""

import re

import pytest
from omegaconf import OmegaConf

from seqexp.errors import ConfigError
from seqexp.model.encoders.transformer import BERT4RecEncoder, SASRecEncoder
from seqexp.model.instantiate import instantiate_part


@pytest.mark.parametrize("encoder", [SASRecEncoder, BERT4RecEncoder])
@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"hidden_size": 16, "num_heads": 3}, "model.encoder.num_heads=3 must divide"),
        ({"hidden_size": 16, "num_heads": 0}, "model.encoder.num_heads=0"),
        ({"num_layers": 0}, "model.encoder.num_layers=0"),
        ({"dropout": 1.5}, "model.encoder.dropout=1.5 must be in [0, 1)"),
        ({"attention_dropout": -0.1}, "model.encoder.attention_dropout=-0.1"),
        ({"activation": "swish2"}, "model.encoder.activation='swish2' is not an activation of transformers"),
        ({"initializer_range": -1}, "model.encoder.initializer_range=-1 must be a positive number"),
        ({"layer_norm_eps": "abc"}, "model.encoder.layer_norm_eps='abc' is not a number"),
    ],
)
def test_impossible_layout_names_the_key(encoder, settings, named):
    with pytest.raises(ConfigError, match=re.escape(named)):
        encoder(**settings)


def test_whole_numbers_for_float_settings_build_and_bad_widths_name_the_key():
    """`initializer_range=1` was the HF config's "expected float, got int"; a negative width a torch error."""
    assert (
        SASRecEncoder(
            hidden_size=16, num_heads=1, initializer_range=1, layer_norm_eps=1
        ).backbone.config.initializer_range
        == 1.0
    )
    with pytest.raises(ConfigError, match=re.escape("model.encoder.inner_size=-4 must be a whole number >= 1 (null")):
        SASRecEncoder(hidden_size=16, num_heads=1, inner_size=-4)
    with pytest.raises(ConfigError, match=re.escape("model.encoder.intermediate_size=0 must be a whole number >= 1")):
        BERT4RecEncoder(hidden_size=16, num_heads=1, intermediate_size=0)


def test_divisor_list_is_offered_and_error_surfaces_through_instantiate():
    cfg = OmegaConf.create(
        {"encoder": {"_target_": "seqexp.model.encoders.transformer.SASRecEncoder", "hidden_size": 16, "num_heads": 3}}
    )
    with pytest.raises(ConfigError) as e:
        instantiate_part(cfg, "encoder")
    assert "use one of [1, 2, 4, 8, 16]" in str(e.value)


def test_valid_layout_still_builds():
    assert SASRecEncoder(hidden_size=16, num_heads=4, num_layers=1).hidden_size == 16
