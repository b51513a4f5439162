"""`seqexp-export RUN_DIR`: a trained run's user and item representations, with their raw ids, as parquet.

    users.parquet  user_id (str), vector (list<float32>, D): the encoder's state after the user's whole
                   history (its most recent data.max_len events; for BERT4Rec, the appended [MASK] position)
                   - the vector the model scores the next item with
    items.parquet  item_id (str), vector (list<float32>, D): the item table the scores are dot products with
    meta.json      run dir, model, data, dimension, what each vector is

Read them back with pandas / pyarrow:

    users = pd.read_parquet("export/users.parquet")
    U = np.stack(users["vector"].to_numpy())          # (n_users, D), row r <-> users["user_id"][r]
    scores = U @ np.stack(pd.read_parquet("export/items.parquet")["vector"].to_numpy()).T
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from omegaconf import DictConfig, OmegaConf

from seqexp.app.recommend import OneLineParser
from seqexp.app.trained_run import load_run, printed_warnings, run_dir_of
from seqexp.data import load_data
from seqexp.data.features import event_features
from seqexp.data.loader import left_padded_windows
from seqexp.data.sequences import PreparedData
from seqexp.errors import ExportError, SeqexpError
from seqexp.io import replace_dir, write_json
from seqexp.model.recommender import SequenceRecommender


@torch.no_grad()
def user_vectors(
    model: SequenceRecommender, history: np.ndarray, features: dict[str, np.ndarray], batch_size: int = 512
) -> np.ndarray:
    """history (U, L) left-padded item indices (+ feature codes) -> (U, D) states at the prediction position,
    through `SequenceRecommender.user_states`: the path `score` (evaluation) and `seqexp-recommend` take."""
    out = []
    for i in range(0, len(history), batch_size):
        feats = {k: torch.from_numpy(v[i : i + batch_size]) for k, v in features.items()}
        out.append(model.user_states(torch.from_numpy(history[i : i + batch_size]), feats or None))  # (B, D)
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, model.encoder.hidden_size), np.float32)


def export_run(run_dir: str | Path, out_dir: str | Path | None = None, data_path: str | Path | None = None) -> Path:
    """Write users.parquet, items.parquet and meta.json for a finished run (an unfinished one with a warning),
    as one unit (see `_write_export`); returns the output folder. An `out_dir` holding another run's export, or
    other files, is refused (ExportError) before any work: an export of this run is replaced. `data_path`: where
    the run's log is now, when it moved since training (it must still be the same data: the fingerprint is checked)."""
    run_dir = run_dir_of(Path(run_dir), "seqexp-export", ExportError)  # its checkpoints/best.pt names it too
    out = Path(out_dir) if out_dir else run_dir / "export"
    _check_out(out, run_dir, default=not out_dir)
    ckpt, model = load_run(run_dir, "seqexp-export", ExportError)
    cfg = _paths_as_trained(OmegaConf.create(ckpt["config"]), ckpt.get("working_dir"))
    if data_path is not None:
        cfg.data.path = str(Path(data_path).resolve())
        if Path(data_path).is_file():
            cfg.data.filename = None  # the file itself, not a folder holding data.filename
    logged = cfg.data.get("path")
    fetched = cfg.data.get("format") == "hf" or bool(OmegaConf.select(cfg, "data.download.enabled", default=False))
    if logged is not None and not (cfg.data.get("generate") or fetched) and not Path(str(logged)).expanduser().exists():
        raise ExportError(  # formerly the loader's "set data.path=...", which seqexp-export does not take
            f"the run's log data.path={logged} does not exist (moved since training?); pass --data-path <where it is "
            f"now> (it must be the same data: its fingerprint is checked)"
        )
    data = load_data(cfg.data, cfg.paths.cache_dir)
    _check_same_data(ckpt, data, cfg.data.path)
    max_len = int(ckpt["max_len"])
    starts, ends = data.offsets[:-1], data.offsets[1:]
    history = left_padded_windows(data.items, starts, ends, max_len)
    features = {
        k: left_padded_windows(v, starts, ends, max_len) for k, v in event_features(data, model.features).items()
    }
    users = user_vectors(model, history, features)
    items = model.item_table()[1:].detach().numpy().astype(np.float32)  # (N, D), row i <-> item index i + 1
    meta = {
        "run_dir": str(run_dir.resolve()),
        "model": str(cfg.model.name),
        "data": str(cfg.data.name),
        "data_fingerprint": data.fingerprint,
        "dim": users.shape[1],
        "users": len(users),
        "items": len(items),
        "features": model.features,
        "user_vector": "encoder state after the user's most recent max_len events (and their features), "
        "at the prediction position",
        "item_vector": "output item table (scores are user_vector . item_vector)",
        "max_len": max_len,
    }
    _write_export(out, _table("user_id", data.user_ids, users), _table("item_id", data.item_ids, items), meta)
    return out


