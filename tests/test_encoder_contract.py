"""The contract every encoder meets, checked for every conf/model/*.yaml (found by glob: a new YAML is
tested with no test edits) and for an encoder defined outside the package."""

from __future__ import annotations

import math
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import Tensor

from conftest import CONF_DIR, TINY, compose_train
from seqexp.app.train import train
from seqexp.errors import ConfigError
from seqexp.model.encoders import SequenceEncoder
from seqexp.model.recommender import SequenceRecommender, build_model
from seqexp.training.checkpoint import load_checkpoint, save_checkpoint

MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
N_ITEMS, MAX_LEN = 25, 8

USER_ENCODER = '''
"""A user's own encoder, outside the seqexp package: causal mean pooling of the events so far."""
from typing import ClassVar

import torch
from torch import Tensor, nn

from seqexp.model.encoders import SequenceEncoder


class CausalMeanPool(SequenceEncoder):
    causal: ClassVar[bool] = True

    def __init__(self, hidden_size: int = 16) -> None:
        super().__init__(hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: Tensor, padding_mask: Tensor) -> Tensor:
        m = padding_mask[:, :, None].to(x.dtype)  # (B, L, 1)
        mean = (x * m).cumsum(1) / m.cumsum(1).clamp(min=1)  # (B, L, D): mean of the real events up to t
        return torch.tanh(self.proj(mean)) * m
'''


@pytest.fixture(scope="module")
def user_module(tmp_path_factory) -> str:
    """Write the user's encoder to a folder on sys.path (not inside seqexp)."""
    folder = tmp_path_factory.mktemp("user_code")
    (folder / "my_encoders.py").write_text(textwrap.dedent(USER_ENCODER))
    sys.path.insert(0, str(folder))
    yield "my_encoders.CausalMeanPool"
    sys.path.remove(str(folder))
    sys.modules.pop("my_encoders", None)  # imported: later tests must not find it


def _model(tmp_path: Path, name: str, *extra: str) -> SequenceRecommender:
    cfg = compose_train(tmp_path, f"model={name}", f"data.max_len={MAX_LEN}", "model.embedding_dim=16", *extra)
    torch.manual_seed(0)
    return build_model(cfg.model, N_ITEMS, item_counts=torch.arange(N_ITEMS + 1)).eval()


# the backbone encoders' other position convention (model.encoder.positions) meets the same contract
VARIANTS = {f"{name}-from_start": (name, "model.encoder.positions=from_start") for name in ("sasrec", "bert4rec")}


@pytest.fixture(params=MODELS + sorted(VARIANTS) + ["user"])
def model(request, tmp_path, user_module) -> SequenceRecommender:
    if request.param in VARIANTS:
        return _model(tmp_path, *VARIANTS[request.param])
    if request.param == "user":
        return _model(
            tmp_path,
            "lstm",
            f"model.encoder._target_={user_module}",
            "~model.encoder.num_layers",
            "~model.encoder.dropout",
        )
    return _model(tmp_path, request.param)


def test_builds_with_output_shapes(model):
    inputs = torch.tensor([[0, 0, 0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11, 12, 13]])
    h = model.encode(inputs)
    assert h.shape == (2, MAX_LEN, model.encoder.hidden_size)
    assert model.score(inputs).shape == (2, N_ITEMS + 1)


def test_outputs_are_finite_everywhere_even_for_all_padding_rows(model):
    inputs = torch.tensor([[0] * MAX_LEN, [0] * (MAX_LEN - 1) + [3], list(range(1, MAX_LEN + 1))])
    assert torch.isfinite(model.encode(inputs)).all()
    assert torch.isfinite(model.score(inputs)).all()


def test_left_padding_does_not_change_outputs_at_real_positions(model):
    seq = [3, 9, 4, 17, 2]
    alone = model.encode(torch.tensor([seq]))  # (1, 5, D)
    padded = model.encode(torch.tensor([[0] * (MAX_LEN - len(seq)) + seq]))  # (1, 8, D)
    torch.testing.assert_close(padded[:, -len(seq) :], alone, rtol=1e-4, atol=1e-5)


