"""`python -m evals.calibrate_reader`: choose the reader's no-answer margin per question language on
validation data only, and write it to `assistant/models/calibration.json` as `reader_margins`.

A question passes the reader when some read chunk's span beats "no answer" by at least the margin
(`ReadingStage.finds_an_answer`) and, where a limit is chosen, that chunk misses fewer than the limit of the
question's names and numbers (`reader_missing_terms`); the earlier gates (the dense threshold and missing names,
from `python -m evals.calibrate`, run first) still apply. Per language group ("no": the Norwegian questions of
NorQuAD news validation and `seed.jsonl`; "en": `norquad_news_val_en.jsonl` and the English ones of
`seed.jsonl`) and per candidate limit (none, 3, 2, 1) the margin is the highest that keeps the false refusal of
the whole decision (any gate refusing an answerable question) at most `--max-false-refusal` (5 %), on the
group's questions together and on each of its NorQuAD sets alone; the limit kept is the one whose margin refuses
the most unanswerable questions (seed's and the calibration half of `unanswerable.jsonl`), none on a tie.

It also chooses `reader_rank_weights` (`ReadingStage`): the answer quotes the reading with the best margin minus
that weight per reranked place; per language group, among `RANK_WEIGHTS`, the one whose quote scores best on
answer found + citation precision over that group's answerable validation questions ("default", for any other
language: over all of them). NorQuAD test and the report half of `unanswerable.jsonl` are never read here."""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.core.config import CALIBRATION_FILE
from assistant.core.language import language_group
from evals.calibrate import (
    BOUNDED_SET_SIZE,
    POSITIVE_SETS,
    UNANSWERABLE,
    bounded_sets,
    merge_into_calibration,
    run_calibration,
    split_unanswerable,
)
from evals.datasets import DATA, EvalItem, load_dataset

# Candidates for `reader_rank_weights`: 0 orders by the reader's margin alone; 1000 keeps the reranker's order.
RANK_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 1000.0)


@dataclass(frozen=True)
class Quoted:
    """One read chunk whose span can be quoted: its reranked place, its margin, and how the quote would score."""

    rank: int
    margin: float
    answer_found: bool  # the quoted sentence holds a gold answer
    cited_right: bool  # the cited chunk holds a gold passage or answer (citation precision)
    # the sentence of the reading's runner-up span, quoted too where its margin passes the language's margin
    second_margin: float = -math.inf
    second_found: bool = False


@dataclass(frozen=True)
class Scored:
    item: EvalItem
    passed_earlier: bool  # the dense threshold and the missing-names rule would answer it
    margin: float  # the best reading's span score minus its no-answer score; -inf when nothing was read
    quoted: tuple[Quoted, ...] = ()
    # each reading's margin and how many of the question's names and numbers its chunk misses
    term_margins: tuple[tuple[float, int], ...] = ()
    # the unseen-words rule as chosen without the reader (`refuse_unseen_words`) would refuse it
    unseen: bool = False

    def best_margin(self, missing_term_limit: int | None = None) -> float:
        """The best margin among the readings whose chunk misses fewer than the limit of the question's terms
        (None: among all readings)."""
        if missing_term_limit is None:
            return self.margin
        return max((m for m, missing in self.term_margins if missing < missing_term_limit), default=-math.inf)


def score(assistant, items: Sequence[EvalItem], progress: bool) -> list[Scored]:
    """Each question through the shipped stages up to the reader (no answer is composed)."""
    from assistant.answering.context import AskRequest
    from evals.runner import progress_bar

    bar = progress_bar(len(items), progress)
    out = []
    for item in items:
        context = assistant.prepare.invoke(AskRequest(item.question, item.history))
        earlier = assistant.passes_threshold_and_names(context)
        margin = max((r.margin for r in context.readings), default=-math.inf)
        unseen = bool(
            assistant.refused_unseen_words(context.judged_question, context.language, with_reader=False)
        )
        out.append(
            Scored(
                item,
                earlier,
                margin,
                quoted_readings(item, context),
                term_margins(context, assistant.reading),
                unseen,
            )
        )
        if bar:
            bar.update(1)
    if bar:
        bar.close()
    return out


