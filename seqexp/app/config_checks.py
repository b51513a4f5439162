"""Every config value a user can get wrong, checked before any work starts: one ConfigError naming the key and
the fix (`seqexp: error: ...`, exit 2), or a warning for a key that nothing reads."""

from __future__ import annotations

import difflib
import logging
import math
from pathlib import Path

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from seqexp.app.conf_dir import CONF_DIR
from seqexp.app.model_checks import check_model
from seqexp.errors import ConfigError
from seqexp.evaluation.metrics import METRICS
from seqexp.training.settings import TrainerSettings

log = logging.getLogger(__name__)
COVERAGE_K = 10  # evaluation.protocol.evaluate's coverage cut-off

# groups whose keys are passed on to a constructor (`_target_`): any key added there is read by that class
PASSED_ON = ("model.encoder", "model.objective", "model.loss", "model.optimizer", "logger")


def check_config(cfg: DictConfig, overrides: list[str]) -> tuple[TrainerSettings, str]:
    """Returns the trainer settings and the selection metric (e.g. "ndcg@10"); raises ConfigError."""
    _check_resolvable(cfg)
    _check_lists(cfg)
    _check_data(cfg)
    _check_valid_users(cfg)
    selection = _check_eval(cfg)
    _check_optimizer(cfg)
    check_model(cfg)
    _check_flags(cfg)
    settings = TrainerSettings.from_config(cfg.trainer, cfg.model.get("batch_size"), cfg.get("seed", 0))
    warn_unused_keys(cfg, overrides)
    warn_recipe_for_another_model(overrides)
    return settings, selection


# true/false keys: a command-line `no`, `off` or `0` arrives as a string or a number, which Python reads as true
FLAGS = (
    "data.header", "data.collapse_repeats", "eval.filter_seen", "trainer.compile", "trainer.deterministic",
    "trainer.progress_bar", "trainer.save_checkpoint", "trainer.save_last", "trainer.overwrite", "model.sparse_items",
    "model.scale_embeddings", "model.encoder.final_norm", "model.encoder.ff_bias", "model.objective.mask_last_if_none",
    "model.loss.in_batch", "model.loss.logq_correction", "model.loss.per_position", "pretrained.freeze",
    "logger.log_checkpoint", "data.download.enabled",  # formerly `no` uploaded the checkpoint / used the network
)  # fmt: skip
# torch optimisers that refuse sparse gradients (SGD and Adagrad take them; SparseAdam takes nothing else)
DENSE_ONLY_OPTIMIZERS = ("Adam", "AdamW", "RAdam", "NAdam", "Adamax", "RMSprop", "Adadelta", "ASGD", "Rprop", "LBFGS")


# keys that hold a list: a bare `data.behaviors=buy` would be read letter by letter (b, u, y)
LISTS = (
    "data.behaviors", "split.target_behaviors", "model.features", "eval.ks", "logger.tags", "pretrained.text.columns",
)  # fmt: skip


def _check_lists(cfg: DictConfig) -> None:
    for key in LISTS:
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not isinstance(value, ListConfig):
            raise ConfigError(f"{key}={value!r} must be a list (or null): write {key}=[{value}]")


def _check_flags(cfg: DictConfig) -> None:
    for key in FLAGS:
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} must be true or false (`no`, `off` and 0 are not read as false)")


def _check_resolvable(cfg: DictConfig) -> None:
    try:
        missing = sorted(OmegaConf.missing_keys(cfg))  # resolves interpolations on the way: may raise too
        if missing:
            hint = "; e.g. data=csv needs data.path=<your log file>" if "data.path" in missing else ""
            raise ConfigError(f"{', '.join(missing)} must be set (the config leaves it as ???){hint}")
        OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", "") or "?"
        raise ConfigError(f"config key {key} does not resolve: {str(e).splitlines()[0]}") from None


def _check_data(cfg: DictConfig) -> None:
    max_len = _int(cfg.data, "max_len", "data.max_len")
    if max_len < 2:
        raise ConfigError(
            f"data.max_len={max_len} is too short: an encoder needs at least 2 events; use e.g. data.max_len=50"
        )
    min_seq_len = _int(cfg.data, "min_seq_len", "data.min_seq_len")
    if min_seq_len < 1:  # formerly 0 was read as the default 3 on the temporal and session splits
        raise ConfigError(f"data.min_seq_len={min_seq_len} must be >= 1 (1 keeps every user or session)")
    if min_seq_len < 3 and cfg.split.name == "leave_one_out":
        raise ConfigError(
            f"data.min_seq_len={cfg.data.min_seq_len}: leave-one-out needs 3 events per user "
            f"(train, validation, test); set data.min_seq_len=3 or more"
        )
    if _int(cfg.data, "min_item_count", "data.min_item_count") < 1:
        raise ConfigError(f"data.min_item_count={cfg.data.min_item_count} must be >= 1 (1 keeps every item)")
    _fraction(cfg.data, "max_invalid_fraction", "data.max_invalid_fraction")
    _check_generator(cfg)
    stride = cfg.data.get("train_stride")
    if stride is not None and not 1 <= _int(cfg.data, "train_stride", "data.train_stride") <= max_len:
        raise ConfigError(
            f"data.train_stride={stride} must be between 1 and data.max_len={max_len}: windows of max_len events "
            f"every train_stride events would skip the targets between them; use data.train_stride<={max_len} or null"
        )


