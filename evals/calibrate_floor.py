"""`python -m evals.calibrate_floor`: choose the reranker's floors on validation data only, and write them with
their provenance into `assistant/models/calibration.json` (`rerank_floors`, `rerank_floors_provenance`).
`rerank_floors = {}` in `kilde.toml` turns the gate off (`docs/evals.md`).

A question asked alone is refused when the reranker scores no passage of its pool at least its language group's
floor and none of its passages uses the question's rarest word (`Assistant.refused_by_floor`). Off-topic
questions ("How do I make waffles?", "Hvor fort kan en gepard løpe?") land on passages whose dense similarity
passes `answerable_threshold`, since every passage of a news archive is somewhat near a question; the reranker,
which reads the question's words against each passage, finds nothing in them that fits, and the passages, found
for the question's commoner words, do not hold what it is about. The reranker's score alone refused answerable
questions whose passages hold their subject too: on by default from 8868419 to fd33fb5, it took NorQuAD news test
false refusal 2.5 → 5.0 % (`make eval` at fd33fb5). Run after `evals.calibrate` (the gates before the floor) and
before `evals.calibrate_reader`.

`--reader` chooses the floors for questions Kilde's reader reads (`reader_rerank_floors`, with
`reader_rerank_floors_provenance`), each question asked with the reader and its margins as calibrated: they refuse
on their own, so the floor that keeps false refusal in bounds is not the one chosen without them. Run it after
`evals.calibrate_reader`, which chooses the margins with no floor of the reader's own.

Positives are the answerable questions `evals.calibrate` uses (the seed set, NorQuAD news validation and its
English versions) and NorQuAD Wikipedia validation; negatives its unanswerable ones (the seed's and the calibration half of `unanswerable.jsonl`)
and `off_topic_dev.jsonl`. Each question is asked as the shipped assistant asks it (reader off, or on with
`--reader`), without a floor.
Per language group the floor is the one of the highest balanced accuracy (as `evals.calibrate` chooses), refusing
at most `--max-added-false-refusal` more of the answerable questions (all of the group's, and each set of
`BOUNDED_SET_SIZE` or more on its own) and at most `--max-false-refusal` with the other gates; the lowest such
floor wins ties, midway between the two scores that bound it. A group where no floor raises balanced accuracy gets
none. NorQuAD test, `off_topic.jsonl` and the report half are never read."""

from __future__ import annotations

import datetime as dt
import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.core.language import language_group
from evals.calibrate import (
    DATA,
    POSITIVE_SETS,
    UNANSWERABLE,
    bounded_sets,
    calibration_parser,
    merge_into_calibration,
    run_calibration,
    split_unanswerable,
)
from evals.datasets import EvalItem, load_dataset

OFF_TOPIC_DEV = DATA / "off_topic_dev.jsonl"
# Wikipedia validation too: its questions word their subject as the passage does less often than news ones do
# ("Når utspilte andre verdenskrig seg?"), so the rarest word is more often missing from the passages that answer.
FLOOR_POSITIVE_SETS = (*POSITIVE_SETS, "norquad:wiki:validation")
COMMAND = "python -m evals.calibrate_floor --data-dir build/eval-index"
READER_COMMAND = f"{COMMAND} --reader"


@dataclass(frozen=True)
class Asked:
    """One question asked without a floor: the reranker's best score, whether none of its passages uses its rarest
    word (the floor's other condition, `Assistant.refused_by_floor`), and whether the other gates refused it."""

    item: EvalItem
    top_score: float | None
    rarest_absent: bool
    refused: bool

    def refused_with(self, floor: float | None) -> bool:
        below = floor is not None and self.top_score is not None and self.top_score < floor
        return self.refused or (below and self.rarest_absent)


def ask_all(assistant, items: Sequence[EvalItem], progress: bool) -> list[Asked]:
    from assistant.answering.context import AskRequest
    from evals.runner import progress_bar

    bar = progress_bar(len(items), progress)
    out = []
    for item in items:
        answer = assistant.ask(AskRequest(item.question, ()))
        top = answer.retrieved[0].score if answer.retrieved else None
        absent = assistant.rarest_word_absent(item.question, answer.language, answer.retrieved) is not None
        out.append(Asked(item, top, absent, not answer.answerable))
        if bar:
            bar.update(1)
    if bar:
        bar.close()
    return out


