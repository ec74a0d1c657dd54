"""`python -m evals.answerability_study`: would a model over every signal the pipeline computes with the reader
on refuse more unanswerable questions than the calibrated rule (the reader's margin in a chunk that misses fewer
than the limit of the question's names and numbers), at the same false refusal?

Each question goes through the shipped stages up to the reader, read uncalibrated (`calibrate_reader`); its
features (`FEATURES`) come from the readings of the top chunks, the reranker's scores and the dense similarity.
The models are fitted on NorQuAD news train questions (a seeded sample of the Bokmål ones and of their English
versions in `norquad_train_en.jsonl`) against the written train unanswerable questions
(`norquad_train_unanswerable.jsonl`), none of them an eval question. Each model's score, and the rule's margin,
gets per language group the highest threshold with at most 5 % false refusal on the group's answerable
validation questions and on each of its sets of 100 or more, as `python -m evals.calibrate_reader` chooses the
margin; what is compared is how many of the validation unanswerable questions (the seed's and the calibration
half of `unanswerable.jsonl`) it then refuses. NorQuAD test and the report half are never read. The models are
fitted with and without the direction a signal should have (`FEATURES`: a surer reading or a closer passage
never makes a question less answerable): a gain that only the unconstrained fit shows comes from a signal
pointing the wrong way on these sets. Prints a table; writes nothing."""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assistant.core.language import language_group
from evals.calibrate import POSITIVE_SETS, UNANSWERABLE, split_unanswerable
from evals.calibrate_reader import bounded_sets
from evals.datasets import DATA, EvalItem, load_dataset

# name, the direction that makes a question more answerable (+1, -1; 0: no direction is assumed)
FEATURES = (
    ("chosen_margin", 1),  # the margin of the reading the answer would quote (rank-weighted order)
    ("best_margin", 1),
    ("top_chunk_margin", 1),
    ("best_margin_in_a_chunk_missing_nothing", 1),
    ("chosen_missing_terms", -1),
    ("fewest_missing_terms", -1),
    ("chosen_no_answer_score", -1),
    ("chosen_span_score", 1),
    ("chosen_span_characters", 0),
    ("chosen_second_margin", 1),
    ("readings_with_positive_margin", 1),
    ("chosen_rank", -1),
    ("top_rerank_score", 1),
    ("rerank_gap_first_second", 1),
    ("best_dense", 1),
    ("top_three_from_one_article", 1),
    ("english", 0),
)
NO_SCORE = -30.0  # a margin where there is no reading, far below any real one
TRAIN_SAMPLE = {"nb": 700, "en": 300}
SEED = 5


@dataclass(frozen=True)
class Example:
    group: str  # "no" or "en"
    dataset: str
    answerable: bool
    passed_earlier: bool  # the dense threshold and the missing-names rule answer it
    rule_margin: float  # what the shipped rule compares with its margin
    features: tuple[float, ...]


def features_of(assistant, question: str) -> tuple[bool, float, tuple[float, ...], str]:
    """(passed the earlier gates, the shipped rule's margin, `FEATURES`, language group) of one question."""
    from assistant.answering.context import AskRequest
    from assistant.answering.reading import preference

    context = assistant.prepare.invoke(AskRequest(question))
    hits, group = context.retrieval.hits, language_group(context.language)
    passed = assistant.passes_threshold_and_names(context)
    place = {hit.chunk.id: i for i, hit in enumerate(hits)}
    readings = sorted(context.readings, key=lambda r: place.get(r.chunk_id, len(hits)))
    if not readings:
        return passed, NO_SCORE, (NO_SCORE,) * 4 + (0.0,) * (len(FEATURES) - 4), group
    missing = assistant.reading.missing_in(context.judged_question, readings, hits, context.language)
    ranks = [place.get(r.chunk_id, len(hits)) for r in readings]
    weight = assistant.reading.rank_weight_for(context.language)
    chosen = max(
        range(len(readings)), key=lambda i: (preference(readings[i].margin, ranks[i], weight), -ranks[i])
    )
    quoted = readings[chosen]
    limit = assistant.reading.missing_term_limits.get(group)
    rule = max(
        (r.margin for r, m in zip(readings, missing, strict=True) if limit is None or m < limit),
        default=NO_SCORE,
    )
    scores = [h.score for h in hits[:2]] + [hits[0].score] * (2 - min(len(hits), 2))
    top_article = hits[0].article.id
    row = (
        quoted.margin,
        max(r.margin for r in readings),
        readings[0].margin,
        max((r.margin for r, m in zip(readings, missing, strict=True) if m == 0), default=NO_SCORE),
        float(missing[chosen]),
        float(min(missing)),
        quoted.no_answer_score,
        quoted.span_score,
        float(quoted.answer_end - quoted.answer_start),
        quoted.second_margin,
        float(sum(r.margin > 0 for r in readings)),
        float(ranks[chosen]),
        scores[0],
        scores[0] - scores[1],
        context.retrieval.best_dense,
        float(sum(h.article.id == top_article for h in hits[:3])),
        float(group == "en"),
    )
    # a chunk with no readable text scores -inf: kept far below any real score, not infinite
    return passed, max(rule, NO_SCORE), tuple(v if math.isfinite(v) else NO_SCORE for v in row), group


