"""`python -m evals.reading_choice`: how well the reading stage chooses among the chunks it reads, on validation
sets only. End to end, the reader's largest loss of answers is quoting another read chunk than the one holding
the answer (`evals/RESULTS.md`); this measures how much a better choice could win.

For each answerable question the assistant runs with the reader on, up to the reading stage (condense,
retrieve and rerank, read the top `reader_chunks` chunks). Per question it records, for each read chunk that
can be quoted, in the stage's order, whether the chunk holds a gold passage and whether its first quote (the
sentence holding its best span) holds a gold answer. It reports, per set:

- `chosen`: the first quote of the reading the stage ranks first holds the answer (the answer's second
  sentence left out, so this is below the answer found of `kilde eval run`);
- `best_of_read`: some read chunk's first quote holds it: what a perfect choice among the read chunks reaches;
- `gold_read` and `chosen_gold`: a read chunk holds a gold passage, and the chosen one does;
- with `--picker-weights W ...`, `chosen_with_picker` per weight: `chosen` where the readings are ordered by the
  stage's preference (margin less the language's rank weight per reranked place) plus W times the learned
  sentence picker's score of each reading's first quote: whether the picker, which reads every sentence of the
  same chunks, would choose better among the readings.

Needs a full index of the eval corpus (`kilde ingest corpus/seed corpus/norquad --data-dir DIR`). NorQuAD
news test is not among the sets it accepts."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evals.datasets import DATA, EvalItem, dataset_name, load_dataset

VALIDATION_SETS = (
    "norquad:news:validation",
    str(DATA / "norquad_news_val_en.jsonl"),
    str(DATA / "seed.jsonl"),
)


# A quote no picker sentence overlaps (none of its sentences is quotable by the picker's rules): below any score.
NO_PICKER_SCORE = -10.0


@dataclass(frozen=True)
class Quoted:
    """One read chunk's first quote (the sentence holding its best span), as the answer would quote it."""

    gold_chunk: bool  # the chunk holds a gold passage
    holds_answer: bool  # the quote holds a gold answer
    preference: float = 0.0  # the reading stage's (`reading.preference`)
    picker_score: float = 0.0  # the sentence picker's best score among the sentences the quote holds


@dataclass(frozen=True)
class QuestionReading:
    quoted: tuple[Quoted, ...]  # in the order the reading stage prefers them; unquotable readings left out
    gold_read: bool  # some read chunk holds a gold passage, quotable or not


def question_reading(assistant, item: EvalItem) -> QuestionReading:
    """The reading stage's quotes for the question (`reading.quotes`: what the answer quotes first is the
    first of them), each checked against the gold."""
    from assistant.answering.context import AskRequest
    from assistant.answering.reading import preference, quotes
    from evals.metrics import chunk_hits, contains_answer

    context = assistant.prepare.invoke(AskRequest(item.question))
    hits = context.retrieval.hits
    gold = [bool(chunk_hits(hit.chunk.text, item)) for hit in hits]
    weight = assistant.reading.rank_weight_for(context.language)
    picker = assistant.extractive.picker
    spans, scores = (
        picker.scored(context.standalone, hits, context.language, context.retrieval.query_vector)
        if picker is not None
        else ([], [])
    )

    def picker_score(q) -> float:
        held = [
            float(score)
            for span, score in zip(spans, scores, strict=True)
            if span.hit_index == q.hit_index and span.start < q.end and span.end > q.start
        ]
        return max(held, default=NO_PICKER_SCORE)

    quoted = tuple(
        Quoted(
            gold[q.hit_index],
            contains_answer(hits[q.hit_index].chunk.text[q.start : q.end], item.answers),
            preference(q.reading.margin, q.hit_index, weight),
            picker_score(q),
        )
        for q in quotes(context.readings, hits)
    )
    read = {reading.chunk_id for reading in context.readings}
    return QuestionReading(quoted, any(g for hit, g in zip(hits, gold, strict=True) if hit.chunk.id in read))


def chosen_with_picker(question: QuestionReading, picker_weight: float) -> Quoted | None:
    """The reading the stage would quote first with `picker_weight` times the picker's score added to its
    preference (on a tie, the stage's own order)."""
    if not question.quoted:
        return None
    return max(
        enumerate(question.quoted), key=lambda p: (p[1].preference + picker_weight * p[1].picker_score, -p[0])
    )[1]


def summary(per_question: Sequence[QuestionReading], picker_weights: Sequence[float] = ()) -> dict:
    n = max(len(per_question), 1)

    def share(count: int) -> float:
        return round(100 * count / n, 1)

    out = {
        "questions": len(per_question),
        "chosen": share(sum(bool(q.quoted) and q.quoted[0].holds_answer for q in per_question)),
        "best_of_read": share(sum(any(c.holds_answer for c in q.quoted) for q in per_question)),
        "gold_read": share(sum(q.gold_read for q in per_question)),
        "chosen_gold": share(sum(bool(q.quoted) and q.quoted[0].gold_chunk for q in per_question)),
    }
    if picker_weights:
        out["chosen_with_picker"] = {
            str(w): share(
                sum(
                    (chosen := chosen_with_picker(q, w)) is not None and chosen.holds_answer
                    for q in per_question
                )
            )
            for w in picker_weights
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.reading_choice", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="a full index of the eval corpus")
    parser.add_argument(
        "--dataset", action="append", default=None, help=f"default: {', '.join(VALIDATION_SETS)}"
    )
    parser.add_argument(
        "--picker-weights",
        type=float,
        nargs="+",
        default=[],
        metavar="W",
        help="also order the readings with W times the sentence picker's score of their first quote added",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    specs = args.dataset or list(VALIDATION_SETS)
    if any("test" in dataset_name(spec) for spec in specs):
        parser.error("test sets are scored by `make eval`, not explored here")

    from assistant.build import build_assistant
    from assistant.core.config import resolve_settings

    assistant = build_assistant(resolve_settings({"data_dir": str(args.data_dir), "reader": True}))
    results = {}
    for spec in specs:
        items = [item for item in load_dataset(spec) if item.answerable and not item.history]
        results[dataset_name(spec)] = summary(
            [question_reading(assistant, item) for item in items], args.picker_weights
        )
        print(json.dumps({"set": dataset_name(spec), **results[dataset_name(spec)]}), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("done", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