def term_margins(context, stage) -> tuple[tuple[float, int], ...]:
    """Each reading's margin, with how many of the question's names and numbers its chunk (title and text) misses,
    as the reading stage `stage` counts them (`ReadingStage.missing_in`)."""
    missing = stage.missing_in(
        context.judged_question, context.readings, context.retrieval.hits, context.language
    )
    return tuple((r.margin, m) for r, m in zip(context.readings, missing, strict=True))


def quoted_readings(item: EvalItem, context) -> tuple[Quoted, ...]:
    """How each read chunk's quote would score on `item` (answerable items with answers only)."""
    from assistant.answering.reading import quotes, second_quote
    from evals.metrics import chunk_hits, contains_answer

    if not item.answerable or not item.answers:
        return ()
    hits = context.retrieval.hits
    out = []
    for quote in quotes(context.readings, hits):
        text = hits[quote.hit_index].chunk.text
        second = second_quote(quote, hits)
        out.append(
            Quoted(
                quote.hit_index,
                quote.reading.margin,
                contains_answer(text[quote.start : quote.end], item.answers),
                chunk_hits(text, item) or contains_answer(text, item.answers),
                quote.reading.second_margin if second is not None else -math.inf,
                second is not None and contains_answer(text[second.start : second.end], item.answers),
            )
        )
    return tuple(out)


def quote_scores(
    positives: Sequence[Scored], rank_weight: float, second_margins: dict[str, float] | None = None
) -> dict[str, float]:
    """Answer found and citation precision of the reader's quote when the readings are ordered by margin minus
    `rank_weight` per reranked place (`ReadingStage`), on the answerable questions with answers; a question
    whose reading gives no quote counts as a miss. `second_margins`: per language group, the margin the
    runner-up's sentence must pass to be quoted too (None: one sentence a quote)."""
    from assistant.answering.reading import preference

    scored = [s for s in positives if s.item.answers]
    found = right = 0
    for s in scored:
        if s.quoted:
            best = max(s.quoted, key=lambda q: (preference(q.margin, q.rank, rank_weight), -q.rank))
            least = (second_margins or {}).get(language_group(s.item.language), math.inf)
            found += best.answer_found or (best.second_found and best.second_margin >= least)
            right += best.cited_right
    n = max(len(scored), 1)
    return {"answer_found": round(found / n, 4), "citation_precision": round(right / n, 4)}


def choose_rank_weight(
    positives: Sequence[Scored], second_margins: dict[str, float] | None = None
) -> tuple[float, dict[str, dict[str, float]]]:
    """The weight with the best answer found + citation precision on validation (on a tie, the smaller), and
    the table of every candidate."""
    table = {str(w): quote_scores(positives, w, second_margins) for w in RANK_WEIGHTS}
    best = max(RANK_WEIGHTS, key=lambda w: (sum(table[str(w)].values()), -w))
    return best, table


def refusal_rates(
    positives: Sequence[Scored],
    negatives: Sequence[Scored],
    margin: float,
    missing_term_limit: int | None = None,
    unseen_rule: bool = False,
) -> dict[str, float]:
    """False refusal on answerable questions and refusal of unanswerable ones, with every gate applied
    (`unseen_rule`: the unseen-words rule too)."""

    def refused(s: Scored) -> bool:
        return (
            not s.passed_earlier or (unseen_rule and s.unseen) or s.best_margin(missing_term_limit) < margin
        )

    return {
        "false_refusal": round(sum(map(refused, positives)) / len(positives), 4) if positives else math.nan,
        "refused_unanswerable": round(sum(map(refused, negatives)) / len(negatives), 4)
        if negatives
        else math.nan,
    }