def test_a_rows_scores_do_not_depend_on_the_rest_of_its_batch(model):
    """Scoring trims the batch to its longest row (+1 column for an appended [MASK]): a short row scored alone and
    beside a full one must get the same scores, whatever the position convention."""
    short = [0] * (MAX_LEN - 3) + [3, 9, 4]
    alone = model.score(torch.tensor([short]))  # (1, N + 1)
    beside = model.score(torch.tensor([short, list(range(1, MAX_LEN + 1))]))  # (2, N + 1)
    torch.testing.assert_close(beside[:1], alone, rtol=1e-4, atol=1e-5)


def test_causal_encoders_do_not_look_ahead(model):
    if not model.encoder.causal:
        pytest.skip("bidirectional encoder: every position sees the whole sequence by design")
    a = model.encode(torch.tensor([[0, 0, 4, 5, 6, 7, 8, 9]]))
    b = model.encode(torch.tensor([[0, 0, 4, 5, 6, 7, 8, 20]]))
    torch.testing.assert_close(a[:, :-1], b[:, :-1], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(a[:, -1], b[:, -1])


def test_a_tiny_batch_is_overfit(model):
    torch.manual_seed(0)
    model.eval()  # dropout off: the question is whether the gradients can fit, not how it regularises
    windows = torch.tensor(
        [[0, 0, 1, 2, 3, 4, 5, 6, 7], [9, 10, 11, 12, 13, 14, 15, 16, 17], [0, 0, 0, 0, 20, 21, 22, 23, 24]]
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(150):
        loss = model(*model.training_batch(windows, generator=gen))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-10:]) / 10
    assert last < 0.4 * first, (first, last)


def test_checkpoint_round_trip_gives_identical_scores(model, tmp_path):
    path = tmp_path / "best.pt"
    save_checkpoint(path, model.state_dict())
    state = load_checkpoint(path)["state_dict"]
    history = torch.tensor([[0, 0, 0, 4, 8, 15, 16, 23]])
    before = model.score(history)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.load_state_dict(state)
    assert torch.equal(model.score(history), before)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS + ["user"])
def test_one_epoch_end_to_end_gives_finite_metrics(name, tmp_path, user_module):
    extra = (
        ["model=lstm", f"model.encoder._target_={user_module}", "~model.encoder.num_layers", "~model.encoder.dropout"]
        if name == "user"
        else [f"model={name}"]
    )
    metrics, objects = train(compose_train(tmp_path, *TINY, "trainer.max_epochs=1", *extra))
    assert objects["results"]["training"]["epochs_run"] == 1
    assert all(math.isfinite(v) for v in metrics.values())
    shares = [v for k, v in metrics.items() if k.split("/")[1].split("@")[0] in ("hr", "ndcg", "mrr", "coverage")]
    assert shares and all(0.0 <= v <= 1.0 for v in shares)  # (entropy, novelty, popularity are not shares)


@pytest.mark.slow
def test_user_encoder_with_its_own_yaml_in_a_user_config_dir(tmp_path, user_module):
    """The README's "Add an encoder" route: one Python file + one YAML, found through hydra.searchpath."""
    import json
    import os
    import subprocess

    conf = tmp_path / "my_conf" / "model"
    conf.mkdir(parents=True)
    (conf / "meanpool.yaml").write_text(
        textwrap.dedent("""\
        name: meanpool
        embedding_dim: 16
        encoder:
          _target_: my_encoders.CausalMeanPool
          hidden_size: ${model.embedding_dim}
        objective:
          _target_: seqexp.model.objectives.NextItemObjective
        optimizer:
          _target_: torch.optim.Adam
          _partial_: true
          lr: 3e-3
        batch_size: 32
        """)
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([sys.path[0], os.environ.get("PYTHONPATH", "")])}
    overrides = [o for o in TINY if not o.startswith("model.")]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "seqexp.app.train",
            f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]",
            "model=meanpool",
            f"hydra.run.dir={tmp_path / 'run'}",
            f"paths.data_dir={tmp_path / 'data'}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            *overrides,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["model"] == "meanpool"
    assert results["config"]["model"]["encoder"]["_target_"] == "my_encoders.CausalMeanPool"
    assert math.isfinite(results["metrics"]["test/ndcg@10"])


