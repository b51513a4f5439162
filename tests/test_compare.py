"""seqexp-compare: a leaderboard from real tiny runs, statistics against scipy, refusals, outputs."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from conftest import TINY, inspect_wandb_run
from seqexp.compare.cli import main as compare_main
from seqexp.compare.leaderboard import build_rows
from seqexp.compare.runs import read_runs
from seqexp.compare.stats import NotComparable, paired_test, summarize
from seqexp.compare.wandb_io import record_from_wandb_run


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A real multirun: lstm and gru x seeds 0 and 1, tracked offline in W&B; plus a failed and an unfinished run."""
    tmp = tmp_path_factory.mktemp("sweep")
    overrides = [o for o in TINY if o != "logger=none" and not o.startswith("model.")]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "seqexp.app.train",
            "-m",
            "model=lstm,gru",
            "seed=0,1",
            "logger=wandb",
            "model.embedding_dim=16",
            f"hydra.sweep.dir={tmp / 'multirun'}",
            f"paths.data_dir={tmp / 'data'}",
            f"paths.cache_dir={tmp / 'cache'}",
            *overrides,
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    failed = tmp / "multirun" / "failed"
    (failed / ".hydra").mkdir(parents=True)
    (failed / "results.json").write_text(
        json.dumps(
            {
                "status": "failed",
                "model": "gru",
                "data": "synthetic",
                "seed": 2,
                "error": "TrainingDiverged: NaN at step 3",
            }
        )
    )
    (tmp / "multirun" / "killed" / ".hydra").mkdir(parents=True)
    return tmp / "multirun"


@pytest.mark.slow
def test_rows_counts_and_baseline_comparison(sweep):
    runs = read_runs([sweep])
    assert sorted(r.status for r in runs) == ["completed"] * 4 + ["failed", "unfinished"]
    rows = build_rows(runs, baseline="lstm")
    assert [(r.model, len(r.runs), r.seeds) for r in sorted(rows, key=lambda r: r.model)] == [
        ("gru", 2, [0, 1]),
        ("lstm", 2, [0, 1]),
    ]
    lstm = next(r for r in rows if r.model == "lstm")
    gru = next(r for r in rows if r.model == "gru")
    assert lstm.note == "baseline" and lstm.paired is None
    assert gru.paired is not None and gru.paired.n_users == 60
    expected = np.mean([r.metrics["test/ndcg@10"] for r in gru.runs])
    assert gru.summaries["test/ndcg@10"].mean == pytest.approx(expected)
    b = lstm.summaries["test/ndcg@10"].mean
    assert gru.relative_change == pytest.approx((expected - b) / b)
    assert gru.variant == "" and gru.mean_of("parameters") > 0
    assert len({r.group for r in runs if r.group}) == 1  # the multirun's jobs share one W&B group


