"""seqexp-compare on bad input: corrupt, foreign and untrained results are skipped and named, user mistakes end
in one error line and exit 2, and the table keeps every number whole outside a wide terminal (issue #14)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from seqexp.compare.cli import main as compare_main
from seqexp.compare.format import print_table
from seqexp.compare.leaderboard import build_rows
from seqexp.compare.runs import read_runs

# lstm seeds 0, 1 and gru seed 0: test NDCG@10 per seed, per-user values with that mean.
LSTM = {0: (0.19, [0.09, 0.29]), 1: (0.21, [0.11, 0.31])}
GRU = {0: (0.30, [0.25, 0.35])}


def results(model: str, seed: int, ndcg: float, per_user: list[float], **training: int) -> dict:
    """A completed results.json as seqexp-train writes it, reduced to what seqexp-compare reads."""
    return {
        "status": "completed",
        "model": model,
        "data": "d",
        "seed": seed,
        "metrics": {"test/ndcg@10": ndcg, "test/hr@10": 2 * ndcg, "test/mrr@10": ndcg / 2, "test/hr@20": 0.9},
        "per_user": {"metric": "test/ndcg@10", "user_ids": ["u1", "u2"], "values": per_user},
        "data_fingerprint": "f" * 16,
        "protocol": {"split": "leave_one_out", "ranking": "full", "filter_seen": True},
        "training": {"parameters": 1234, "epochs_run": 3, "best_epoch": 2, **training},
        "timings": {"train_s": 10.0},
        "throughput": {"train_sequences_per_s": 50.0},
    }


def write_run(root: Path, name: str, payload: object) -> Path:
    """A run dir whose results.json holds `payload`: bytes and str as they are, anything else as JSON."""
    run = root / name
    (run / ".hydra").mkdir(parents=True)
    if not isinstance(payload, bytes):
        payload = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
    (run / "results.json").write_bytes(payload)
    return run


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    """Three good runs (lstm x2, gru x1)."""
    for seed, (ndcg, users) in LSTM.items():
        write_run(tmp_path / "sweep", f"lstm-{seed}", results("lstm", seed, ndcg, users))
    write_run(tmp_path / "sweep", "gru-0", results("gru", 0, *GRU[0]))
    return tmp_path / "sweep"


def _leaderboard_models(markdown: str) -> list[str]:
    return [line.split("|")[2].strip() for line in markdown.splitlines() if line.startswith("| d ")]


BAD_FILES = {
    "truncated": ('{"status": "completed", "model": "ls', "is not valid JSON (truncated?)"),
    "a-list": ("[1, 2, 3]", "not a seqexp results.json: it holds a JSON list, not an object"),
    "foreign": (
        '{"accuracy": 0.9, "epochs": 3}',
        "not a seqexp results.json: no 'status' key (its keys: accuracy, epochs)",
    ),
    "foreign-completed": ('{"status": "completed", "model": "x"}', "missing data, seed, metrics, per_user.user_ids"),
    "not-utf8": (b'{"status": "\xff\xfe"}', "is not valid JSON"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_corrupt_or_foreign_results_json_is_skipped_and_named_and_the_rest_ranked(runs_dir, name, capsys):
    text, reason = BAD_FILES[name]
    bad = write_run(runs_dir, name, text)
    assert compare_main([str(runs_dir), "--format", "markdown"]) == 0
    out, err = capsys.readouterr()
    warning = next(line for line in err.splitlines() if line.startswith("seqexp-compare: warning: skipped"))
    assert str(bad) in warning and reason in warning
    assert _leaderboard_models(out) == ["gru", "lstm"]
    assert f"- skipped: {bad}" in out and reason in out


def test_an_unreadable_results_json_is_skipped(runs_dir, capsys):
    bad = runs_dir / "unreadable"
    (bad / "results.json").mkdir(parents=True)  # reading it fails with an OSError, also for root
    assert compare_main([str(runs_dir), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    reason = f"cannot read {bad / 'results.json'}: Is a directory"
    assert f"seqexp-compare: warning: skipped {bad} — {reason}" in err
    payload = json.loads(out)
    assert [r["model"] for r in payload["rows"]] == ["gru", "lstm"]
    assert payload["not_averaged"] == [
        {"source": str(bad), "status": "skipped", "model": "?", "seed": None, "error": reason}
    ]


UNTRAINED = {
    "never-trained": ({"epochs_run": 0, "best_epoch": 0}, "the model never trained (training.epochs_run = 0)"),
    "never-improved": ({"best_epoch": 0}, "no validation improvement was ever recorded (training.best_epoch = 0)"),
}


@pytest.mark.parametrize("name", sorted(UNTRAINED))
def test_a_model_that_never_trained_is_listed_as_skipped_never_ranked(runs_dir, name, capsys):
    training, reason = UNTRAINED[name]
    bad = write_run(runs_dir, name, results("sasrec", 0, 0.99, [0.99, 0.99], **training))  # would rank first
    assert compare_main([str(runs_dir), "--format", "markdown"]) == 0
    out, err = capsys.readouterr()
    assert "sasrec" not in "".join(line for line in out.splitlines() if line.startswith("|"))
    assert f"- skipped: {bad} (sasrec, seed 0) — {reason}" in out
    assert f"seqexp-compare: warning: skipped {bad} (sasrec, seed 0) — {reason}" in err


def test_other_statuses_are_skipped_and_failed_runs_listed_with_their_error(runs_dir, capsys):
    failed = write_run(
        runs_dir, "failed", {"status": "failed", "model": "gru", "seed": 2, "error": "TrainingDiverged: NaN"}
    )
    silent = write_run(runs_dir, "silent", {"status": "failed", "model": "gru", "seed": 3})
    running = write_run(runs_dir, "running", dict(results("gru", 4, 0.5, [0.5, 0.5]), status="running"))
    nan = write_run(runs_dir, "nan", results("gru", 5, float("nan"), [0.5, 0.5]))
    killed = runs_dir / "killed" / ".hydra"
    killed.mkdir(parents=True)
    assert compare_main([str(runs_dir), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert _leaderboard_models(out) == ["gru", "lstm"]
    gru_row = next(line for line in out.splitlines() if line.startswith("| d | gru"))
    assert "| 1 | 0.3000 |" in gru_row  # one seed: the failed, running and NaN gru runs are not averaged in
    assert f"- failed: {failed} (gru, seed 2) — TrainingDiverged: NaN" in out
    assert f"- failed: {silent} (gru, seed 3) — no error recorded" in out
    assert f"- skipped: {running} (gru, seed 4) — status 'running', not 'completed'" in out
    assert f"- skipped: {nan} (gru, seed 5) — metrics.test/ndcg@10 is nan, not a finite number" in out
    assert f"- unfinished: {killed.parent} — no results.json (killed or still running)" in out


def test_only_bad_runs_is_an_error_that_counts_them(tmp_path, capsys):
    write_run(tmp_path, "a", "[]")
    write_run(tmp_path, "b", {"status": "failed", "model": "gru", "seed": 0})
    assert compare_main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == f"seqexp-compare: error: no completed runs to rank under {tmp_path} (1 failed, 1 skipped)"


@pytest.mark.parametrize(
    "args, message",
    [
        (["{tmp}/nope"], "{tmp}/nope does not exist; give run dirs or folders holding them"),
        (["{tmp}/empty"], "no run dirs under {tmp}/empty (a run dir holds results.json or .hydra/)"),
        (["{runs}", "{tmp}/empty"], "no run dirs under {tmp}/empty (a run dir holds results.json or .hydra/); drop it"),
        (["{tmp}/empty/notes.txt"], "{tmp}/empty/notes.txt is a file; give a run dir (or its results.json)"),
        (["{runs}", "--metric", "test/ndcg@100"], "--metric 'test/ndcg@100' is not in the results of 3 of 3 runs"),
        (["{runs}", "--baseline", "lsmt"], "--baseline 'lsmt' has no completed run here; the models are: gru, lstm"),
        (["{runs}", "--format", "json", "--output", "{runs}"], "cannot write --output {runs}: Is a directory"),
        (["{runs}", "--plot", "{tmp}/plot.xyz"], "cannot write --plot {tmp}/plot.xyz: Format 'xyz' is not supported"),
        (
            ["{runs}", "--plot", "{tmp}/empty"],
            "--plot {tmp}/empty is a folder; give a file name, e.g. --plot {tmp}/empty/",
        ),
    ],
)
def test_user_mistakes_end_in_one_error_line_and_exit_2(runs_dir, tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    subst = {"tmp": str(tmp_path), "runs": str(runs_dir)}
    assert compare_main([a.format(**subst) for a in args]) == 2
    out, err = capsys.readouterr()
    assert len(err.splitlines()) == 1 and err.startswith("seqexp-compare: error: " + message.format(**subst))
    assert out == ""


def test_metric_ranks_the_rows_and_the_change_and_lists_the_available_metrics(runs_dir, capsys):
    assert compare_main([str(runs_dir), "--metric", "test/hr@10", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    gru = next(r for r in payload["rows"] if r["model"] == "gru")
    assert gru["ranked_by"] == "test/hr@10" and gru["relative_change"] == pytest.approx((0.6 - 0.4) / 0.4)
    assert compare_main([str(runs_dir), "--metric", "test/hr@20", "--format", "csv"]) == 0
    assert "HR@20" in capsys.readouterr().out.splitlines()[0]
    assert compare_main([str(runs_dir), "--metric", "nope"]) == 2
    assert "choose one of: test/hr@10, test/hr@20, test/mrr@10, test/ndcg@10" in capsys.readouterr().err


def test_results_json_given_directly_is_read(runs_dir):
    runs = read_runs([runs_dir / "gru-0" / "results.json"])
    assert [(r.model, r.status) for r in runs] == [("gru", "completed")]


LSTM_CELL = "0.2000 ± 0.0141 [0.0729, 0.3271]"  # mean, sample std and 95% t-interval of (0.19, 0.21), by hand


def test_captured_output_is_a_markdown_table_with_whole_numbers(runs_dir, capsys):
    assert compare_main([str(runs_dir)]) == 0  # --format table, stdout captured: not a terminal
    out = capsys.readouterr().out
    lstm = next(line for line in out.splitlines() if line.startswith("| d | lstm"))
    assert f"| {LSTM_CELL} |" in lstm and "…" not in out and "+50.0%" in out  # gru vs lstm: 0.3 / 0.2 - 1


@pytest.mark.parametrize("width, rich", [(80, False), (120, False), (400, True)])
def test_a_terminal_gets_the_rich_table_only_when_it_is_wide_enough(runs_dir, width, rich):
    rows = build_rows(read_runs([runs_dir]))
    buf = io.StringIO()
    print_table(rows, [], Console(file=buf, force_terminal=True, width=width, color_system=None))
    out = buf.getvalue()
    assert LSTM_CELL in out and "…" not in out
    assert ("┃" in out) is rich and out.startswith("| data | model |") is not rich


def test_the_cli_follows_the_terminal_width(runs_dir, capsys, monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich: treat stdout as a terminal
    monkeypatch.setenv("COLUMNS", "80")
    assert compare_main([str(runs_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| data | model |") and LSTM_CELL in out
    monkeypatch.setenv("COLUMNS", "400")
    assert compare_main([str(runs_dir)]) == 0
    assert "Leaderboard" in capsys.readouterr().out


def test_a_broken_overrides_yaml_skips_its_run_and_names_the_file(runs_dir, capsys):
    bad = write_run(runs_dir, "bad-overrides", results("sasrec", 0, 0.5, [0.4, 0.6]))
    (bad / ".hydra" / "overrides.yaml").write_text("- model=sasrec\n- [unclosed\n")
    assert compare_main([str(runs_dir), "--format", "markdown"]) == 0
    out, err = capsys.readouterr()
    assert f"seqexp-compare: warning: skipped {bad} — cannot read {bad / '.hydra' / 'overrides.yaml'}: " in err
    assert _leaderboard_models(out) == ["gru", "lstm"]


@pytest.fixture
def two_variants(tmp_path) -> Path:
    """lstm with dropout 0.2 (per-user 0.1, 0.3) and 0.1 (per-user 0.2, 0.5), two seeds each."""
    for dropout, users in (("0.2", [0.1, 0.3]), ("0.1", [0.2, 0.5])):
        for seed in (0, 1):
            run = write_run(tmp_path / "sweep", f"d{dropout}-{seed}", results("lstm", seed, sum(users) / 2, users))
            overrides = ["model=lstm", f"seed={seed}", "data.max_len=20", f"model.encoder.dropout={dropout}"]
            (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    return tmp_path / "sweep"


@pytest.mark.parametrize(
    ("base", "other", "change", "diff"), [("0.2", "0.1", 0.35 / 0.2 - 1, 0.15), ("0.1", "0.2", 0.2 / 0.35 - 1, -0.15)]
)
def test_baseline_variant_pairs_two_variants_of_one_encoder(two_variants, capsys, base, other, change, diff):
    args = [str(two_variants), "--baseline", "lstm", "--baseline-variant", f"model.encoder.dropout={base}"]
    assert compare_main([*args, "--format", "json"]) == 0
    rows = {r["variant"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows[f"model.encoder.dropout={base}"]["note"] == "baseline"
    versus = rows[f"model.encoder.dropout={other}"]
    assert versus["relative_change"] == pytest.approx(change)
    assert versus["paired_vs_baseline"]["mean_diff"] == pytest.approx(diff)  # per user (0.2-0.1, 0.5-0.3) / 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--baseline", "lstm", "--baseline-variant", "model.encoder.dropout=0.3"],
            "--baseline-variant 'model.encoder.dropout=0.3': no completed lstm run has all of these overrides; its "
            "runs have: data.max_len=20 model.encoder.dropout=0.1; data.max_len=20 model.encoder.dropout=0.2 (seed=, "
            "model=, data=, data.path, paths.",
        ),
        (
            ["--baseline", "lstm", "--baseline-variant", "data.max_len=20"],  # shared by both variants
            "--baseline-variant 'data.max_len=20' matches 2 lstm rows on d (model.encoder.dropout=0.1; "
            "model.encoder.dropout=0.2); name the overrides that tell them apart",
        ),
    ],
)
def test_a_baseline_variant_that_matches_no_row_or_several_is_one_error(two_variants, capsys, extra, message):
    assert compare_main([str(two_variants), *extra]) == 2
    out, err = capsys.readouterr()
    assert len(err.splitlines()) == 1 and err.startswith(f"seqexp-compare: error: {message}") and out == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{runs}", "--baseline-variant", "model.encoder.dropout=0.2"], "--baseline-variant needs --baseline"),
        (
            ["--baseline", "lstm", "--baseline-variant", "model.encoder.dropout=0.2", "{runs}"],
            "--baseline-variant takes overrides key=value, not '{runs}': put the run dirs (PATH...) before",
        ),
    ],
)
def test_misused_baseline_variant_options_are_a_usage_error(two_variants, capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        compare_main([a.format(runs=two_variants) for a in argv])
    assert (
        stop.value.code == 2
        and f"seqexp-compare: error: {message.format(runs=two_variants)}" in capsys.readouterr().err
    )


def test_baseline_variant_prefers_the_exact_row_reads_plus_prefixes_and_names_missing_data_sets(tmp_path, capsys):
    """`dropout=0.2` picks its own row over `dropout=0.2 lr=3e-3`, `+key=v` matches `key=v`, and a data set
    without the baseline variant says which variant it lacks."""
    rows = {
        ("d", "a"): ["model.encoder.dropout=0.2"],
        ("d", "b"): ["model.encoder.dropout=0.2", "model.optimizer.lr=3e-3"],
        ("e", "c"): ["model.encoder.dropout=0.1"],
    }
    for (data, name), overrides in rows.items():
        payload = {**results("lstm", 0, 0.2, [0.1, 0.3]), "data": data}
        run = write_run(tmp_path / "runs", name, payload)
        (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    argv = [str(tmp_path / "runs"), "--baseline", "lstm", "--baseline-variant", "+model.encoder.dropout=0.2"]
    assert compare_main([*argv, "--format", "json"]) == 0
    notes = {(r["data"], r["variant"]): r["note"] for r in json.loads(capsys.readouterr().out)["rows"]}
    assert notes[("d", "model.encoder.dropout=0.2")] == "baseline"
    assert notes[("d", "model.encoder.dropout=0.2 model.optimizer.lr=0.003")] == ""  # compared with the exact row
    assert notes[("e", "model.encoder.dropout=0.1")] == "no 'lstm' runs with +model.encoder.dropout=0.2 on e"


def test_one_value_written_two_ways_is_one_variant_and_matches_the_baseline_variant(tmp_path, capsys):
    # formerly the override text was compared: lr=1e-3 and lr=0.001 were two rows of one seed each
    spelled = {0: "model.optimizer.lr=1e-3", 1: "model.optimizer.lr=0.001", 2: "+model.optimizer.lr=0.0010"}
    for seed, lr in spelled.items():
        run = write_run(tmp_path / "runs", f"gru-{seed}", results("gru", seed, 0.3, [0.25, 0.35]))
        (run / ".hydra" / "overrides.yaml").write_text(f"- {lr}\n- model.use_bias=True\n")
    run = write_run(tmp_path / "runs", "gru-other", results("gru", 0, 0.2, [0.1, 0.3]))
    (run / ".hydra" / "overrides.yaml").write_text("- model.optimizer.lr=3e-3\n- model.use_bias=true\n")
    argv = [str(tmp_path / "runs"), "--baseline", "gru", "--baseline-variant", "model.optimizer.lr=.001"]
    assert compare_main([*argv, "--format", "json"]) == 0
    rows = {r["variant"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert set(rows) == {"model.optimizer.lr=0.001", "model.optimizer.lr=0.003"}  # use_bias=True/true: shared
    assert (
        rows["model.optimizer.lr=0.001"]["seeds"] == [0, 1, 2]
        and rows["model.optimizer.lr=0.001"]["note"] == "baseline"
    )
    assert rows["model.optimizer.lr=0.003"]["paired_vs_baseline"]["mean_diff"] == pytest.approx(-0.1)


def test_canonical_overrides_keep_what_is_not_a_plain_number():
    from seqexp.compare.runs import canonical

    assert canonical("a.b=1e-3") == canonical("a.b=0.0010") == "a.b=0.001"
    assert canonical("+a.b=-2E2") == "a.b=-200" and canonical("n=007") == "n=7" and canonical("f=False") == "f=false"
    assert canonical("dropout=0") == canonical("dropout=0.0") == canonical("dropout=0e0") == "dropout=0"  # one value
    assert canonical("dropout=0.5") == "dropout=0.5" and canonical("n=1e3") == canonical("n=1000.") == "n=1000"
    assert canonical("++model/loss=sampled") == "model/loss=sampled"
    for kept in ("model=gru", "a.b=[1,2]", "a.b='1e-3'", "a.b=null", "a.b=1e-3x", "~a.b", "~a.b=1", "a.b=nan"):
        assert canonical(kept) == kept


def test_runs_on_two_files_of_one_format_are_never_one_row(tmp_path, capsys):
    """Two CSV logs (data name `d` both, other contents): each file's runs form their own rows and baseline,
    never one row of 'two seeds' averaged across files."""
    for log, fingerprint, scale in (("a", "a" * 16, 1.0), ("b", "b" * 16, 0.5)):
        for model, values in (("lstm", [0.1 * scale, 0.3 * scale]), ("gru", [0.3 * scale, 0.5 * scale])):
            payload = {**results(model, 0, sum(values) / 2, values), "data_fingerprint": fingerprint}
            write_run(tmp_path / "runs", f"{log}-{model}", payload)
    assert compare_main([str(tmp_path / "runs"), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert sorted((r["data"], r["model"], len(r["seeds"])) for r in rows) == [
        ("d@aaaaaaaa", "gru", 1), ("d@aaaaaaaa", "lstm", 1), ("d@bbbbbbbb", "gru", 1), ("d@bbbbbbbb", "lstm", 1),
    ]  # fmt: skip
    gru = [r for r in rows if r["model"] == "gru"]
    assert all(r["relative_change"] == pytest.approx(0.4 / 0.2 - 1) for r in gru)  # each against its own file's lstm
    # (merged, the gru row would be 0.3 against lstm 0.15 and "2 seeds")


def test_each_protocol_is_compared_with_the_baseline_evaluated_the_same_way(tmp_path, capsys):
    """lstm and gru with seen items filtered and unfiltered: each gru row is compared with the lstm row of its own
    protocol, not with the variant-free one (whose numbers do not compare)."""
    for filtered, scale in ((True, 1.0), (False, 0.5)):
        for model, values in (("lstm", [0.1 * scale, 0.3 * scale]), ("gru", [0.3 * scale, 0.5 * scale])):
            payload = results(model, 0, sum(values) / 2, values)
            payload["protocol"] = {**payload["protocol"], "filter_seen": filtered}
            run = write_run(tmp_path / "runs", f"{model}-{filtered}", payload)
            if not filtered:
                (run / ".hydra" / "overrides.yaml").write_text("- eval.filter_seen=false\n")
    assert compare_main([str(tmp_path / "runs"), "--format", "json"]) == 0
    rows = {(r["model"], r["variant"]): r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows[("lstm", "")]["note"] == rows[("lstm", "eval.filter_seen=false")]["note"] == "baseline"
    for variant in ("", "eval.filter_seen=false"):
        assert rows[("gru", variant)]["relative_change"] == pytest.approx(0.4 / 0.2 - 1)
        assert rows[("gru", variant)]["paired_vs_baseline"]["mean_diff"] == pytest.approx(
            0.2 * (1 if not variant else 0.5)
        )


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("seqexp-compare: warning: ")]


@pytest.mark.parametrize("rerun", [False, True], ids=["copied", "rerun-with-other-metrics"])
def test_a_seed_found_twice_counts_once_and_the_warning_names_both_dirs(runs_dir, capsys, rerun):
    """A run dir copied (or one seed rerun in another dir) is one seed, not two: the first in path order is kept,
    the other listed as skipped, so mean ± sd and the paired test see each seed once."""
    ndcg, users = (0.5, [0.4, 0.6]) if rerun else LSTM[0]
    kept, dup = runs_dir / "lstm-0", write_run(runs_dir, "lstm-0-rerun", results("lstm", 0, ndcg, users))
    write_run(runs_dir, "gru-0-copy", results("gru", 0, *GRU[0]))  # the baseline's comparator, doubled too
    assert compare_main([str(runs_dir), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    rows = {r["model"]: r for r in json.loads(out)["rows"]}
    assert rows["lstm"]["seeds"] == [0, 1] and rows["gru"]["seeds"] == [0]
    assert rows["lstm"]["test/ndcg@10"]["mean"] == pytest.approx(0.2)
    assert rows["lstm"]["test/ndcg@10"]["std"] == pytest.approx(0.0141421, abs=1e-6)  # of (0.19, 0.21), not 3 runs
    assert rows["gru"]["relative_change"] == pytest.approx(0.5)
    assert rows["gru"]["paired_vs_baseline"]["mean_diff"] == pytest.approx(0.1)  # (0.25-0.10, 0.35-0.30) / 2
    warning = next(w for w in _warnings(err) if str(dup) in w)
    assert f"skipped {dup} (lstm, seed 0) — seed 0 of d / lstm is already counted from {kept} (kept" in warning
    assert ("test metrics differ" if rerun else "same test metrics") in warning
    assert "move or delete one of the two run dirs, or rerun it with another seed" in warning
    assert any(f"skipped {runs_dir / 'gru-0-copy'} (gru, seed 0)" in w for w in _warnings(err))
    skipped = {r["source"] for r in json.loads(out)["not_averaged"]}
    assert skipped == {str(dup), str(runs_dir / "gru-0-copy")}


def test_build_rows_never_counts_a_seed_twice(runs_dir):
    """The library call gives the same rows as the command: one run per (data, model, variant, seed)."""
    runs = read_runs([runs_dir])
    doubled = build_rows([*runs, *(replace(r, source=r.source + "-copy") for r in runs)])
    assert [(r.model, r.seeds, len(r.runs)) for r in doubled] == [("gru", [0], 1), ("lstm", [0, 1], 2)]


def test_json_output_is_strict_json_with_null_for_nan_and_inf(runs_dir, capsys):
    """One seed has no sd or interval, the baseline no change, a run without a parameter count no mean: null in the
    JSON output, never a bare NaN / Infinity that strict parsers (jq, JavaScript, json.loads(parse_constant))
    refuse."""
    payload = results("gru", 0, *GRU[0])
    payload["training"]["parameters"] = None
    (runs_dir / "gru-0" / "results.json").write_text(json.dumps(payload))

    def refuse(constant: str) -> None:
        raise AssertionError(f"not JSON: {constant}")

    assert compare_main([str(runs_dir), "--format", "json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out, parse_constant=refuse)["rows"]}
    assert rows["lstm"]["note"] == "baseline" and rows["lstm"]["relative_change"] is None
    assert rows["gru"]["test/ndcg@10"] == {"mean": 0.3, "std": None, "ci95": [None, None]}
    assert rows["gru"]["parameters"] is None


def test_to_json_writes_infinities_as_null_and_never_a_bare_constant():
    from seqexp.compare.format import to_json
    from seqexp.compare.runs import RunRecord

    other = RunRecord("x", "skipped", seed=float("inf"), error="e")  # whatever a damaged file held
    text = to_json([], [other])
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c))["not_averaged"][0]["seed"] is None


def _damaged(edit: Callable[[dict], None]) -> dict:
    payload = results("sasrec", 0, 0.99, [0.99, 0.99])  # would rank first
    payload["per_user_metrics"] = {"test/novelty@10": [1.0, 2.0]}
    edit(payload)
    return payload


DAMAGED = {
    "model-null": (lambda p: p.update(model=None), "model is null, expected a string"),
    "data-number": (lambda p: p.update(data=7), "data is an int, expected a string"),
    "seed-string": (lambda p: p.update(seed="0"), "seed is a str, expected an integer"),
    "seed-bool": (lambda p: p.update(seed=True), "seed is a bool, expected an integer"),
    "fingerprint-list": (lambda p: p.update(data_fingerprint=["f"]), "data_fingerprint is a list, expected a string"),
    "protocol-string": (lambda p: p.update(protocol="x"), "protocol is a str, expected a mapping"),
    "sample-users-list": (
        lambda p: p["protocol"].update(valid_sample_users=[1]),
        "protocol.valid_sample_users is a list, expected an integer",
    ),
    "training-string": (lambda p: p.update(training="abc"), "training is a str, expected a mapping"),
    "parameters-string": (
        lambda p: p["training"].update(parameters="abc"),
        "training.parameters is a str, expected a number",
    ),
    "epochs-string": (
        lambda p: p["training"].update(epochs_run="3"),
        "training.epochs_run is a str, expected a number",
    ),
    "train-s-list": (lambda p: p["timings"].update(train_s=[1]), "timings.train_s is a list, expected a number"),
    "throughput-string": (lambda p: p.update(throughput="fast"), "throughput is a str, expected a mapping"),
    "metrics-list": (lambda p: p.update(metrics=[0.1]), "metrics is a list, expected a mapping"),
    "per-user-string": (lambda p: p.update(per_user="u1"), "per_user is a str, expected a mapping"),
    "per-user-metrics-list": (
        lambda p: p.update(per_user_metrics=[[1.0, 2.0]]),
        "per_user_metrics is a list, expected a mapping",
    ),
    "per-user-metric-string": (
        lambda p: p["per_user_metrics"].update({"test/novelty@10": "high"}),
        "per_user_metrics.test/novelty@10 is a str, expected a list of numbers",
    ),
    "per-user-metric-words": (
        lambda p: p["per_user_metrics"].update({"test/novelty@10": ["a", "b"]}),
        "per_user_metrics.test/novelty@10 is a list holding a str, expected a list of numbers",
    ),
    "per-user-metric-short": (
        lambda p: p["per_user_metrics"].update({"test/novelty@10": [1.0]}),
        "per_user_metrics.test/novelty@10 holds 1 values for 2 users in per_user.user_ids",
    ),
    "overrides-string": (lambda p: p.update(overrides="seed=0"), "overrides is a str, expected a list of strings"),
    "overrides-numbers": (
        lambda p: p.update(overrides=[1, 2]),
        "overrides is a list holding an int, expected a list of strings",
    ),
    "wandb-group-list": (lambda p: p.update(wandb_group=["g"]), "wandb_group is a list, expected a string"),
    "history-strings": (
        lambda p: p.update(history=["epoch 1"]),
        "history is a list holding a str, expected a list of mappings",
    ),
}


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_a_hand_damaged_results_json_is_skipped_with_the_key_and_the_rest_ranked(runs_dir, name, capsys):
    edit, reason = DAMAGED[name]
    bad = write_run(runs_dir, name, _damaged(edit))
    assert compare_main([str(runs_dir), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert [r["model"] for r in json.loads(out)["rows"]] == ["gru", "lstm"]
    warning = next(w for w in _warnings(err) if str(bad) in w)
    assert warning.startswith(f"seqexp-compare: warning: skipped {bad}") and f"— results.json: {reason}" in warning
    assert compare_main([str(runs_dir), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert _leaderboard_models(out) == ["gru", "lstm"]
    assert f"- skipped: {bad}" in out and f"results.json: {reason}" in out


def test_a_failed_run_with_damaged_fields_is_listed_not_a_traceback(runs_dir, capsys):
    bad = write_run(runs_dir, "failed", {"status": "failed", "model": None, "seed": [0], "overrides": [1, 2]})
    assert compare_main([str(runs_dir), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert _leaderboard_models(out) == ["gru", "lstm"] and f"- failed: {bad} — no error recorded" in out


def _with_beyond(payload: dict, gini: float, avg_pop: float, novelty: float) -> dict:
    payload["metrics"].update({"test/gini@10": gini, "test/avg_pop@10": avg_pop, "test/novelty@10": novelty})
    return payload


@pytest.mark.parametrize(
    "metric, order, direction",
    [
        ("test/gini@10", ["gru", "lstm"], "lower is better"),  # gru's exposure is the more even
        ("test/avg_pop@10", ["gru", "lstm"], "lower is better"),  # gru shows the less popular items
        ("test/novelty@10", ["lstm", "gru"], "higher is better"),
    ],
)
def test_a_lower_is_better_metric_ranks_the_lowest_first_and_says_so(tmp_path, capsys, metric, order, direction):
    for seed, (ndcg, users) in LSTM.items():
        write_run(tmp_path, f"lstm-{seed}", _with_beyond(results("lstm", seed, ndcg, users), 0.8, 300.0, 9.0))
    write_run(tmp_path, "gru-0", _with_beyond(results("gru", 0, *GRU[0]), 0.4, 100.0, 6.0))
    assert compare_main([str(tmp_path), "--metric", metric, "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in payload["rows"]] == order
    assert payload["metric_direction"] == direction and payload["rows"][0]["metric_direction"] == direction
    assert compare_main([str(tmp_path), "--metric", metric, "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert _leaderboard_models(out) == order
    assert (f", {direction})" in out.splitlines()[0]) == (direction == "lower is better")


def test_overrides_that_change_no_number_never_split_a_row(tmp_path, capsys):
    """A seed redone with trainer.overwrite=true, or scored in smaller batches, is the same variant: formerly it was a
    one-seed row of its own and its seed was missing from the main row's mean."""
    neutral = {1: "trainer.overwrite=true", 2: "eval.batch_size=128", 3: "+eval.item_chunk=1000"}
    for seed in (0, 1, 2, 3):
        run = write_run(tmp_path / "runs", f"gru-{seed}", results("gru", seed, 0.3, [0.25, 0.35]))
        extra = [neutral[seed]] if seed in neutral else []
        (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in ["model=gru", *extra]))
    assert compare_main([str(tmp_path / "runs"), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["variant"], r["seeds"]) for r in rows] == [("", [0, 1, 2, 3])]


