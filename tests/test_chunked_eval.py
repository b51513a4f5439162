"""Exact ranking in item chunks (eval.item_chunk) equals the whole-catalogue path; the seeded validation sample
(eval.sample_users) is recorded and never touches the test."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from seqexp.data.loader import EvalTensors
from seqexp.evaluation.baselines import PopularityScorer
from seqexp.evaluation.beyond_accuracy import category_tokens, item_facts
from seqexp.evaluation.chunked import factored, rank_in_chunks
from seqexp.evaluation.protocol import EvalProtocol, evaluate, sample_rows
from tests.conftest import TINY, compose_train

N, B, D, L = 37, 50, 4, 6


class Factored:
    """A scorer made of user states and an item table, like SequenceRecommender (score = states @ table.T)."""

    def __init__(self, users: torch.Tensor, items: torch.Tensor) -> None:
        self.users, self.items = users, items  # (U, D) per last history item, (N + 1, D)
        self.score_calls = 0

    def user_states(self, history, features=None):
        return self.users[history[:, -1]]  # (B, D)

    def item_table(self):
        return self.items

    def score(self, history, features=None):
        self.score_calls += 1
        return self.user_states(history) @ self.item_table().T


def _random_case(seed: int, integer: bool):
    g = torch.Generator().manual_seed(seed)
    if integer:  # small whole numbers: exact dot products, many ties (also at the top-K cut and at the target)
        users, items = (torch.randint(-2, 3, (n, D), generator=g).float() for n in (N + 1, N + 1))
    else:
        users, items = torch.randn(N + 1, D, generator=g), torch.randn(N + 1, D, generator=g)
    inputs = torch.randint(1, N + 1, (B, L), generator=g)
    inputs[:5, :3] = 0  # some short (left-padded) histories
    targets = torch.randint(1, N + 1, (B,), generator=g)
    seen = [sorted(set(row[row > 0].tolist())) for row in inputs]
    seen[0] = sorted(set(seen[0]) | {int(targets[0])})  # a filtered target: a miss in both paths
    offsets = np.cumsum([0] + [len(s) for s in seen])
    t = EvalTensors(
        users=torch.arange(B),
        inputs=inputs,
        targets=targets,
        seen_offsets=torch.tensor(offsets),
        seen_items=torch.tensor([i for s in seen for i in s], dtype=torch.int64),
    )
    return Factored(users, items), t


@pytest.mark.parametrize("filter_seen", [True, False])
@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("chunk", [1, 5, 16, N + 1, 1000])
def test_chunked_ranking_gives_the_metrics_of_the_whole_catalogue(chunk, integer, filter_seen):
    scorer, t = _random_case(chunk + 7 * integer, integer)
    kw = dict(n_items=N, filter_seen=filter_seen, ks=(1, 5, 10, 20), batch_size=16)
    whole = evaluate(scorer.score, t, **kw)
    calls = scorer.score_calls
    chunked = evaluate(scorer.score, t, item_chunk=chunk, **kw)
    assert scorer.score_calls == calls  # the chunked path never builds the (B, N + 1) matrix
    assert set(chunked.metrics) == set(whole.metrics)
    for name, values in whole.per_user.items():
        np.testing.assert_allclose(chunked.per_user[name], values, rtol=0, atol=1e-6, err_msg=name)
    if not integer:  # without ties at the top-K cut the lists themselves are the same
        np.testing.assert_array_equal(chunked.exposure, whole.exposure)
        assert chunked.metrics == pytest.approx(whole.metrics, abs=1e-9)
    if filter_seen:
        assert float(chunked.per_user["hr@20"][0]) == 0.0  # user 0's target was seen: a miss


def test_rank_counts_and_top_k_are_exact_across_chunk_borders():
    states = torch.tensor([[1.0]])
    table = torch.tensor([[0.0], [3.0], [5.0], [3.0], [9.0], [3.0], [1.0]])  # item 0 = padding
    seen = (torch.tensor([0]), torch.tensor([4]))  # item 4 (the best) was seen
    for chunk in (1, 2, 3, 7):
        greater, ties, reachable, values, indices = rank_in_chunks(states, table, torch.tensor([3]), seen, 3, chunk)
        assert (greater.item(), ties.item(), reachable.item()) == (1, 2, True)  # 5 above; 1 and 5 tie with 3
        assert values.tolist() == [[5.0, 3.0, 3.0]] and indices[0, 0].item() == 2
        g, _, r, _, _ = rank_in_chunks(states, table, torch.tensor([4]), seen, 3, chunk)
        assert not r.item()  # the seen target is unreachable


def test_popularity_is_chunked_too_with_its_ties():
    _, t = _random_case(3, True)
    counts = torch.randint(0, 4, (N + 1,), generator=torch.Generator().manual_seed(0))
    counts[0] = 0
    pop = PopularityScorer(counts)
    assert factored(pop) is pop and factored(lambda x: x) is None and factored(t.slice) is None
    facts = item_facts(counts, category_tokens(np.array([f"c{i % 3}" for i in range(N)], dtype=object)))
    kw = dict(n_items=N, ks=(5, 10), batch_size=8, items=facts)
    whole, chunked = evaluate(pop, t, **kw), evaluate(pop, t, item_chunk=6, **kw)
    for name in ("hr@5", "ndcg@10", "mrr@10"):
        np.testing.assert_allclose(chunked.per_user[name], whole.per_user[name], rtol=0, atol=1e-6)
    assert float(pop.user_states(t.inputs[:2]).sum()) == 2.0
    assert torch.equal(pop(t.inputs[:2]), pop.user_states(t.inputs[:2]) @ pop.item_table().T)  # same scores


def test_a_plain_function_scorer_keeps_the_whole_catalogue_path():
    scorer, t = _random_case(5, False)
    fn = lambda inputs: scorer.score(inputs)  # noqa: E731  not factored: cannot be chunked
    a = evaluate(fn, t, n_items=N, item_chunk=4)
    b = evaluate(fn, t, n_items=N)
    assert a.metrics == b.metrics and scorer.score_calls > 0


def test_the_validation_sample_is_seeded_sorted_and_keeps_each_users_history():
    _, t = _random_case(1, True)
    s = sample_rows(t, 12, seed=3)
    assert len(s) == 12 and torch.equal(s.users, sample_rows(t, 12, seed=3).users)
    assert not torch.equal(s.users, sample_rows(t, 12, seed=4).users)
    assert bool((s.users[1:] > s.users[:-1]).all())  # original order
    for r, u in enumerate(s.users.tolist()):
        assert s.slice(r, r + 1)[3].tolist() == t.slice(u, u + 1)[3].tolist()  # the same seen items
        assert torch.equal(s.inputs[r], t.inputs[u]) and s.targets[r] == t.targets[u]
    assert sample_rows(t, None, 0) is t and sample_rows(t, 10_000, 0) is t
    scorer = _random_case(1, True)[0]
    p = EvalProtocol(N, valid_sample_users=12, sample_seed=3)
    assert len(p.validation().evaluate(scorer.score, t).users) == 12
    assert len(p.evaluate(scorer.score, t).users) == B  # the test protocol ranks every user


def test_runs_with_chunks_match_the_default_run_and_record_the_sample(tmp_path):
    from seqexp.app.train import train

    def run(name, *extra):
        cfg = compose_train(tmp_path / name, *TINY, "data.generate.n_items=40", *extra)
        train(cfg)
        return json.loads((tmp_path / name / "run" / "results.json").read_text())

    base, chunked = run("base"), run("chunked", "eval.item_chunk=7")
    for name, value in base["metrics"].items():
        assert chunked["metrics"][name] == pytest.approx(value, abs=1e-6), name
    for name, value in base["popularity"].items():  # ties: the ranking metrics (coverage may pick other tied items)
        if name.split("/")[1].split("@")[0] in ("hr", "ndcg", "mrr"):
            assert chunked["popularity"][name] == pytest.approx(value, abs=1e-6), name
    assert base["protocol"]["item_chunk"] is None and chunked["protocol"]["item_chunk"] == 7
    sampled = run("sampled", "eval.sample_users=20", "eval.sample_seed=5")
    assert sampled["protocol"]["valid_sample_users"] == 20 and sampled["protocol"]["sample_seed"] == 5
    assert len(sampled["per_user"]["user_ids"]) == len(base["per_user"]["user_ids"])  # test: every user
    assert sampled["throughput"]["eval_users_per_s"] > 0


def test_sharded_evaluation_sums_exposure_and_gathers_per_user_values(monkeypatch):
    """DDP without processes: rank 0 of 2, the other rank's part computed here and handed over by the gather."""
    import seqexp.evaluation.protocol as protocol
    from seqexp.ranks import shard_bounds

    scorer, t = _random_case(2, False)
    facts = item_facts(
        torch.arange(N + 1) % 5, category_tokens(np.array([f"c{i % 4}" for i in range(N)], dtype=object))
    )
    kw = dict(n_items=N, ks=(5, 10), batch_size=8, items=facts, item_chunk=9)
    single = evaluate(scorer.score, t, **kw)
    other = evaluate(scorer.score, t.rows(*shard_bounds(len(t), 1, 2)), **kw)

    def gather(parts, mine):
        parts[0], parts[1] = mine, (other.per_user, other.exposure, other.seconds)

    monkeypatch.setattr(protocol, "world", lambda: (0, 2))
    monkeypatch.setattr(protocol.dist, "all_gather_object", gather)
    sharded = protocol.evaluate_sharded(scorer.score, t, **kw)
    np.testing.assert_array_equal(sharded.exposure, single.exposure)
    assert sharded.metrics == pytest.approx(single.metrics, abs=1e-12)
    assert {"gini@10", "entropy@10", "ild@10", "novelty@10"} <= set(sharded.metrics)
    for name, values in single.per_user.items():
        np.testing.assert_allclose(sharded.per_user[name], values, rtol=0, atol=1e-12)