@pytest.mark.slow
def test_markdown_csv_json_outputs_parse_and_failures_are_listed_apart(sweep, tmp_path, capsys):
    assert compare_main([str(sweep), "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 2 and len({line.count("|") for line in table}) == 1
    assert "Not averaged in" in md and "failed" in md and "TrainingDiverged" in md and "unfinished" in md
    assert compare_main([str(sweep), "--format", "json", "--output", str(tmp_path / "lb.json")]) == 0
    payload = json.loads((tmp_path / "lb.json").read_text())
    assert {r["model"] for r in payload["rows"]} == {"lstm", "gru"}
    assert len(payload["not_averaged"]) == 2
    gru = next(r for r in payload["rows"] if r["model"] == "gru")
    assert set(gru["paired_vs_baseline"]) >= {"t_pvalue", "wilcoxon_pvalue", "bootstrap95"}
    assert compare_main([str(sweep), "--format", "csv"]) == 0
    parsed = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert parsed[0][1] == "model" and len(parsed) == 3


@pytest.mark.slow
def test_plot_is_a_valid_png(sweep, tmp_path):
    import matplotlib.image

    out = tmp_path / "leaderboard.png"
    assert compare_main([str(sweep), "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(out)
    assert image.shape[0] > 100 and image.shape[1] > 300


@pytest.mark.slow
def test_log_wandb_writes_a_leaderboard_run(sweep, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))  # the summary run goes to tmp_path/wandb
    assert compare_main([str(sweep), "--log-wandb", "--group", "test-sweep"]) == 0
    run = inspect_wandb_run(tmp_path)  # tmp_path/wandb/latest-run
    assert run["summary"]["leaderboard"]["nrows"] == 2 and "leaderboard_plot" not in run["summary"]

    assert compare_main([str(sweep), "--log-wandb"]) == 0  # no --group: the sweep's own group
    groups = []
    for run_dir in sorted((tmp_path / "wandb").glob("offline-run-*")):
        records = subprocess.run(
            [str(Path(sys.executable).with_name("wandb")), "leet", "inspect", "--json", str(run_dir)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        groups += [g for g in ("test-sweep", "train-multirun") if f'group":"{g}"' in records.replace(" ", "")]
    assert sorted(groups) == ["test-sweep", "train-multirun"]


@pytest.mark.slow
def test_wandb_summaries_give_the_same_records_as_run_dirs(sweep):
    """--from-wandb builds records through record_from_wandb_run; here fed by offline runs read back locally."""
    for run in [r for r in read_runs([sweep]) if r.status == "completed"]:
        summary = inspect_wandb_run(Path(run.source))["summary"]
        from_wandb = record_from_wandb_run("finished", summary, "wandb:" + run.source)
        assert (from_wandb.model, from_wandb.seed, from_wandb.fingerprint) == (run.model, run.seed, run.fingerprint)
        assert from_wandb.metrics == pytest.approx(run.metrics)
        np.testing.assert_allclose(from_wandb.per_user_ndcg, run.per_user_ndcg)
    assert record_from_wandb_run("crashed", {}, "x").status == "failed"
    assert record_from_wandb_run("running", {}, "x").status == "unfinished"


def test_summary_matches_scipy_t_interval():
    values = [0.11, 0.13, 0.12, 0.16]
    s = summarize(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert (s.mean, s.std) == pytest.approx((np.mean(values), np.std(values, ddof=1)))
    assert (s.ci_low, s.ci_high) == pytest.approx((low, high))
    one = summarize([0.2])
    assert one.mean == 0.2 and np.isnan(one.std) and np.isnan(one.ci_low)


def test_paired_test_matches_scipy_and_the_bootstrap_interval_covers_the_mean():
    rng = np.random.default_rng(0)
    base = rng.random(300)
    model = base + 0.05 + 0.1 * rng.standard_normal(300)
    p = paired_test(model, base, n_boot=4000)
    assert p.t_pvalue == pytest.approx(stats.ttest_rel(model, base).pvalue)
    assert p.wilcoxon_pvalue == pytest.approx(stats.wilcoxon(model, base).pvalue)
    assert p.mean_diff == pytest.approx(np.mean(model - base))
    assert p.boot_low < p.mean_diff < p.boot_high and p.boot_low > 0  # a real +0.05 effect
    same = paired_test(base, base)
    assert same.mean_diff == 0 and same.t_pvalue == 1.0 and same.wilcoxon_pvalue == 1.0  # shown as 1 / 1, not nan
    with pytest.raises(NotComparable):
        paired_test(base, base[:-1])


def _record(
    model, seed, fingerprint="f", filter_seen=True, users=("a", "b", "c"), values=(0.1, 0.2, 0.3), split_config=None
):
    from seqexp.compare.runs import RunRecord

    protocol = {"split": "leave_one_out", "ranking": "full", "filter_seen": filter_seen}

    return RunRecord(
        source=f"{model}-{seed}",
        status="completed",
        model=model,
        data="d",
        seed=seed,
        metrics={"test/ndcg@10": float(np.mean(values)), "test/hr@10": 0.5, "test/mrr@10": 0.1},
        per_user_ids=list(users),
        per_user_ndcg=np.asarray(values),
        fingerprint=fingerprint,
        protocol=protocol if split_config is None else {**protocol, "split_config": split_config},
        parameters=10,
        train_seconds=1.0,
        sequences_per_second=5.0,
    )


def test_mismatched_runs_are_not_paired():
    base = [_record("lstm", 0), _record("lstm", 1)]
    other_data = build_rows(base + [_record("gru", 0, fingerprint="g" * 16)])  # same data name, other contents
    gru = next(r for r in other_data if r.model == "gru")
    assert gru.data == "d@gggggggg" and gru.note == "no 'lstm' runs on d@gggggggg" and gru.paired is None
    assert {r.data for r in other_data if r.model == "lstm"} == {"d@f"}  # the baseline keeps its own data
    other_protocol = build_rows(base + [_record("gru", 0, filter_seen=False)])
    gru = next(r for r in other_protocol if r.model == "gru")
    assert gru.note.startswith("not compared: different evaluation protocols") and math.isnan(gru.relative_change)
    other_users = build_rows(base + [_record("gru", 0, users=("a", "b", "z"))])
    assert "other users" in next(r for r in other_users if r.model == "gru").note
    older = [_record("lstm", s, split_config={"name": "leave_one_out"}) for s in (0, 1)]  # before valid_users
    sampled = {"name": "leave_one_out", "valid_users": 2048, "valid_seed": 0}
    other_training = build_rows([*older, _record("gru", 0, split_config=sampled)])  # trained on validation targets
    assert "different evaluation protocols" in next(r for r in other_training if r.model == "gru").note
    newer = _record("gru", 0, split_config={"name": "leave_one_out", "valid_users": None, "valid_seed": 0})
    assert next(r for r in build_rows([*older, newer]) if r.model == "gru").paired is not None
    no_baseline = build_rows([_record("gru", 0)])
    assert no_baseline[0].note == "no 'lstm' runs on d" and no_baseline[0].paired is None
    paired = build_rows(base + [_record("gru", 0, values=(0.3, 0.1, 0.2), users=("c", "a", "b"))])
    gru = next(r for r in paired if r.model == "gru")
    assert gru.paired is not None and gru.paired.mean_diff == pytest.approx(0.0)  # aligned by user id


def test_same_variant_merges_runs_that_differ_only_in_the_named_overrides():
    from seqexp.compare.cli import _parser, same_variant

    def run(seed, *overrides):
        r = _record("sasrec", seed, values=(0.1 * (seed + 1), 0.2, 0.3))
        r.overrides = ["experiment=sparse_catalogue", *overrides]
        return r

    runs = [run(0, "trainer.max_epochs=9", "trainer.patience=3"), run(1, "trainer.patience=2"), run(2)]
    assert len([r for r in build_rows(runs, baseline="sasrec") if r.model == "sasrec"]) == 3  # budgets split rows
    args = _parser().parse_args(["runs", "--same-variant", "trainer.max_epochs", "trainer.patience"])
    merged = build_rows(same_variant(runs, args.same_variant), baseline="sasrec")
    assert len(merged) == 1 and len(merged[0].runs) == 3 and merged[0].variant == ""
    assert merged[0].runs[0].overrides == ["experiment=sparse_catalogue"]  # what sets the recipe apart is kept
    kept = same_variant([run(3, "model.optimizer.lr=1e-3")], ["", "trainer.max_epochs"])  # "" matches nothing
    assert kept[0].overrides == ["experiment=sparse_catalogue", "model.optimizer.lr=1e-3"]


def test_a_replaced_run_is_not_counted_as_a_seed(tmp_path, capsys):
    """trainer.overwrite=true moves the old run into <run dir>/replaced-<time>/: searched from above, it is listed
    as skipped, never averaged with the run that replaced it; given itself, it is compared."""
    from conftest import compose_train
    from seqexp.app.train import train

    train(compose_train(tmp_path, *TINY))
    train(compose_train(tmp_path, *TINY, "trainer.overwrite=true", "model.optimizer.lr=0.02"))
    (moved,) = (tmp_path / "run").glob("replaced-*")
    runs = read_runs([tmp_path / "run"])
    assert [(r.source, r.status) for r in runs] == [(str(tmp_path / "run"), "completed"), (str(moved), "skipped")]
    assert "a replaced run" in runs[1].error
    assert [r.status for r in read_runs([moved])] == ["completed"]
    compare_main([str(tmp_path / "run")])
    assert f"skipped {moved}" in capsys.readouterr().err