def choose_margin(
    positives: Sequence[Scored],
    negatives: Sequence[Scored],
    max_false_refusal: float,
    missing_term_limit: int | None = None,
    unseen_rule: bool = False,
) -> float:
    """The highest margin whose false refusal stays within the bound on the positives together and on each
    large set among them (`bounded_sets`), midway between two answerable questions' margins (false refusal
    only grows with the margin). Where the earlier gates alone exceed the bound, the margin refuses no
    answerable question the earlier gates answer."""
    values = sorted({m for s in positives if math.isfinite(m := s.best_margin(missing_term_limit))})
    if not values:
        return -1e9
    sets = bounded_sets(positives)
    candidates = [values[0] - 1.0] + [(a + b) / 2 for a, b in itertools.pairwise(values)]
    best = candidates[0]
    for threshold in candidates[1:]:
        rates = (refusal_rates(p, negatives, threshold, missing_term_limit, unseen_rule) for p in sets)
        if any(r["false_refusal"] > max_false_refusal for r in rates):
            break
        best = threshold
    return round(best, 4)


# Candidates for `reader_missing_terms` per language group; None: the reader's chunk is not checked for the
# question's names and numbers.
MISSING_TERM_LIMITS = (None, 3, 2, 1)


def choose_gate(
    positives: Sequence[Scored],
    negatives: Sequence[Scored],
    max_false_refusal: float,
    unseen_rule: bool = False,
) -> tuple[float, int | None, dict[str, dict]]:
    """The margin and missing-term limit that refuse the most unanswerable questions while false refusal stays
    within the bound on every bounded set (on a tie, no limit, then the looser one), and the table of every
    candidate limit with its margin."""
    table: dict[str, dict] = {}
    best: tuple[float, int | None, float] | None = None
    for limit in MISSING_TERM_LIMITS:
        margin = choose_margin(positives, negatives, max_false_refusal, limit, unseen_rule)
        rates = refusal_rates(positives, negatives, margin, limit, unseen_rule)
        within = all(
            refusal_rates(p, negatives, margin, limit, unseen_rule)["false_refusal"] <= max_false_refusal
            for p in bounded_sets(positives)
        )
        table[str(limit)] = {"margin": margin, **rates, "within_bound": within}
        if best is None or (within and rates["refused_unanswerable"] > best[2]):  # no limit comes first
            best = (margin, limit, rates["refused_unanswerable"])
    assert best is not None
    return best[0], best[1], table


def choose_gates(
    positives: Sequence[Scored], negatives: Sequence[Scored], max_false_refusal: float
) -> tuple[float, int | None, bool, dict[str, dict]]:
    """`choose_gate` without and with the unseen-words rule; the rule is kept only where its gates refuse more
    unanswerable questions within the bound (so never where it flags no question). The table holds both."""
    choices = {}
    for unseen_rule in (False, True):
        margin, limit, table = choose_gate(positives, negatives, max_false_refusal, unseen_rule)
        chosen = table[str(limit)]
        refused = chosen["refused_unanswerable"] if chosen["within_bound"] else -1.0
        choices[unseen_rule] = (margin, limit, refused, table)
    keep = choices[True][2] > choices[False][2]
    margin, limit, _, _ = choices[keep]
    return margin, limit, keep, {"without": choices[False][3], "with": choices[True][3]}


def curve(
    positives: Sequence[Scored],
    negatives: Sequence[Scored],
    points: int = 9,
    missing_term_limit: int | None = None,
    unseen_rule: bool = False,
) -> list[dict]:
    """Refused unanswerable against false refusal at margins spread over the positives' quantiles."""
    margins = sorted(m for s in positives if math.isfinite(m := s.best_margin(missing_term_limit)))
    if not margins:
        return []
    picks = sorted(
        {margins[min(len(margins) - 1, int(q * len(margins)))] for q in [i / 20 for i in range(points)]}
    )
    return [
        {"margin": round(m, 3), **refusal_rates(positives, negatives, m, missing_term_limit, unseen_rule)}
        for m in [-math.inf, *picks]
    ]


