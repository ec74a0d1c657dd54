"""`python -m evals.filter_check --data-dir DIR`: how filters change what is answered (validation data only).

Each answerable validation question is asked within its own source and within every other source the
index holds (`Assistant.filter_holds_an_answer` judges the filtered ones). Within its own source a question
should still be answered and still find its answer; within another source (which holds nothing on it) it
should be refused. `--margin` sets `filter_answer_margin`; a huge one switches the check off, for the
before/after comparison in docs/evals.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evals.calibrate import POSITIVE_SETS
from evals.datasets import load_dataset
from evals.metrics import contains_answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.filter_check", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="an index of the sample corpus")
    parser.add_argument("--limit", type=int, default=40, help="questions per validation set (default 40)")
    parser.add_argument(
        "--margin", type=float, default=None, help="filter_answer_margin (default: configured)"
    )
    args = parser.parse_args(argv)

    from assistant.answering.context import AskRequest
    from assistant.build import build_assistant
    from assistant.core.config import Settings
    from assistant.core.types import Filters

    settings = Settings(data_dir=args.data_dir)
    if args.margin is not None:
        settings = settings.replace(filter_answer_margin=args.margin)
    assistant = build_assistant(settings)
    stored = assistant.store.stored_articles()
    source_of = {article_id: s.meta.source for article_id, s in stored.items()}
    sources = sorted({s for s in source_of.values() if s})
    counts = {"own": [0, 0, 0], "other": [0, 0, 0]}  # asked, answered, answer found
    for spec in POSITIVE_SETS:
        for item in load_dataset(spec, args.limit):
            if not item.gold_article_ids or item.gold_article_ids[0] not in source_of:
                continue
            own = source_of[item.gold_article_ids[0]]
            for source in sources:
                answer = assistant.ask(AskRequest(item.question, filters=Filters(sources=(source,))))
                row = counts["own" if source == own else "other"]
                row[0] += 1
                row[1] += answer.answerable
                row[2] += answer.answerable and contains_answer(answer.answer, item.answers)
    margin = settings.filter_answer_margin
    print(f"filter_answer_margin {margin}, sources {sources}, up to {args.limit} questions per set")
    for kind, (asked, answered, found) in counts.items():
        print(f"within {kind} source: {asked} asked, {answered} answered, {found} with the answer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