EXPORT_FILES = ("users.parquet", "items.parquet", "meta.json")


def _write_export(out: Path, users: pa.Table, items: pa.Table, meta: dict) -> None:
    """The three files into a temp folder beside `out`, which then takes its place: a failure part way (a full disk,
    a kill) leaves the previous export whole, never one run's users beside another run's items."""

    def write(tmp: Path) -> None:
        pq.write_table(users, tmp / "users.parquet")
        pq.write_table(items, tmp / "items.parquet")
        write_json(tmp / "meta.json", meta)

    replace_dir(out, write)


def _check_out(out: Path, run_dir: Path, default: bool) -> None:
    """ExportError unless `out` is new, empty, or holds an export of `run_dir` (the run's own export/ folder, the
    default, always counts as its own: a copied or moved run keeps it)."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file, not a folder: pass a new or empty --out folder")
    if not out.exists() or not any(out.iterdir()):
        return  # new or empty
    try:
        exported = json.loads((out / "meta.json").read_text())["run_dir"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ExportError(
            f"--out {out} already holds files that are not a seqexp export (no readable meta.json naming its run); "
            "pass a new or empty --out folder"
        ) from None
    others = sorted({p.name for p in out.iterdir()} - set(EXPORT_FILES))
    if others:  # replacing the folder would delete them: nothing a user wrote is lost
        raise ExportError(
            f"--out {out} holds files besides an export ({', '.join(others[:5])}); move them out, or pass another --out"
        )
    if default or Path(str(exported)) == run_dir.resolve():
        return
    raise ExportError(
        f"--out {out} holds the export of another run ({exported}), not of {run_dir.resolve()}: pass another --out, "
        f"or delete {out} to replace it"
    )


def _paths_as_trained(cfg: DictConfig, working_dir: str | None) -> DictConfig:
    """Relative data.path and paths.* (a run trained without SEQEXP_ROOT records `log.csv`, `./.cache/seqexp`) read
    from the directory training ran in (recorded in the checkpoint since 2026-12-03); formerly they were read from
    wherever seqexp-export ran, so a run could be exported only from the folder it was trained in."""
    if not working_dir:
        return cfg
    for key in ("data.path", "paths.root_dir", "paths.data_dir", "paths.cache_dir"):
        value = OmegaConf.select(cfg, key, default=None)
        if value is None or Path(str(value)).expanduser().is_absolute():
            continue
        there = Path(working_dir) / str(value)
        if there.exists():  # else as it is: a hub name (data=hf), or a log moved since (--data-path)
            OmegaConf.update(cfg, key, str(there), merge=False)
    return cfg


def _check_same_data(ckpt: dict, data: PreparedData, path: object) -> None:
    """Refuse a log that changed since training: its users would get vectors of other histories."""
    trained = ckpt.get("data_fingerprint")
    if trained is not None and trained != data.fingerprint:
        raise ExportError(
            f"the data at data.path={path} is not the data this run was trained on (data fingerprint "
            f"{data.fingerprint[:12]}, checkpoint data_fingerprint {str(trained)[:12]}): the log or the data.* "
            f"preparation settings changed since training; restore the run's log, or retrain on the new one"
        )
    if list(data.item_ids) != list(ckpt["item_ids"]):
        raise ExportError(
            f"the data at data.path={path} no longer matches the run's item ids (the log changed since training); "
            f"export needs the log the run was trained on: restore it, or retrain"
        )


def _table(id_name: str, ids: np.ndarray, vectors: np.ndarray) -> pa.Table:
    dim = vectors.shape[1]
    flat = pa.array(vectors.reshape(-1), pa.float32())
    return pa.table({id_name: pa.array(ids.astype(str)), "vector": pa.FixedSizeListArray.from_arrays(flat, dim)})


def cli(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="seqexp-export", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a run folder written by seqexp-train (or its checkpoints/best.pt)")
    parser.add_argument(
        "--out",
        help="output folder (default: <run_dir>/export); an export of the same run there is replaced, a folder "
        "holding another run's export (or other files) is refused",
    )
    parser.add_argument(
        "--data-path",
        help="where the run's log is now, when it moved since training (a file, or a folder holding data.filename); "
        "it must be the same data: its fingerprint is checked against the run's",
    )
    args = parser.parse_args(argv)
    try:
        with printed_warnings("seqexp-export"):
            out = export_run(args.run_dir, args.out, args.data_path)
    except SeqexpError as e:
        print(f"seqexp-export: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # an --out that is a file, a read-only folder, a full disk
        print(f"seqexp-export: error: cannot write the export ({e}); pass a writable --out folder", file=sys.stderr)
        return 2
    print(f"wrote {out / 'users.parquet'}, {out / 'items.parquet'}, {out / 'meta.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
