"""`python -m evals.calibrate_reader`: choose the reader's no-answer margin per question language on
validation data only, and write it to `assistant/models/calibration.json` as `reader_margins`.

A question passes the reader when some read chunk's span beats "no answer" by at least the margin
(`ReadingStage.finds_an_answer`); the earlier gates (the dense threshold and missing names, from
`python -m evals.calibrate`, run first) still apply. Per language group ("no": the Norwegian questions of
NorQuAD news validation and `seed.jsonl`; "en": `norquad_news_val_en.jsonl` and the English ones of
`seed.jsonl`) the margin is the highest that keeps the false refusal of the whole decision (any gate
refusing an answerable question) at most `--max-false-refusal` (5 %), so it refuses as many unanswerable
questions (seed's and the calibration half of `unanswerable.jsonl`) as that allows. NorQuAD test and the
report half of `unanswerable.jsonl` are never read here."""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.core.config import CALIBRATION_FILE
from assistant.core.language import language_group
from evals.calibrate import POSITIVE_SETS, UNANSWERABLE, split_unanswerable
from evals.datasets import DATA, EvalItem, load_dataset


@dataclass(frozen=True)
class Scored:
    item: EvalItem
    passed_earlier: bool  # the dense threshold and the missing-names rule would answer it
    margin: float  # the best reading's span score minus its no-answer score; -inf when nothing was read


def score(assistant, items: Sequence[EvalItem], progress: bool) -> list[Scored]:
    """Each question through the shipped stages up to the reader (no answer is composed)."""
    from assistant.answering.context import AskRequest
    from evals.runner import progress_bar

    bar = progress_bar(len(items), progress)
    out = []
    for item in items:
        context = assistant.prepare.invoke(AskRequest(item.question, item.history))
        earlier = bool(context.retrieval.hits) and assistant.is_answerable(
            context.retrieval, context.standalone
        )
        margin = max((r.margin for r in context.readings), default=-math.inf)
        out.append(Scored(item, earlier, margin))
        if bar:
            bar.update(1)
    if bar:
        bar.close()
    return out


def refusal_rates(
    positives: Sequence[Scored], negatives: Sequence[Scored], margin: float
) -> dict[str, float]:
    """False refusal on answerable questions and refusal of unanswerable ones, with every gate applied."""

    def refused(s: Scored) -> bool:
        return not s.passed_earlier or s.margin < margin

    return {
        "false_refusal": round(sum(map(refused, positives)) / len(positives), 4) if positives else math.nan,
        "refused_unanswerable": round(sum(map(refused, negatives)) / len(negatives), 4)
        if negatives
        else math.nan,
    }


def choose_margin(
    positives: Sequence[Scored], negatives: Sequence[Scored], max_false_refusal: float
) -> float:
    """The highest margin whose false refusal stays within the bound, midway between two answerable
    questions' margins (false refusal only grows with the margin). Where the earlier gates alone exceed the
    bound, the margin refuses no answerable question the earlier gates answer."""
    values = sorted({s.margin for s in positives if math.isfinite(s.margin)})
    if not values:
        return -1e9
    candidates = [values[0] - 1.0] + [(a + b) / 2 for a, b in itertools.pairwise(values)]
    best = candidates[0]
    for threshold in candidates[1:]:
        if refusal_rates(positives, negatives, threshold)["false_refusal"] > max_false_refusal:
            break
        best = threshold
    return round(best, 4)


def curve(positives: Sequence[Scored], negatives: Sequence[Scored], points: int = 9) -> list[dict]:
    """Refused unanswerable against false refusal at margins spread over the positives' quantiles."""
    margins = sorted(s.margin for s in positives if math.isfinite(s.margin))
    if not margins:
        return []
    picks = sorted(
        {margins[min(len(margins) - 1, int(q * len(margins)))] for q in [i / 20 for i in range(points)]}
    )
    return [{"margin": round(m, 3), **refusal_rates(positives, negatives, m)} for m in [-math.inf, *picks]]


def calibrate_reader(assistant, progress: bool = True, max_false_refusal: float = 0.05) -> dict:
    positives = [i for spec in POSITIVE_SETS for i in load_dataset(spec) if i.answerable]
    seed_negatives = [i for i in load_dataset(str(DATA / "seed.jsonl")) if not i.answerable]
    cal_half, _ = split_unanswerable(load_dataset(str(UNANSWERABLE)))
    pos = score(assistant, positives, progress)
    neg = score(assistant, seed_negatives + cal_half, progress)
    margins, by_language = {}, {}
    for group in sorted({language_group(s.item.language) for s in pos}):
        p = [s for s in pos if language_group(s.item.language) == group]
        n = [s for s in neg if language_group(s.item.language) == group]
        margins[group] = choose_margin(p, n, max_false_refusal)
        by_language[group] = {
            "positives": len(p),
            "negatives": len(n),
            "without_reader": refusal_rates(p, n, -math.inf),
            "with_reader": refusal_rates(p, n, margins[group]),
            "curve": curve(p, n),
        }
    return {
        "reader_margins": margins,
        "criterion": f"per language group, the highest margin with false refusal <= {max_false_refusal:.0%} "
        "on its answerable validation questions, all gates applied",
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


def write_reader_margins(result: dict, path: Path = CALIBRATION_FILE) -> None:
    """Update only the reader's keys; keep every other calibrated value."""
    current = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    current["reader_margins"] = result["reader_margins"]
    current["reader_margins_provenance"] = {k: v for k, v in result.items() if k != "reader_margins"}
    path.write_text(json.dumps(current, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


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
    from assistant.core.errors import KildeError
    from evals.runner import build_eval_assistant

    try:
        # Uncalibrated, so the stage reads every question and refuses none: what is measured is the margin.
        assistant = build_eval_assistant(settings_from(args, reader=True))
        assistant.reading.margins = {}
        result = calibrate_reader(assistant, not args.no_progress, args.max_false_refusal)
    except KildeError as exc:
        print(f"calibrate_reader: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if not args.dry_run:
        write_reader_margins(result)
        print(f"wrote {CALIBRATION_FILE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