def choose_floor(
    positives: Sequence[Asked],
    negatives: Sequence[Asked],
    max_added_false_refusal: float,
    max_false_refusal: float,
) -> tuple[float | None, dict]:
    """The floor for one language group, and the figures it was chosen by (module docstring)."""
    groups = bounded_sets(positives, lambda a: a.item.dataset)
    names = ["all", *(g[0].item.dataset for g in groups[1:])]
    scores = sorted({a.top_score for a in [*positives, *negatives] if a.top_score is not None})
    candidates = [(a + b) / 2 for a, b in itertools.pairwise(scores)]

    def false_refusal(group: Sequence[Asked], floor: float | None) -> float:
        return sum(a.refused_with(floor) for a in group) / len(group)

    def refused(floor: float | None) -> int:
        return sum(a.refused_with(floor) for a in negatives)

    def allowed(floor: float) -> bool:
        return all(
            false_refusal(g, floor) - false_refusal(g, None) <= max_added_false_refusal + 1e-12
            and false_refusal(g, floor) <= max_false_refusal + 1e-12
            for g in groups
        )

    def balanced_accuracy(floor: float | None) -> float:
        return (1 - false_refusal(positives, floor) + refused(floor) / len(negatives)) / 2

    best, best_value = None, balanced_accuracy(None)
    for floor in candidates:  # ascending: the lowest floor wins ties
        if allowed(floor) and balanced_accuracy(floor) > best_value + 1e-12:
            best, best_value = floor, balanced_accuracy(floor)
    table = {
        "floor": round(best, 4) if best is not None else None,
        "positives": len(positives),
        "negatives": len(negatives),
        "negatives_refused_without": refused(None),
        "negatives_refused_with": refused(best),
        "balanced_accuracy_without": round(balanced_accuracy(None), 4),
        "balanced_accuracy_with": round(best_value, 4),
        "false_refusal_without": {
            n: round(false_refusal(g, None), 4) for n, g in zip(names, groups, strict=True)
        },
        "false_refusal_with": {
            n: round(false_refusal(g, best), 4) for n, g in zip(names, groups, strict=True)
        },
    }
    return best, table


def calibrate_floors(
    assistant,
    progress: bool = True,
    max_added_false_refusal: float = 0.015,
    max_false_refusal: float = 0.05,
    reader: bool = False,
) -> dict:
    """The floors and their provenance, under `reader_rerank_floors` when `reader` (the assistant reads with
    Kilde's reader), `rerank_floors` otherwise."""
    from evals.runner import check_index, index_signature

    positives = [i for spec in FLOOR_POSITIVE_SETS for i in load_dataset(spec) if i.answerable]
    seed_negatives = [i for i in load_dataset(str(DATA / "seed.jsonl")) if not i.answerable]
    cal_half, _ = split_unanswerable(load_dataset(str(UNANSWERABLE)))
    negatives = seed_negatives + cal_half + load_dataset(str(OFF_TOPIC_DEV))
    check_index(assistant, positives + negatives, None)
    asked_pos = ask_all(assistant, positives, progress)
    asked_neg = ask_all(assistant, negatives, progress)
    floors, tables = {}, {}
    for group in sorted({language_group(a.item.language) for a in asked_pos}):
        pos = [a for a in asked_pos if language_group(a.item.language) == group]
        neg = [a for a in asked_neg if language_group(a.item.language) == group]
        if not neg:
            continue
        floor, tables[group] = choose_floor(pos, neg, max_added_false_refusal, max_false_refusal)
        if floor is not None:
            floors[group] = round(floor, 4)
    info, _ = index_signature(assistant)
    key = "reader_rerank_floors" if reader else "rerank_floors"
    return {
        key: floors,
        f"{key}_provenance": {
            "floors": floors,
            "command": READER_COMMAND if reader else COMMAND,
            "reader": reader,
            "date": dt.date.today().isoformat(),
            "criterion": f"highest balanced accuracy with at most {max_added_false_refusal:.1%} more false refusal "
            f"and at most {max_false_refusal:.0%} in all, per language group and each set of 100 or more",
            "data": {
                "positives": [
                    Path(spec).name if spec.endswith(".jsonl") else spec for spec in FLOOR_POSITIVE_SETS
                ],
                "negatives": [
                    "seed.jsonl (unanswerable)",
                    "unanswerable.jsonl (calibration half)",
                    OFF_TOPIC_DEV.name,
                ],
            },
            "index": info,
            "by_group": tables,
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = calibration_parser("python -m evals.calibrate_floor", __doc__, COMMAND)
    parser.add_argument(
        "--max-added-false-refusal",
        type=float,
        default=0.015,
        help="most answerable questions the floor may refuse beyond the other gates, per set (default 0.015)",
    )
    parser.add_argument(
        "--max-false-refusal",
        type=float,
        default=0.05,
        help="most answerable questions refused with the floor and the other gates, per set (default 0.05)",
    )
    parser.add_argument(
        "--reader",
        action="store_true",
        help="choose the floors for questions Kilde's reader reads (reader_rerank_floors); run it after "
        "evals.calibrate_reader",
    )
    args = parser.parse_args(argv)
    from assistant.core.config import settings_from
    from evals.runner import build_eval_assistant

    def compute() -> dict:
        # The floor is chosen with the other gates as they ship (with the reader or without), the floor itself off.
        settings = settings_from(args, reader=args.reader, rerank_floors={}, reader_rerank_floors={})
        return calibrate_floors(
            build_eval_assistant(settings),
            progress=not args.no_progress,
            max_added_false_refusal=args.max_added_false_refusal,
            max_false_refusal=args.max_false_refusal,
            reader=args.reader,
        )

    return run_calibration("calibrate_floor", compute, merge_into_calibration, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