def examples(assistant, items: Sequence[EvalItem], progress: bool) -> list[Example]:
    from evals.runner import progress_bar

    bar = progress_bar(len(items), progress)
    out = []
    for item in items:
        passed, rule, row, group = features_of(assistant, item.question)
        out.append(Example(group, item.dataset, item.answerable, passed, rule, row))
        if bar:
            bar.update(1)
    if bar:
        bar.close()
    return out


def study_items() -> list[EvalItem]:
    """A seeded sample of NorQuAD news train questions and of their English versions, and every written
    train unanswerable question."""
    from evals.train_reader import ENGLISH_QUESTIONS, train_questions

    news = {q.key: q for q in train_questions() if q.domain == "news"}
    rng = random.Random(SEED)
    norwegian = [EvalItem(k, q.question, "train", "nb", answers=(q.answer,)) for k, q in news.items()]
    english = []
    for line in ENGLISH_QUESTIONS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["key"] in news:
            english.append(
                EvalItem(row["key"], row["question"], "train_en", "en", answers=(news[row["key"]].answer,))
            )
    unanswerable = [
        EvalItem(
            f"train-unanswerable-{n}",
            row["question"],
            "train_unanswerable",
            row["language"],
            answerable=False,
        )
        for n, row in enumerate(
            map(
                json.loads,
                (DATA / "norquad_train_unanswerable.jsonl").read_text(encoding="utf-8").splitlines(),
            )
        )
    ]
    return rng.sample(norwegian, TRAIN_SAMPLE["nb"]) + rng.sample(english, TRAIN_SAMPLE["en"]) + unanswerable


def validation_items() -> list[EvalItem]:
    positives = [i for spec in POSITIVE_SETS for i in load_dataset(spec) if i.answerable]
    seed_negatives = [i for i in load_dataset(str(DATA / "seed.jsonl")) if not i.answerable]
    calibration_half, _ = split_unanswerable(load_dataset(str(UNANSWERABLE)))
    return positives + seed_negatives + calibration_half


def threshold_refusal(
    examples: Sequence[Example], scores: Sequence[float], max_false_refusal: float = 0.05
) -> tuple[float, float, float]:
    """(threshold, false refusal, unanswerable refused) for the highest threshold on `scores` whose false refusal
    (any gate refusing an answerable question) stays within the bound on the answerable examples together and
    on each of their datasets large enough to keep it alone (`calibrate_reader.bounded_sets`)."""
    positives = [i for i, e in enumerate(examples) if e.answerable]
    negatives = [i for i, e in enumerate(examples) if not e.answerable]
    bounded = bounded_sets(positives, dataset=lambda i: examples[i].dataset)

    def refused(i: int, t: float) -> bool:
        return not examples[i].passed_earlier or scores[i] < t

    def rate(indices: Sequence[int], t: float) -> float:
        return sum(refused(i, t) for i in indices) / len(indices) if indices else 0.0

    best = -math.inf
    for t in sorted({scores[i] for i in positives}):
        if all(rate(s, t) <= max_false_refusal for s in bounded):
            best = t
        else:
            break
    return best, rate(positives, best), rate(negatives, best)


