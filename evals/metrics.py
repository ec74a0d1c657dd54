"""Per-item metrics and their aggregates. Pure functions over the `Answer` JSON contract and an `EvalItem`.

Matching follows eval-format.md: Unicode NFKC, lower case, punctuation (including « » – —) and repeated
white space folded away. A chunk *hits* a gold passage when its normalised text contains the passage, or
contains the first or the last half of it (an excerpt straddling a chunk boundary)."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from evals.datasets import EvalItem

HIT_KS = (1, 3, 5, 10)
DEPTH = 10  # retrieval metrics look at the first 10 chunks
_CITATION_MARK = re.compile(r"\[\d+\]")


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = "".join(" " if unicodedata.category(ch).startswith(("P", "S")) else ch for ch in text)
    return " ".join(text.split())


def passage_hit(chunk_text: str, passage: str) -> bool:
    chunk, gold = normalise(chunk_text), normalise(passage)
    if not gold:
        return False
    if gold in chunk:
        return True
    half = math.ceil(len(gold) / 2)
    return len(gold) >= 20 and (gold[:half] in chunk or gold[-half:] in chunk)


def chunk_hits(chunk_text: str, item: EvalItem) -> bool:
    return any(passage_hit(chunk_text, p) for p in item.gold_passages)


def contains_answer(text: str, answers: Iterable[str]) -> bool:
    haystack = f" {normalise(text)} "
    return any(f" {normalise(a)} " in haystack for a in answers if normalise(a))


def strip_citations(answer: str) -> str:
    return " ".join(_CITATION_MARK.sub(" ", answer).split())


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalise(prediction).split(), normalise(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def retrieval_metrics(hit_flags: Sequence[bool]) -> dict[str, float]:
    """hit@k, MRR@10 and nDCG@10 (binary gains; the ideal ranking has one relevant chunk per gold passage,
    capped at what the flags could show) from per-rank hit flags."""
    flags = list(hit_flags[:DEPTH])
    out = {f"hit@{k}": float(any(flags[:k])) for k in HIT_KS}
    first = next((i for i, f in enumerate(flags) if f), None)
    out["mrr@10"] = 1.0 / (first + 1) if first is not None else 0.0
    dcg = sum(1.0 / math.log2(i + 2) for i, f in enumerate(flags) if f)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(max(sum(flags), 1)))
    out["ndcg@10"] = dcg / ideal if flags and any(flags) else 0.0
    return out


def score_item(item: EvalItem, answer: dict, ranked: Sequence[dict]) -> dict[str, float | None]:
    """Every metric of one question. `answer` is `Answer.to_dict()`; `ranked` the first 10 retrieved chunks
    (same ranking the answerer saw). Metrics that do not apply to the item are None."""
    refused = not answer["answerable"]
    text = strip_citations(answer["answer"]) if not refused else ""
    metrics: dict[str, float | None] = {
        "refused": float(refused),
        "answer_words": float(len(text.split())) if not refused else None,
    }
    if not item.answerable:
        metrics.update(
            {
                "refusal_unanswerable": float(refused),
                "cited_when_unanswerable": float(bool(answer["citations"])),
            }
        )
        return metrics
    metrics["false_refusal"] = float(refused)
    if item.gold_passages:
        metrics.update(retrieval_metrics([chunk_hits(c["text"], item) for c in ranked]))
    if item.answers:
        metrics["answer_found"] = float(not refused and contains_answer(text, item.answers))
        # What a reader sees first: whether the answer's first quote holds the answer, not a runner-up.
        first = answer["citations"][0]["quote"] if answer["citations"] else text
        metrics["answer_first"] = float(not refused and contains_answer(first, item.answers))
        metrics["token_f1"] = max(token_f1(text, a) for a in item.answers) if not refused else 0.0
    metrics.update(citation_metrics(item, answer))
    earlier = [t.content for t in item.history if t.role == "assistant"]
    if earlier and not refused:
        # A follow-up that quotes again what an earlier answer quoted: wanted only where it holds the answer.
        shown = normalise(" ".join(earlier))
        quotes = [normalise(c["quote"]) for c in answer["citations"]]
        metrics["repeated_quote"] = float(any(quote and quote in shown for quote in quotes))
    return metrics


def citation_metrics(item: EvalItem, answer: dict) -> dict[str, float | None]:
    """Precision: share of citations whose cited chunk holds a gold passage or a gold answer. Recall: share of
    gold passages that some cited chunk holds (0 when nothing is cited)."""
    chunks = {c["chunk_id"]: c["text"] for c in answer["retrieved"]}
    cited = [chunks.get(c["chunk_id"], c["quote"]) for c in answer["citations"]]
    good = [chunk_hits(t, item) or contains_answer(t, item.answers) for t in cited]
    quote_good = [
        chunk_hits(c["quote"], item)
        or contains_answer(c["quote"], item.answers)
        or any(passage_hit(p, c["quote"]) for p in item.gold_passages)
        for c in answer["citations"]
    ]
    checked = [s["supported"] for s in answer.get("sentences", []) if s.get("supported") is not None]
    out: dict[str, float | None] = {
        "citation_precision": sum(good) / len(good) if good else None,
        "quote_precision": sum(quote_good) / len(quote_good) if quote_good else None,
        # Share of answer sentences the support check accepted (the generative backend's key figure).
        "citation_support": sum(checked) / len(checked) if checked else None,
    }
    if item.gold_passages:
        covered = [any(passage_hit(t, p) for t in cited) for p in item.gold_passages]
        out["citation_recall"] = sum(covered) / len(covered)
    return out


# -- aggregation -------------------------------------------------------------------------------------

METRIC_ORDER = (
    "hit@1",
    "hit@3",
    "hit@5",
    "hit@10",
    "mrr@10",
    "ndcg@10",
    "answer_found",
    "answer_first",
    "token_f1",
    "answer_words",
    "citation_precision",
    "quote_precision",
    "citation_recall",
    "citation_support",
    "false_refusal",
    "refusal_unanswerable",
    "cited_when_unanswerable",
    "repeated_quote",
)


def mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile, q in [0, 100]."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# The metrics the issues set targets on: each aggregate carries their 95 % interval too.
INTERVAL_METRICS = (
    "hit@5",
    "mrr@10",
    "answer_found",
    "citation_precision",
    "false_refusal",
    "refusal_unanswerable",
)
RESAMPLES = 2000


def interval(
    values: Iterable[float | None], level: float = 0.95, seed: int = 0
) -> tuple[float, float] | None:
    """A percentile bootstrap interval of the mean: how far the figure could move on another sample of as many
    questions. The seed is fixed, so the same values always give the same interval."""
    kept = np.array([v for v in values if v is not None], dtype=np.float64)
    if not len(kept):
        return None
    draws = np.random.default_rng(seed).integers(0, len(kept), size=(RESAMPLES, len(kept)))
    means = kept[draws].mean(axis=1)
    tail = 100 * (1 - level) / 2
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def aggregate(records: Sequence[dict]) -> dict:
    """Means of every metric (over the items it applies to), counts, the 95 % interval of the targeted
    metrics (`INTERVAL_METRICS`), and latency p50/p95 per stage."""
    out: dict = {
        "n": len(records),
        "answerable": sum(1 for r in records if r["answerable"]),
        "unanswerable": sum(1 for r in records if not r["answerable"]),
        "metrics": {},
        "intervals": {},
        "latency_ms": {},
    }
    for name in METRIC_ORDER:
        value = mean(r["metrics"].get(name) for r in records)
        if value is not None:
            out["metrics"][name] = round(value, 4)
            if name in INTERVAL_METRICS:
                lo, hi = interval(r["metrics"].get(name) for r in records)
                out["intervals"][name] = [round(lo, 4), round(hi, 4)]
    stages = sorted({k for r in records for k in r["timings_ms"]})
    for stage in stages:
        values = [r["timings_ms"][stage] for r in records if stage in r["timings_ms"]]
        out["latency_ms"][stage] = {
            "p50": round(percentile(values, 50), 1),
            "p95": round(percentile(values, 95), 1),
        }
    return out


def group_by(records: Sequence[dict], *keys: str) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(" / ".join(str(r[k]) for k in keys), []).append(r)
    return dict(sorted(groups.items()))