def calibrate_reader(assistant, progress: bool = True, max_false_refusal: float = 0.05) -> dict:
    positives = [i for spec in POSITIVE_SETS for i in load_dataset(spec) if i.answerable]
    seed_negatives = [i for i in load_dataset(str(DATA / "seed.jsonl")) if not i.answerable]
    cal_half, _ = split_unanswerable(load_dataset(str(UNANSWERABLE)))
    pos = score(assistant, positives, progress)
    neg = score(assistant, seed_negatives + cal_half, progress)
    rank_weights, rank_tables = {}, {}
    margins, limits, by_language, unseen_groups = {}, {}, {}, []
    # A second sentence is quoted where its margin passes the language's margin: margins first, then weights.
    second_margins: dict[str, float] | None = {} if assistant.settings.max_answer_sentences >= 2 else None
    for group in sorted({language_group(s.item.language) for s in pos}):
        p = [s for s in pos if language_group(s.item.language) == group]
        n = [s for s in neg if language_group(s.item.language) == group]
        margins[group], limit, unseen_rule, limit_table = choose_gates(p, n, max_false_refusal)
        if unseen_rule:
            unseen_groups.append(group)
        if second_margins is not None:
            second_margins[group] = margins[group]
        rank_weights[group], rank_tables[group] = choose_rank_weight(p, second_margins)
        if limit is not None:
            limits[group] = limit
        by_language[group] = {
            "positives": len(p),
            "negatives": len(n),
            "without_reader": refusal_rates(p, n, -math.inf),
            "with_reader": refusal_rates(p, n, margins[group], limit, unseen_rule),
            "unseen_words_rule_kept": unseen_rule,
            "missing_term_limit_choice": limit_table,
            "curve": curve(p, n, missing_term_limit=limit, unseen_rule=unseen_rule),
        }
    rank_weights["default"], rank_tables["default"] = choose_rank_weight(pos, second_margins)
    return {
        "reader_margins": margins,
        "reader_missing_terms": limits,
        "reader_unseen_words": unseen_groups,
        "reader_rank_weights": rank_weights,
        "rank_weight_choice": {
            "criterion": "per language group, answer found + citation precision of the reader's quote (with the "
            "runner-up's sentence where it passes the group's margin) on its answerable validation questions "
            "(default: all of them); on a tie the smaller weight",
            "by_language": rank_tables,
        },
        "criterion": f"per language group, the highest margin with false refusal <= {max_false_refusal:.0%} "
        f"on its answerable validation questions, and on each of their sets of {BOUNDED_SET_SIZE} or more, "
        "all gates applied; with it the missing-term limit (none, 3, 2, 1) that refuses the most unanswerable "
        "validation questions, none on a tie; the unseen-words rule kept only where, so chosen, it refuses more",
        "validation_by_language": by_language,
        "data": {
            "positives": len(pos),
            "negatives": {
                "seed.jsonl unanswerable": len(seed_negatives),
                "unanswerable calibration half": len(cal_half),
            },
            "never_used": "NorQuAD news test; the report half of unanswerable.jsonl",
        },
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python -m evals.calibrate_reader",
    }


READER_SETTINGS = ("reader_margins", "reader_rank_weights", "reader_missing_terms", "reader_unseen_words")


def write_reader_margins(result: dict, path: Path = CALIBRATION_FILE) -> None:
    """Update only the reader's keys; keep every other calibrated value."""
    merge_into_calibration(
        {
            **{key: result[key] for key in READER_SETTINGS},
            "reader_margins_provenance": {k: v for k, v in result.items() if k not in READER_SETTINGS},
        },
        path,
        drop=("reader_rank_weight",),  # one weight for every language, before per-language weights
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.calibrate_reader", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--data-dir", help="a full index (kilde ingest corpus/seed corpus/norquad); env KILDE_DATA_DIR"
    )
    parser.add_argument("--chroma-url")
    parser.add_argument("--max-false-refusal", type=float, default=0.05)
    parser.add_argument("--dry-run", action="store_true", help="print, do not write calibration.json")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    from assistant.core.config import settings_from
    from evals.runner import build_eval_assistant

    def compute() -> dict:
        # Uncalibrated, so the stage reads every question and refuses none: what is measured is the margin.
        assistant = build_eval_assistant(settings_from(args, reader=True, reader_rerank_floors={}))
        assistant.reading.margins = {}
        assistant.reading.rank_weights = {}
        return calibrate_reader(assistant, not args.no_progress, args.max_false_refusal)

    return run_calibration("calibrate_reader", compute, write_reader_margins, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