def test_a_plot_name_without_an_extension_gets_png_and_a_folder_is_refused(runs_dir, tmp_path, capsys):
    """matplotlib adds `.png` to a name without one, so `--plot board` wrote board.png while seqexp-compare logged
    `board` to W&B; `--plot <folder>` wrote `<folder>.png` beside the folder and exited 0."""
    assert compare_main([str(runs_dir), "--plot", str(tmp_path / "board")]) == 0
    assert (tmp_path / "board.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not (tmp_path / "board").exists()
    (tmp_path / "figures").mkdir()
    assert compare_main([str(runs_dir), "--plot", str(tmp_path / "figures")]) == 2
    assert "is a folder" in capsys.readouterr().err and not (tmp_path / "figures.png").exists()


def test_runs_whose_recorded_configs_differ_are_other_rows_not_seeds_of_one(tmp_path):
    """A model YAML copied under another file name that keeps `name: lstm`, or the card defaults of another seqexp
    version: same model name, same overrides. Formerly averaged as seeds of one row (or one dropped as a repeat)."""
    card = {"model": {"name": "lstm", "embedding_dim": 128, "optimizer": {"lr": 0.001}}, "seed": 0}
    small = {**card, "model": {**card["model"], "embedding_dim": 32}}
    for seed, config in ((0, card), (1, card), (0, small)):
        name = f"lstm-{seed}-{config['model']['embedding_dim']}"
        ndcg = 0.2 if config is card else 0.05
        write_run(tmp_path, name, {**results("lstm", seed, ndcg, [ndcg, ndcg]), "config": {**config, "seed": seed}})
    newer = {**card, "eval": {"diversity_separator": "auto"}}  # a key only a later version records: not compared
    write_run(tmp_path, "lstm-2-newer", {**results("lstm", 2, 0.2, [0.2, 0.2]), "config": {**newer, "seed": 2}})
    rows = build_rows(read_runs([tmp_path]))
    assert {r.variant: r.seeds for r in rows} == {"model.embedding_dim=128": [0, 1, 2], "model.embedding_dim=32": [0]}
    assert {r.variant: r.summaries["test/ndcg@10"].mean for r in rows} == pytest.approx(
        {"model.embedding_dim=128": 0.2, "model.embedding_dim=32": 0.05}
    )


def test_without_a_plain_baseline_row_each_row_is_compared_with_the_baseline_of_its_own_variant(tmp_path):
    """A sweep over model=lstm,gru trainer.max_epochs=2,4: formerly every gru row was compared with the first lstm row
    in sort order (max_epochs=4 gru against max_epochs=2 lstm), unnamed."""
    for model, epochs, ndcg in (("lstm", 2, 0.10), ("lstm", 4, 0.20), ("gru", 2, 0.11), ("gru", 4, 0.22)):
        payload = {**results(model, 0, ndcg, [ndcg, ndcg]), "overrides": [f"trainer.max_epochs={epochs}"]}
        write_run(tmp_path, f"{model}-{epochs}", payload)
    rows = {(r.model, r.variant): r for r in build_rows(read_runs([tmp_path]))}
    assert rows[("gru", "trainer.max_epochs=4")].relative_change == pytest.approx(0.1)  # 0.22 vs lstm's 0.20
    assert rows[("gru", "trainer.max_epochs=2")].relative_change == pytest.approx(0.1)  # 0.11 vs 0.10
    assert rows[("gru", "trainer.max_epochs=4")].versus == "lstm trainer.max_epochs=4"  # and the table says so:
    from seqexp.compare.format import cells

    assert "+10.0% vs lstm trainer.max_epochs=4" in cells(rows[("gru", "trainer.max_epochs=4")])
    write_run(tmp_path, "gru-8", {**results("gru", 0, 0.3, [0.3, 0.3]), "overrides": ["trainer.max_epochs=8"]})
    rows = {(r.model, r.variant): r for r in build_rows(read_runs([tmp_path]))}
    assert rows[("gru", "trainer.max_epochs=8")].note == (
        "2 'lstm' rows on d (trainer.max_epochs=2; trainer.max_epochs=4): choose one with --baseline-variant"
    )


def test_nan_in_the_ranking_metric_or_a_null_per_user_value_never_gives_a_nan_leaderboard(runs_dir, capsys):
    # formerly --metric test/hr@20 ranked a nan mean anywhere; one null per-user novelty made the paired test nan
    lstm1 = runs_dir / "lstm-1" / "results.json"
    payload = json.loads(lstm1.read_text())
    lstm1.write_text(json.dumps({**payload, "metrics": {**payload["metrics"], "test/hr@20": float("nan")}}))
    assert compare_main([str(runs_dir), "--metric", "test/hr@20"]) == 2
    assert "--metric 'test/hr@20' is nan, not a finite number, in 1 of 3 runs" in capsys.readouterr().err
    from seqexp.compare.stats import NotComparable, paired_test

    got = paired_test([0.5, float("nan"), 0.7, 0.2], [0.4, 0.3, 0.5, 0.1])  # the second user left out
    assert got.n_users == 3 and got.mean_diff == pytest.approx(0.4 / 3)
    with pytest.raises(NotComparable, match="no user has the paired metric defined in both rows"):
        paired_test([float("nan")], [0.1])


def test_a_csv_names_on_stderr_the_failed_runs_it_leaves_out(runs_dir, capsys):
    gru = runs_dir / "gru-0" / "results.json"  # formerly the CSV said gru had 0 seeds... and nothing else
    write_run(runs_dir, "gru-1", {**results("gru", 1, 0.3, [0.3, 0.3]), "status": "failed", "error": "OOM"})
    assert gru.exists() and compare_main([str(runs_dir), "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert "gru-1 (failed: OOM) is not in the CSV" in err and out.count("\n") == 3  # header + lstm + gru


def test_a_history_entry_without_its_epoch_draws_no_point_instead_of_a_traceback(runs_dir, tmp_path):
    lstm0 = runs_dir / "lstm-0" / "results.json"
    payload = json.loads(lstm0.read_text())
    lstm0.write_text(json.dumps({**payload, "history": [{"valid/ndcg@10": 0.1}, {"epoch": 2, "valid/ndcg@10": 0.2}]}))
    assert compare_main([str(runs_dir), "--plot", str(tmp_path / "p.png")]) == 0  # formerly KeyError: 'epoch'


def test_a_variant_of_the_baseline_model_is_compared_with_its_plain_row(tmp_path):
    """The review of the change above: lstm with another learning rate is compared with the plain lstm, as before."""
    for name, overrides, ndcg in (("lstm", [], 0.2), ("lstm-lr", ["model.optimizer.lr=0.01"], 0.22), ("gru", [], 0.1)):
        write_run(tmp_path, name, {**results(name[:4].rstrip("-"), 0, ndcg, [ndcg, ndcg]), "overrides": overrides})
    rows = {(r.model, r.variant): r for r in build_rows(read_runs([tmp_path]))}
    assert rows[("lstm", "")].note == "baseline"
    assert rows[("lstm", "model.optimizer.lr=0.01")].relative_change == pytest.approx(0.1)
    assert rows[("lstm", "model.optimizer.lr=0.01")].versus == ""  # the plain row: nothing to name


def test_same_variant_still_merges_runs_whose_overrides_reach_other_settings(tmp_path):
    """data.max_len=50 and =200 with --same-variant data.max_len are one row, although the recorded
    model.encoder.max_len (an interpolation of it) differs: the config label compares runs of one command only."""
    from seqexp.compare.cli import same_variant
    from seqexp.compare.seeds import drop_repeated_seeds

    for seed, max_len in ((0, 50), (1, 200)):
        config = {"model": {"name": "sasrec", "encoder": {"max_len": max_len}}, "data": {"max_len": max_len}}
        payload = {**results("sasrec", seed, 0.2, [0.2, 0.2]), "overrides": [f"data.max_len={max_len}"]}
        write_run(tmp_path, f"s{seed}", {**payload, "config": config})
    runs = drop_repeated_seeds(same_variant(read_runs([tmp_path]), ["data.max_len"]))
    (row,) = build_rows(runs, baseline="sasrec")
    assert row.seeds == [0, 1] and row.variant == ""


def test_a_baseline_row_told_apart_by_its_config_can_be_named_with_baseline_variant(tmp_path):
    for seed, dim in ((0, 128), (1, 32)):
        config = {"model": {"name": "lstm", "embedding_dim": dim}}
        write_run(tmp_path, f"lstm-{dim}", {**results("lstm", seed, 0.2, [0.2, 0.2]), "config": config})
    write_run(tmp_path, "gru", {**results("gru", 0, 0.1, [0.1, 0.1]), "config": {"model": {"name": "gru"}}})
    rows = {(r.model, r.variant): r for r in build_rows(read_runs([tmp_path]))}
    assert "choose one with --baseline-variant" in rows[("gru", "")].note
    runs = read_runs([tmp_path])
    from seqexp.compare.leaderboard import check_baseline
    from seqexp.compare.seeds import drop_repeated_seeds

    runs = drop_repeated_seeds(runs)
    check_baseline(runs, "lstm", ["model.embedding_dim=32"])  # formerly "no completed lstm run has all of these"
    rows = {(r.model, r.variant): r for r in build_rows(runs, baseline_variant=["model.embedding_dim=32"])}
    assert rows[("gru", "")].relative_change == pytest.approx(-0.5)


def test_the_settings_compare_tells_runs_apart_by_are_those_a_resume_must_match():
    from seqexp.app.resume import IDENTITY_KEYS
    from seqexp.compare.configs import DEFINING

    assert set(DEFINING) == set(IDENTITY_KEYS) - {"seed"}  # one list of what defines a run, kept in two places