def fit_logistic(
    x: np.ndarray, y: np.ndarray, signs: Sequence[int] | None = None, steps: int = 3000, l2: float = 0.01
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(mean, scale, weights, bias) of an L2-regularised logistic regression on standardised features, by
    gradient descent; with `signs`, a weight against its feature's direction is held at 0 (projected)."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / scale
    w, b = np.zeros(z.shape[1]), 0.0
    sign = np.asarray(signs, dtype=float) if signs is not None else None
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        g = p - y
        w -= 0.1 * (z.T @ g / len(y) + l2 * w)
        b -= 0.1 * float(g.mean())
        if sign is not None:
            w = np.where(sign * w < 0, 0.0, w)
    return mean, scale, w, b


def logistic_scores(model: tuple[np.ndarray, np.ndarray, np.ndarray, float], x: np.ndarray) -> np.ndarray:
    mean, scale, w, b = model
    return ((x - mean) / scale) @ w + b


def lightgbm_scores(x: np.ndarray, y: np.ndarray, x_eval: np.ndarray, monotone: bool) -> np.ndarray:
    import lightgbm as lgb

    params = {
        "objective": "binary",
        "num_leaves": 7,
        "learning_rate": 0.05,
        "min_data_in_leaf": 20,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "feature_fraction": 0.8,
        "seed": SEED,
        "deterministic": True,
        "num_threads": 1,
        "verbose": -1,
    }
    if monotone:
        params["monotone_constraints"] = [sign for _, sign in FEATURES]
    return lgb.train(params, lgb.Dataset(x, y.astype(float)), 200).predict(x_eval)


def study(
    train: Sequence[Example], validation: Sequence[Example]
) -> tuple[dict[str, dict[str, list[float]]], dict[str, float]]:
    """Per model, per language group: [false refusal, unanswerable refused] on validation; and the free logistic
    regression's weight of each feature (standardised)."""
    x = np.array([e.features for e in train])
    y = np.array([e.answerable for e in train], dtype=float)
    xv = np.array([e.features for e in validation])
    signs = [sign for _, sign in FEATURES]
    free = fit_logistic(x, y)
    weights = {name: round(float(w), 2) for (name, _), w in zip(FEATURES, free[2], strict=True)}
    scores = {
        "the shipped rule (margin, missing-term limit)": np.array([e.rule_margin for e in validation]),
        "logistic regression": logistic_scores(free, xv),
        "logistic regression, each signal in its direction": logistic_scores(fit_logistic(x, y, signs), xv),
        "LightGBM": lightgbm_scores(x, y, xv, monotone=False),
        "LightGBM, monotone in each signal's direction": lightgbm_scores(x, y, xv, monotone=True),
    }
    out: dict[str, dict[str, list[float]]] = {}
    for name, values in scores.items():
        for group in ("no", "en"):
            members = [i for i, e in enumerate(validation) if e.group == group]
            _, false_refusal, refused = threshold_refusal(
                [validation[i] for i in members], [float(values[i]) for i in members]
            )
            out.setdefault(name, {})[group] = [round(false_refusal, 4), round(refused, 4)]
    return out, weights


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.answerability_study", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data-dir", help="the 757-article index (kilde ingest corpus/seed corpus/norquad)")
    parser.add_argument("--chroma-url")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    from assistant.core.config import settings_from
    from assistant.core.errors import KildeError
    from evals.runner import build_eval_assistant

    try:
        assistant = build_eval_assistant(settings_from(args, reader=True))
    except KildeError as exc:
        print(f"answerability_study: {exc}", file=sys.stderr)
        return exc.exit_code
    assistant.reading.margins = {}  # read every question uncalibrated: the features are the margins
    train = examples(assistant, study_items(), not args.no_progress)
    validation = examples(assistant, validation_items(), not args.no_progress)
    result, weights = study(train, validation)
    counts = {
        group: (
            sum(e.answerable for e in validation if e.group == group),
            sum(not e.answerable for e in validation if e.group == group),
        )
        for group in ("no", "en")
    }
    print(
        f"train: {sum(e.answerable for e in train)} answerable, {sum(not e.answerable for e in train)} unanswerable; "
        f"validation (answerable, unanswerable): {counts}"
    )
    print(
        "| model | no: false refusal | no: unanswerable refused | en: false refusal | en: unanswerable refused |"
    )
    print("| --- | --- | --- | --- | --- |")
    for name, groups in result.items():
        no, en = groups["no"], groups["en"]
        print(f"| {name} | {100 * no[0]:.1f} | {100 * no[1]:.1f} | {100 * en[0]:.1f} | {100 * en[1]:.1f} |")
    ranked = sorted(weights.items(), key=lambda item: -abs(item[1]))
    print(
        "free logistic regression, weights (standardised features):", ", ".join(f"{n} {w}" for n, w in ranked)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