def test_positions_from_the_start_count_real_events_from_the_oldest(tmp_path):
    from seqexp.model.encoders.base import positions_from_the_end, positions_from_the_start

    real = torch.tensor([[False, False, True, True, True], [True, True, True, True, True]])
    assert positions_from_the_start(real, 5).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]
    assert positions_from_the_end(real, 5).tolist() == [[4, 3, 2, 1, 0], [4, 3, 2, 1, 0]]
    # same weights, other position ids: the outputs at real events differ
    inputs = torch.tensor([[0, 0, 0, 3, 9, 4, 17, 2]])
    end = _model(tmp_path, "bert4rec").encode(inputs)
    start = _model(tmp_path, "bert4rec", "model.encoder.positions=from_start").encode(inputs)
    assert not torch.allclose(end[:, -5:], start[:, -5:])


@pytest.mark.parametrize("name", ["sasrec", "bert4rec"])
def test_an_unknown_position_convention_names_the_key_and_the_choices(tmp_path, name):
    with pytest.raises(ConfigError, match=r"^model\.encoder\.positions='oldest'.*from_end.*from_start"):
        _model(tmp_path, name, "model.encoder.positions=oldest")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (  # a recipe written for bert4rec on another model: its transformer keys reach the GRU
            ["experiment=sparse_catalogue_bert4rec", "model=gru"],
            r"^model\.encoder\.attention_dropout, model\.encoder\.positions are not settings of seqexp\.model\."
            r"encoders\.rnn\.GRUEncoder \(its settings: .*hidden_size.*\): remove them",
        ),
        (
            ["model=sasrec", "+model.objective.mask_last_if_none=false"],
            r"^model\.objective\.mask_last_if_none is not a setting of seqexp\.model\.objectives\.NextItemObjective "
            r"\(its settings: none\)",
        ),
        (["model=esasrec", "model.encoder.num_heads=3"], r"^model\.encoder\.num_heads=3 must divide"),  # unwrapped
        (["model=lstm", "model.encoder.dropout=1.0"], r"^model\.encoder\.dropout=1.0 must be in \[0, 1\)"),  # silent
        (["model=gru", "model.encoder.dropout=1.5"], r"^model\.encoder\.dropout=1.5 must be in \[0, 1\)"),
        (["model=gru", "model.encoder.num_layers=0"], r"^model\.encoder\.num_layers=0 must be >= 1"),
        (["model=esasrec", "model.encoder.layer_norm_eps=-1"], r"^model\.encoder\.layer_norm_eps=-1 must be a"),
        (["model=sasrec", "model.encoder.inner_size=-4"], r"^model\.encoder\.inner_size=-4 must be a whole number"),
        (["model=bert4rec", "model.objective.mask_last_if_none=no"], r"^model\.objective\.mask_last_if_none='no'"),
        (["model=sasrec", "model.scale_embeddings=no"], r"^model\.scale_embeddings='no' must be true or false"),
    ],
)
def test_a_setting_the_model_cannot_take_is_one_config_error_naming_it(tmp_path, overrides, message):
    """Not Hydra's wrapped InstantiationException or a TypeError from deep inside: `seqexp-train` prints the
    ConfigError as one line and exits 2."""
    cfg = compose_train(tmp_path, f"data.max_len={MAX_LEN}", "model.embedding_dim=16", *overrides)
    with pytest.raises(ConfigError, match=message):
        build_model(cfg.model, N_ITEMS, item_counts=torch.arange(N_ITEMS + 1))