# data=synthetic's generator settings (conf/data/synthetic.yaml) -> the least each may be
GENERATOR_MINIMUM = {"n_users": 1, "n_items": 2, "n_categories": 1, "mean_events": 1, "seed": 0}


def _check_generator(cfg: DictConfig) -> None:
    generate = cfg.data.get("generate")
    if not isinstance(generate, DictConfig):
        return
    from seqexp.data.synthetic import generator_settings

    unknown = sorted(set(generate) - set(generator_settings({})))
    if unknown:
        raise ConfigError(
            f"data.generate.{unknown[0]} is not a setting of the synthetic log; its settings: "
            f"{', '.join(generator_settings({}))}"
        )
    for key, least in GENERATOR_MINIMUM.items():
        if key in generate and _int(generate, key, f"data.generate.{key}") < least:
            raise ConfigError(f"data.generate.{key}={generate[key]} must be >= {least}")
    if "p_follow" in generate:
        _fraction(generate, "p_follow", "data.generate.p_follow")


def _fraction(node: DictConfig, key: str, name: str) -> float | None:
    """node[key] as a number in [0, 1] (None when unset: the reader's default)."""
    value = node.get(key)
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} is not a number; set a fraction between 0 and 1") from None
    if not 0.0 <= number <= 1.0:
        raise ConfigError(f"{name}={value} must be a fraction between 0 and 1")
    return number


def _check_valid_users(cfg: DictConfig) -> None:
    """split.valid_users (leave-one-out on a validation sample): a positive whole number, alone in choosing the
    validation users."""
    valid_users = cfg.split.get("valid_users")
    if valid_users is None:
        return
    if _int(cfg.split, "valid_users", "split.valid_users") < 1:
        raise ConfigError(f"split.valid_users={valid_users} must be a positive number of users (or null: every user)")
    if cfg.split.name != "leave_one_out":
        raise ConfigError(
            f"split.valid_users={valid_users} applies to split=leave_one_out only; split={cfg.split.name} chooses "
            "its validation cases by time: remove split.valid_users"
        )
    _int(cfg.split, "valid_seed", "split.valid_seed")
    if cfg.eval.get("sample_users") is not None:
        raise ConfigError(
            f"split.valid_users={valid_users} and eval.sample_users={cfg.eval.sample_users} both choose the "
            "validation users; set one: split.valid_users (the others train on their validation target) or "
            "eval.sample_users (a validation sample only), and the other to null"
        )


def _check_eval(cfg: DictConfig) -> str:
    """eval.* and optimized_metric; returns the selection metric's name in the validation metrics."""
    if _int(cfg.eval, "batch_size", "eval.batch_size") < 1:
        raise ConfigError(f"eval.batch_size={cfg.eval.batch_size} must be >= 1 (users scored per batch)")
    ks = [_whole(k, f"eval.ks[{n}]") for n, k in enumerate(cfg.eval.ks)]  # 10.5 is not 10
    if not ks or min(ks) < 1:
        raise ConfigError(f"eval.ks={ks} must list cut-offs >= 1, e.g. eval.ks=[5,10,20]")
    if len(set(ks)) < len(ks):
        raise ConfigError(f"eval.ks={ks} lists a cut-off twice; list each once, e.g. eval.ks={sorted(set(ks))}")
    metric = str(cfg.get("optimized_metric", "valid/ndcg@10"))
    name, _, k = metric.removeprefix("valid/").partition("@")
    valid_names = [f"valid/{m}@{c}" for m in METRICS for c in ks] + [f"valid/coverage@{COVERAGE_K}"]
    if not metric.startswith("valid/") or name not in (*METRICS, "coverage") or not k.isdigit():
        raise ConfigError(
            f"optimized_metric={metric} is not a validation metric; use one of {valid_names} (model selection "
            f"never looks at test)"
        )
    if name == "coverage" and int(k) != COVERAGE_K:
        raise ConfigError(
            f"optimized_metric={metric}: coverage is measured at K={COVERAGE_K} only; use {valid_names[-1]}"
        )
    if name != "coverage" and int(k) not in ks:
        raise ConfigError(
            f"optimized_metric={metric} needs K={k} in eval.ks={ks}; add it (eval.ks=[{','.join(map(str, ks))},{k}]) "
            f"or choose one of {valid_names}"
        )
    if 10 not in ks:  # formerly a KeyError after training: results.json's per-user values are NDCG@10
        raise ConfigError(
            f"eval.ks={ks} must include 10: results.json's per-user values and seqexp-compare's leaderboard are "
            f"@10; add it (eval.ks=[{','.join(map(str, sorted({*ks, 10})))}])"
        )
    return metric.removeprefix("valid/")


