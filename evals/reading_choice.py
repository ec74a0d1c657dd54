"""`python -m evals.reading_choice`: how well the reading stage chooses among the chunks it reads, on validation
sets only. End to end, the reader's largest loss of answers is quoting another read chunk than the one holding
the answer (`evals/RESULTS.md`); this measures how much a better choice could win.

For each answerable question the assistant runs with the reader on, up to the reading stage (condense,
retrieve and rerank, read the top `reader_chunks` chunks). Per question it records, for each read chunk, its
rank, the reader's margin, whether the chunk holds a gold passage, and whether the sentence holding that
chunk's best span (the answer's first quote) holds a gold answer. It reports, per set:

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
class ReadChunk:
    rank: int  # in the reranked order, from 0
    margin: float
    gold_chunk: bool
    quote_holds_answer: bool


def read_chunks(assistant, item: EvalItem) -> list[ReadChunk]:
    """The reading stage's readings of the question, in the order it prefers them."""
    from assistant.answering.context import AskRequest
    from assistant.answering.reading import quote_of
    from evals.metrics import chunk_hits, contains_answer

    context = assistant.prepare.invoke(AskRequest(item.question))
    hits = context.retrieval.hits
    rank_of = {hit.chunk.id: i for i, hit in enumerate(hits)}
    out = []
    for reading in context.readings:
        i = rank_of[reading.chunk_id]
        quote = quote_of(reading, i, hits, reading.answer_start, reading.answer_end)
        sentence = hits[i].chunk.text[quote.start : quote.end] if quote else ""
        out.append(
            ReadChunk(
                i,
                reading.margin,
                bool(chunk_hits(hits[i].chunk.text, item)),
                bool(quote) and contains_answer(sentence, item.answers),
            )
        )
    return out


def summary(per_question: Sequence[Sequence[ReadChunk]]) -> dict:
    n = max(len(per_question), 1)

    def share(count: int) -> float:
        return round(100 * count / n, 1)

    return {
        "questions": len(per_question),
        "chosen": share(sum(bool(read) and read[0].quote_holds_answer for read in per_question)),
        "best_of_read": share(sum(any(r.quote_holds_answer for r in read) for read in per_question)),
        "gold_read": share(sum(any(r.gold_chunk for r in read) for read in per_question)),
        "chosen_gold": share(sum(bool(read) and read[0].gold_chunk for read in per_question)),
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
        results[dataset_name(spec)] = summary([read_chunks(assistant, item) for item in items])
        print(json.dumps({"set": dataset_name(spec), **results[dataset_name(spec)]}), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print("done", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
