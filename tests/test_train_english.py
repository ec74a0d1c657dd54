"""The English-model study (`python -m evals.train_english`): its folds, the blended order it chooses a weight
for, and the folders it refuses. Training itself needs the eval index and is not run here."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from assistant.answering.features import RERANK_FEATURES
from evals.train import RERANK_PARAMS, Example, model_orders, train_ranker
from evals.train_english import FOLDS, blended_orders, main, split_folds


def _examples(column: str, n: int = 30, seed: int = 0) -> list[Example]:
    rng = np.random.default_rng(seed)
    out = []
    for q in range(n):
        rows = rng.normal(size=(10, len(RERANK_FEATURES)))
        labels = np.zeros(10, dtype=np.int32)
        labels[int(np.argmax(rows[:, RERANK_FEATURES.index(column)]))] = 1
        item = SimpleNamespace(gold_article_ids=(f"news-a1-d{q % 12}",))
        hits = tuple(SimpleNamespace(chunk=SimpleNamespace(id=f"c{i}")) for i in range(10))
        out.append(Example(item=item, hits=hits, query=None, rows=rows, labels=labels))
    return out


def _ranker(examples):
    return train_ranker(examples, RERANK_FEATURES, RERANK_PARAMS, 20)


def test_blended_orders_are_each_model_at_the_ends_and_between_them_otherwise():
    examples = _examples("dense")
    english, norwegian = _ranker(_examples("dense", seed=1)), _ranker(_examples("lexical", seed=2))
    as_list = [o.tolist() for o in model_orders(english, examples)]
    assert [o.tolist() for o in blended_orders(english, norwegian, examples, 1.0)] == as_list
    assert [o.tolist() for o in blended_orders(english, norwegian, examples, 0.0)] == [
        o.tolist() for o in model_orders(norwegian, examples)
    ]
    half = blended_orders(english, norwegian, examples, 0.5)
    for order, ex in zip(half, examples, strict=True):
        scores = 0.5 * english.predict(ex.rows) + 0.5 * norwegian.predict(ex.rows)
        assert scores[order].tolist() == sorted(scores.tolist(), reverse=True)


def test_folds_keep_an_articles_questions_together_and_cover_every_question_once():
    examples = _examples("dense", n=60)
    folds = split_folds(examples)
    assert 1 < len(folds) <= FOLDS
    held = [id(ex) for fold, _ in folds for ex in fold]
    assert sorted(held) == sorted(id(ex) for ex in examples)
    for fold, rest in folds:
        assert {ex.item.gold_article_ids[0] for ex in fold}.isdisjoint(
            ex.item.gold_article_ids[0] for ex in rest
        )


def test_the_study_never_writes_over_the_models_it_reads(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    with pytest.raises(SystemExit, match=r"models\.json is missing"):
        main(["--data-dir", str(tmp_path / "index"), "--models", str(models), "--out", str(tmp_path / "out")])
    (models / "models.json").write_text(json.dumps({"reranker": {}, "picker": {}}), encoding="utf-8")
    with pytest.raises(SystemExit, match="another folder"):
        main(["--data-dir", str(tmp_path / "index"), "--models", str(models), "--out", str(models)])
    assert sorted(p.name for p in models.iterdir()) == ["models.json"]
