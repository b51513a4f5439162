"""Which loss a model is built with: its card's, or (model.loss_auto, above a catalogue size) the automatic one.

Training (seqexp.app.stages), serving (restore_model) and results.json (training.loss) all take the choice from
here, so that a model is rebuilt for serving exactly as it was trained.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from seqexp.errors import ConfigError

FULL_SOFTMAX = "seqexp.model.losses.FullSoftmax"  # what model.loss_auto may replace (a model card's default)


def loss_choice(model: Mapping[str, Any], n_items: int) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """(the loss config the model is built with, its results.json record {class, chosen}).

    model.loss_auto = {above_items: T, loss: {...}}: a catalogue of more than T items whose model card uses the
    full softmax is trained with `loss_auto.loss` instead (a sampled softmax; Jean et al., ACL 2015), since the
    full softmax's (positions x N) logits outgrow memory there; any other configured loss (chunked exact CE,
    sampled, mixed) is the user's choice and kept. T = null (or no model.loss_auto) turns the switch off. The
    build stage builds with this choice and results.json records it (training.loss), from this one function."""
    configured = dict(model.get("loss") or {"_target_": FULL_SOFTMAX})  # no model.loss: the full softmax
    auto = model.get("loss_auto") or {}
    above = auto.get("above_items")
    if above is not None and (isinstance(above, bool) or not isinstance(above, int) or above < 0):
        raise ConfigError(
            f"model.loss_auto.above_items={above!r}: use a number of items (e.g. 500000), or null to always keep "
            f"model.loss"
        )
    if above is None or n_items <= above or configured.get("_target_") != FULL_SOFTMAX:
        return (dict(model["loss"]) if model.get("loss") else None), {
            "class": str(configured.get("_target_")),
            "chosen": "configured",
        }
    loss = dict(auto.get("loss") or {})
    if "_target_" not in loss:
        raise ConfigError(
            "model.loss_auto.loss._target_ is not set: name the loss to use above model.loss_auto.above_items "
            "(e.g. seqexp.model.losses.SampledSoftmax), or set model.loss_auto.above_items=null"
        )
    return loss, {"class": str(loss["_target_"]), "chosen": f"auto ({n_items} items > {above})"}


def built_config(model_cfg: DictConfig, n_items: int) -> tuple[DictConfig, dict[str, str]]:
    """(model.* as the model is built, the loss record): the card itself, or the card with the automatic loss in
    place of the full softmax."""
    resolved = OmegaConf.to_container(model_cfg, resolve=True)
    loss, record = loss_choice(resolved, n_items)  # type: ignore[arg-type]
    if record["chosen"] == "configured":
        return model_cfg, record  # the card as it is (the default path, unchanged)
    resolved["loss"] = loss  # type: ignore[index]
    return OmegaConf.create(resolved), record
