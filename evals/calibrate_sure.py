"""`python -m evals.calibrate_sure`: choose, on validation data only, the reranker score at which a question asked
alone is no longer held to the dense threshold (`rerank_sure`, `Assistant.reranker_is_sure`), per language group,
and record it with its provenance in `assistant/models/calibration.json` (`rerank_sure_provenance`). It is not on by
default: `make eval` at cc6a600 found that it let two English off-topic test questions through (`off_topic.jsonl`
refused 66.7 → 61.1 %; "Who invented the telephone?" answered with a recipe's headline), for one English validation
question and three short seed questions answered. Whoever would rather answer those sets it in `kilde.toml`
(`rerank_sure = {en = -1.3077}`, the recorded score; docs/evals.md).

English questions sit lower in dense similarity to the Norwegian archive than Norwegian ones, and short ones about a
passage the reranker puts far ahead of the rest fell just under `answerable_threshold` ("Who published the full text
of the agreement?": 0.7786 against 0.7799). Each question is asked as the shipped assistant asks it (reader off,
no floor, no sure score) and again with the dense threshold off; only a question that the threshold alone refused
can change. Per language group the sure score is the one of the highest balanced accuracy (as `evals.calibrate`
chooses), the highest such score on a tie, midway between the two reranker scores that bound it; a group where no
score raises balanced accuracy gets none. It applies in an archive of at least as many chunks as the index it was
chosen on (`rerank_sure_min_chunks`): in a smaller one the reranker scores the best of a few passages high whatever
the question. Run after `evals.calibrate`.

Positives are the answerable questions `evals.calibrate` uses (the seed set, NorQuAD news validation and its
English versions) and those of `seed_short.jsonl` (short questions about the seed article); negatives the
unanswerable ones of those sets, the calibration half of `unanswerable.jsonl` and `off_topic_dev.jsonl`. NorQuAD
test, `off_topic.jsonl` and the report half are never read."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.core.language import language_group
from evals.calibrate import (
    DATA,
    POSITIVE_SETS,
    UNANSWERABLE,
    calibration_parser,
    merge_into_calibration,
    run_calibration,
    split_unanswerable,
)
from evals.calibrate_floor import OFF_TOPIC_DEV
from evals.datasets import EvalItem, load_dataset

SHORT_QUESTIONS = DATA / "seed_short.jsonl"
COMMAND = "python -m evals.calibrate_sure --data-dir build/eval-index"


@dataclass(frozen=True)
class Asked:
    """One question asked with every gate as shipped, and again without the dense threshold."""

    item: EvalItem
    top_score: float | None
    refused: bool
    refused_without_threshold: bool

    def refused_with(self, sure: float | None) -> bool:
        """Refused when the threshold stands in for a reranker score of at least `sure` (None: it never does)."""
        if not self.refused:
            return False
        vouched = sure is not None and self.top_score is not None and self.top_score >= sure
        return self.refused_without_threshold or not vouched


def ask_all(shipped, without_threshold, items: Sequence[EvalItem], progress: bool) -> list[Asked]:
    from assistant.answering.context import AskRequest
    from evals.runner import progress_bar

    bar = progress_bar(len(items), progress)
    out = []
    for item in items:
        answer = shipped.ask(AskRequest(item.question, ()))
        top = answer.retrieved[0].score if answer.retrieved else None
        again = without_threshold.ask(AskRequest(item.question, ())) if not answer.answerable else answer
        out.append(Asked(item, top, not answer.answerable, not again.answerable))
        if bar:
            bar.update(1)
    if bar:
        bar.close()
    return out


def choose_sure(positives: Sequence[Asked], negatives: Sequence[Asked]) -> tuple[float | None, dict]:
    """The sure score for one language group, and the figures it was chosen by (module docstring)."""
    scores = sorted({a.top_score for a in [*positives, *negatives] if a.refused and a.top_score is not None})
    candidates = [(a + b) / 2 for a, b in itertools.pairwise(scores)]
    if scores:
        candidates.insert(0, scores[0] - 1.0)  # below every score: the threshold never holds a question back

    def false_refusal(sure: float | None) -> float:
        return sum(a.refused_with(sure) for a in positives) / len(positives)

    def refused(sure: float | None) -> int:
        return sum(a.refused_with(sure) for a in negatives)

    def balanced_accuracy(sure: float | None) -> float:
        return (1 - false_refusal(sure) + refused(sure) / len(negatives)) / 2

    best, best_value = None, balanced_accuracy(None)
    for sure in reversed(candidates):  # descending: the highest score wins ties
        if balanced_accuracy(sure) > best_value + 1e-12:
            best, best_value = sure, balanced_accuracy(sure)
    table = {
        "sure": round(best, 4) if best is not None else None,
        "positives": len(positives),
        "negatives": len(negatives),
        "positives_refused_without": sum(a.refused_with(None) for a in positives),
        "positives_refused_with": sum(a.refused_with(best) for a in positives),
        "negatives_refused_without": refused(None),
        "negatives_refused_with": refused(best),
        "balanced_accuracy_without": round(balanced_accuracy(None), 4),
        "balanced_accuracy_with": round(best_value, 4),
        "held_back_by_the_threshold_alone": {
            "positives": sorted(
                round(a.top_score, 4) for a in positives if a.refused and not a.refused_without_threshold
            ),
            "negatives": sorted(
                round(a.top_score, 4) for a in negatives if a.refused and not a.refused_without_threshold
            ),
        },
    }
    return best, table


def calibration_items() -> tuple[list[EvalItem], list[EvalItem]]:
    """The validation questions the sure score is chosen on: (answerable, unanswerable)."""
    sets = [load_dataset(spec) for spec in (*POSITIVE_SETS, str(SHORT_QUESTIONS))]
    positives = [i for items in sets for i in items if i.answerable]
    cal_half, _ = split_unanswerable(load_dataset(str(UNANSWERABLE)))
    negatives = [i for items in sets for i in items if not i.answerable]
    return positives, negatives + cal_half + load_dataset(str(OFF_TOPIC_DEV))


def calibrate_sure(shipped, without_threshold, progress: bool = True) -> dict:
    from evals.runner import check_index, index_signature

    positives, negatives = calibration_items()
    check_index(shipped, positives + negatives, None)
    asked_pos = ask_all(shipped, without_threshold, positives, progress)
    asked_neg = ask_all(shipped, without_threshold, negatives, progress)
    sure_by_group, tables = {}, {}
    for group in sorted({language_group(a.item.language) for a in asked_pos}):
        pos = [a for a in asked_pos if language_group(a.item.language) == group]
        neg = [a for a in asked_neg if language_group(a.item.language) == group]
        if not neg:
            continue
        sure, tables[group] = choose_sure(pos, neg)
        if sure is not None and math.isfinite(sure):
            sure_by_group[group] = round(sure, 4)
    info, _ = index_signature(shipped)
    return {
        # the reranker's scores were read in an archive this large; in a smaller one they run higher
        "rerank_sure_min_chunks": info["chunks"],
        "rerank_sure_provenance": {
            "sure": sure_by_group,
            "command": COMMAND,
            "date": dt.date.today().isoformat(),
            "criterion": "highest balanced accuracy per language group, the highest score on a tie",
            "data": {
                "positives": [Path(s).name if s.endswith(".jsonl") else s for s in POSITIVE_SETS]
                + [SHORT_QUESTIONS.name],
                "negatives": [
                    "seed.jsonl and seed_short.jsonl (unanswerable)",
                    "unanswerable.jsonl (calibration half)",
                    OFF_TOPIC_DEV.name,
                ],
            },
            "index": info,
            "by_group": tables,
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = calibration_parser("python -m evals.calibrate_sure", __doc__, COMMAND).parse_args(argv)
    from assistant.core.config import settings_from
    from evals.runner import build_eval_assistant

    def compute() -> dict:
        # The other gates as they ship (reader off, no floor), the sure score itself off.
        gates = {"reader": False, "rerank_floors": {}, "rerank_sure": {}}
        shipped = build_eval_assistant(settings_from(args, **gates))
        without_threshold = build_eval_assistant(settings_from(args, **gates, answerable_threshold=0.0))
        return calibrate_sure(shipped, without_threshold, progress=not args.no_progress)

    return run_calibration("calibrate_sure", compute, merge_into_calibration, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