def _check_optimizer(cfg: DictConfig) -> None:
    target = str(cfg.model.get("optimizer", {}).get("_target_", ""))
    if cfg.model.get("sparse_items") is True and target.removeprefix("torch.optim.") in DENSE_ONLY_OPTIMIZERS:
        raise ConfigError(
            f"model.sparse_items=true gives the item table sparse gradients, which model.optimizer._target_={target} "
            "cannot take; set model.optimizer._target_=seqexp.model.sparse_items.SparseItemOptimizer (row-wise "
            "SparseAdam on the item table, the same settings for the rest), or model.sparse_items=false"
        )
    lr = cfg.model.get("optimizer", {}).get("lr")
    if lr is None:
        return
    try:
        value = float(lr)
    except (TypeError, ValueError):
        raise ConfigError(f"model.optimizer.lr={lr!r} is not a number; set e.g. model.optimizer.lr=1e-3") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"model.optimizer.lr={lr} must be a positive number, e.g. model.optimizer.lr=1e-3")


def _int(node: DictConfig, key: str, name: str) -> int:
    return _whole(node.get(key), name)


def _whole(value: object, name: str) -> int:
    try:
        if isinstance(value, bool):  # int(True) == 1: a YAML true is not a count
            raise ValueError
        number = int(value)
        if float(value) != number:
            raise ValueError
        return number
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} is not a whole number") from None


def warn_unused_keys(cfg: DictConfig, overrides: list[str]) -> list[str]:
    """`+a.b=v` adds a key the composed config did not have: unless a constructor receives it (under a
    `_target_` group), nothing reads it, which is almost always a typo. Returns the warnings given."""
    known = OmegaConf.to_container(cfg, resolve=False)
    warnings = []
    for override in overrides:
        if not override.startswith("+") or override.startswith("++") or "=" not in override:
            continue
        key = override[1:].split("=", 1)[0]
        if "/" in key or any(key == g or key.startswith(g + ".") for g in PASSED_ON):
            continue  # a config group (+model/loss=sampled) or a constructor argument
        parent, _, leaf = key.rpartition(".")
        siblings = [k for k in _keys_at(known, parent) if k != leaf]
        close = difflib.get_close_matches(leaf, siblings, n=1)
        hint = f"; did you mean {parent + '.' if parent else ''}{close[0]}=...?" if close else ""
        message = f"unused key: {override} adds {key}, which nothing in seqexp reads{hint}"
        log.warning(message)
        warnings.append(message)
    return warnings


def _keys_at(tree: object, dotted: str) -> list[str]:
    node = tree
    for part in [p for p in dotted.split(".") if p]:
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return [str(k) for k in node] if isinstance(node, dict) else []


def warn_recipe_for_another_model(overrides: list[str]) -> str | None:
    """`experiment=sparse_catalogue model=bert4rec`: the recipe was measured on the model its file overrides to
    (`override /model: sasrec`); a model= override wins in Hydra and silently gets the recipe's values. Returns
    the warning given, if any (nothing for a recipe file outside seqexp's conf/, or one that sets no model)."""
    experiments = [o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith("experiment=")]
    models = [o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith("model=")]
    if not experiments or not models:
        return None
    recipe = Path(CONF_DIR) / "experiment" / f"{experiments[-1]}.yaml"
    if not recipe.exists():
        return None
    defaults = (yaml.safe_load(recipe.read_text()) or {}).get("defaults") or []
    written_for = next((d["override /model"] for d in defaults if isinstance(d, dict) and "override /model" in d), None)
    model = models[-1]  # the group chosen (cfg.model.name is only a tag a user may change)
    if written_for is None or written_for == model:
        return None
    message = (
        f"experiment={experiments[-1]} is a recipe measured on model={written_for}; with model={model} its values "
        f"apply to {model}'s card unmeasured (conf/experiment/{experiments[-1]}.yaml). Drop model={model} to run the "
        "recipe as measured"
    )
    log.warning(message)
    return message
