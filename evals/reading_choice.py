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
- `gold_read` and `chosen_gold`: a read chunk holds a gold passage, and the chosen one does.

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


@dataclass(frozen=True)
class Quoted:
    """One read chunk's first quote (the sentence holding its best span), as the answer would quote it."""

    gold_chunk: bool  # the chunk holds a gold passage
    holds_answer: bool  # the quote holds a gold answer


@dataclass(frozen=True)
class QuestionReading:
    quoted: tuple[Quoted, ...]  # in the order the reading stage prefers them; unquotable readings left out
    gold_read: bool  # some read chunk holds a gold passage, quotable or not


def question_reading(assistant, item: EvalItem) -> QuestionReading:
    """The reading stage's quotes for the question (`reading.quotes`: what the answer quotes first is the
    first of them), each checked against the gold."""
    from assistant.answering.context import AskRequest
    from assistant.answering.reading import quotes
    from evals.metrics import chunk_hits, contains_answer

    context = assistant.prepare.invoke(AskRequest(item.question))
    hits = context.retrieval.hits
    gold = [bool(chunk_hits(hit.chunk.text, item)) for hit in hits]
    quoted = tuple(
        Quoted(
            gold[q.hit_index],
            contains_answer(hits[q.hit_index].chunk.text[q.start : q.end], item.answers),
        )
        for q in quotes(context.readings, hits)
    )
    read = {reading.chunk_id for reading in context.readings}
    return QuestionReading(quoted, any(g for hit, g in zip(hits, gold, strict=True) if hit.chunk.id in read))


def summary(per_question: Sequence[QuestionReading]) -> dict:
    n = max(len(per_question), 1)

    def share(count: int) -> float:
        return round(100 * count / n, 1)

    return {
        "questions": len(per_question),
        "chosen": share(sum(bool(q.quoted) and q.quoted[0].holds_answer for q in per_question)),
        "best_of_read": share(sum(any(c.holds_answer for c in q.quoted) for q in per_question)),
        "gold_read": share(sum(q.gold_read for q in per_question)),
        "chosen_gold": share(sum(bool(q.quoted) and q.quoted[0].gold_chunk for q in per_question)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.reading_choice", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="a full index of the eval corpus")
    parser.add_argument(
        "--dataset", action="append", default=None, help=f"default: {', '.join(VALIDATION_SETS)}"
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
        results[dataset_name(spec)] = summary([question_reading(assistant, item) for item in items])
        print(json.dumps({"set": dataset_name(spec), **results[dataset_name(spec)]}), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("done", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
