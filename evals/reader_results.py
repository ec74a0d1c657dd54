"""The reader's part of `make eval` (`evals/RESULTS.md`): reading comprehension with the gold passage given,
and the refusal curve of the whole decision (every gate, the reader's margin last) on questions it was not
calibrated on: NorQuAD news test (Norwegian) and the report half of `unanswerable.jsonl`; English from
`norquad_news_val_en.jsonl`, the only English answerable set, which is validation data."""

from __future__ import annotations

import json
import math
from pathlib import Path

from assistant.core.language import language_group
from evals.report import fmt

TARGETS = (  # issue #14: (what, measured key, bound, op)
    ("NorQuAD news test, gold passage: EM", ("rc_test", "em"), 0.60, ">="),
    ("NorQuAD news test, gold passage: F1", ("rc_test", "f1"), 0.75, ">="),
)


def measure(settings, out: Path, progress: bool = True) -> dict:
    """Runs both measurements with the shipped reader and margins; writes `out/reader.json`."""
    from evals.calibrate import UNANSWERABLE, split_unanswerable
    from evals.calibrate_reader import curve, refusal_rates, score
    from evals.datasets import DATA, load_dataset
    from evals.reader_eval import score_split
    from evals.runner import build_eval_assistant

    assistant = build_eval_assistant(settings)
    if assistant.reading is None:
        return {}
    reader = assistant.reading.reader
    result: dict = {
        "rc_validation": score_split(reader, "validation"),
        "rc_test": score_split(reader, "test"),
        "margins": dict(assistant.reading.margins),
        "refusal": {},
    }
    _, report_half = split_unanswerable(load_dataset(str(UNANSWERABLE)))
    negatives = score(assistant, report_half, progress)
    for group, spec in (("no", "norquad:news:test"), ("en", str(DATA / "norquad_news_val_en.jsonl"))):
        positives = score(assistant, [i for i in load_dataset(spec) if i.answerable], progress)
        neg = [s for s in negatives if language_group(s.item.language) == group]
        margin = assistant.reading.margin_for(group)
        result["refusal"][group] = {
            "answerable": spec,
            "positives": len(positives),
            "negatives": len(neg),
            "without_reader": refusal_rates(positives, neg, -math.inf),
            "shipped": refusal_rates(positives, neg, margin if margin is not None else -math.inf),
            "curve": curve(positives, neg),
        }
    (out / "reader.json").write_text(
        json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return result


def load(out: Path) -> dict:
    try:
        return json.loads((out / "reader.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def render(reader: dict) -> list[str]:
    if not reader:
        return ["## Kilde's reader", "", "Not measured in this run (no reader).", ""]
    lines = [
        "## Kilde's reader (`assistant/models/reader.md`)",
        "",
        "Reading comprehension, the gold passage given (`python -m evals.reader_eval`; SQuAD normalisation):",
        "",
        "| split | questions | EM | F1 | no answer wins on the gold passage |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key in ("rc_validation", "rc_test"):
        r = reader[key]
        lines.append(
            f"| {r['split']} | {r['questions']} | {r['em']:.3f} | {r['f1']:.3f} | "
            f"{fmt('false_refusal', r['no_answer_wins_on_gold_passage'])} |"
        )
    lines += ["", "| target (issue #14) | bound | measured | met |", "| --- | --- | --- | --- |"]
    for what, (part, key), bound, op in TARGETS:
        value = reader[part][key]
        met = value >= bound if op == ">=" else value <= bound
        lines.append(f"| {what} | {op} {bound:.2f} | {value:.3f} | {'yes' if met else '**no**'} |")
    lines += [
        "",
        "Refusal, every gate applied (dense threshold, missing names, then the reader's margin, calibrated per "
        f"language group on validation: {reader['margins']}). Unanswerable: the report half of "
        "`unanswerable.jsonl`, never used for calibration.",
        "",
        "| language | answerable set | margin | false refusal | unanswerable refused |",
        "| --- | --- | --- | --- | --- |",
    ]
    for group, r in reader["refusal"].items():
        base, shipped = r["without_reader"], r["shipped"]
        lines.append(
            f"| {group} | `{r['answerable']}` ({r['positives']}) | none (earlier gates only) | "
            f"{fmt('false_refusal', base['false_refusal'])} | {fmt('refusal_unanswerable', base['refused_unanswerable'])} "
            f"({r['negatives']}) |"
        )
        lines.append(
            f"| {group} | | shipped ({reader['margins'].get(group, '–')}) | {fmt('false_refusal', shipped['false_refusal'])} | "
            f"{fmt('refusal_unanswerable', shipped['refused_unanswerable'])} |"
        )
        for point in r["curve"][1:]:
            lines.append(
                f"| {group} | | {point['margin']} | {fmt('false_refusal', point['false_refusal'])} | "
                f"{fmt('refusal_unanswerable', point['refused_unanswerable'])} |"
            )
    return [*lines, ""]