def test_a_checkpoint_with_a_legacy_no_is_served_as_it_was_trained(tmp_path, caplog):
    """Before 2026-12-02 `model.scale_embeddings=no` trained with scaling on (bool("no") is True): restoring such a
    config keeps that reading, with a warning, instead of refusing the run."""
    from omegaconf import open_dict

    from seqexp.model.instantiate import as_trained

    cfg = compose_train(tmp_path, "model=bert4rec", f"data.max_len={MAX_LEN}", "model.embedding_dim=16").model
    with open_dict(cfg):
        cfg.scale_embeddings, cfg.objective.mask_last_if_none = "no", 0
    restored = as_trained(cfg)
    assert restored.scale_embeddings is True and restored.objective.mask_last_if_none is False
    assert "model.scale_embeddings='no' was read as True in training" in caplog.text
    assert build_model(restored, N_ITEMS).input_scale == pytest.approx(16**0.5)  # scaled (width 16), as trained


def test_a_nested_target_with_a_wrong_key_is_not_blamed_on_the_encoder(tmp_path):
    cfg = compose_train(tmp_path, "model=gru", f"data.max_len={MAX_LEN}", "model.embedding_dim=16").model
    cfg.encoder.dropout = {"_target_": "torch.nn.Dropout", "bogus": 1}
    with pytest.raises(Exception, match=r"bogus") as raised:
        build_model(cfg, N_ITEMS)
    assert not isinstance(raised.value, ConfigError) or "GRUEncoder" not in str(raised.value)


class _Probe(SequenceEncoder):
    """A user's encoder for the contract probe: `kind` says which README rule it breaks."""

    causal = True

    def __init__(self, kind: str, hidden_size: int = 8) -> None:
        super().__init__(hidden_size)
        self.kind = kind

    def forward(self, x: Tensor, padding_mask: Tensor) -> Tensor:
        if self.kind == "last_state":
            return x[:, -1]  # (B, D)
        if self.kind == "narrow":
            return x[:, :, :4]
        if self.kind == "no_clamp":  # the README's mean without .clamp(min=1): 0/0 at padding
            m = padding_mask[:, :, None].to(x.dtype)
            return (x * m).cumsum(1) / m.cumsum(1)
        return x


class _NoCausal(SequenceEncoder):
    def forward(self, x: Tensor, padding_mask: Tensor) -> Tensor:
        return x


class _OneArgument(_Probe):
    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return x


@pytest.mark.parametrize(
    "encoder, message",
    [
        (_Probe("last_state"), r"returned \(2, 8\) for x \(2, 8, 8\); forward must return one state per position"),
        (_Probe("narrow"), r"returned \(2, 8, 4\) for x"),
        (_Probe("no_clamp"), r"returned values that are not finite .*\.clamp\(min=1\)"),
        (_NoCausal(8), r"_NoCausal does not say whether it is causal: set the class attribute"),
        (_OneArgument("ok"), r"_OneArgument failed on a probe batch .*TypeError: .*forward\(x, padding_mask\)"),
    ],
)
def test_a_user_encoder_that_breaks_the_contract_is_one_line_naming_it(encoder, message):
    """Formerly torch tracebacks from deep in the model (a mask shape, a matmul), a missing attribute, or for NaN at
    padding a training error blaming the learning rate."""
    from seqexp.model.encoder_checks import check_encoder_contract

    with pytest.raises(ConfigError, match=message):
        check_encoder_contract(encoder, 8)
    check_encoder_contract(_Probe("ok"), 8)  # the contract kept: no error


def test_an_encoder_width_other_than_embedding_dim_is_refused():
    """Formerly a YAML without `hidden_size: ${model.embedding_dim}` trained at the encoder's default width while
    results.json recorded model.embedding_dim (two sizes, one model)."""
    from seqexp.model.encoder_checks import check_encoder_contract

    with pytest.raises(ConfigError, match=r"model.embedding_dim=16, but .*_Probe was built with hidden_size=8 .*"
                       r"add `hidden_size: \$\{model.embedding_dim\}`"):  # fmt: skip
        check_encoder_contract(_Probe("ok"), 16)
