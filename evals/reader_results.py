"""The reader's part of `make eval` (`evals/RESULTS.md`), measured with the reading stage switched on (it is off
by default): reading comprehension with the gold passage given; the system end to end on NorQuAD news test,
the English validation versions, the report half of `unanswerable.jsonl` and `off_topic.jsonl`; and the refusal curve of the whole
decision (every gate, the reader's margin last). NorQuAD test and the report half were never used to train or
calibrate the reader; `norquad_news_val_en.jsonl`, the only English answerable set, is validation data."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

from assistant.core.language import language_group
from evals.calibrate import REPORT_HALF
from evals.datasets import dataset_name
from evals.report import INTERVAL_NOTE, fmt

E2E_SETS = (
    "norquad:news:test",
    "evals/data/norquad_news_val_en.jsonl",
    "evals/data/unanswerable.jsonl",
    "evals/data/off_topic.jsonl",
)
OFF_TOPIC = "off_topic"  # subjects the archive never mentions: measured beside the targets, not one of them
# Issue #14: (set, metric, bound, op); rc_* are reading comprehension with the gold passage.
TARGETS = (
    ("rc_test", "em", 0.60, ">="),
    ("rc_test", "f1", 0.75, ">="),
    ("norquad:news:test", "answer_found", 0.85, ">="),
    ("norquad:news:test", "citation_precision", 0.90, ">="),
    ("norquad_news_val_en", "answer_found", 0.65, ">="),
    (REPORT_HALF, "refusal_unanswerable", 0.85, ">="),
    ("norquad:news:test", "false_refusal", 0.05, "<="),
    ("norquad_news_val_en", "false_refusal", 0.05, "<="),
)


# Why an answerable question's answer was not found end to end, in the order the stages decide it.
MISS_KINDS = (
    ("refused", "refused"),
    ("not_retrieved", "no chunk holding the gold passage in the top 10"),
    ("not_read", "the gold chunk ranked below the chunks read"),
    ("other_chunk", "the gold chunk read, another chunk quoted"),
    ("other_sentence", "the gold chunk quoted, not the answer's sentence"),
)


def miss_kind(record: dict, chunks_read: int) -> str | None:
    """Where an answerable question's answer was lost (a `MISS_KINDS` key); None when it was found."""
    if not record["answerable"] or record.get("error") or record["metrics"].get("answer_found"):
        return None
    if record["refused"]:
        return "refused"
    gold = {c["chunk_id"]: c["rank"] for c in record.get("retrieved", []) if c.get("hit")}
    if not gold:
        return "not_retrieved"
    if min(gold.values()) > chunks_read:
        return "not_read"
    if not any(c["chunk_id"] in gold for c in record.get("citations", [])):
        return "other_chunk"
    return "other_sentence"


def miss_breakdown(records: list[dict], chunks_read: int) -> dict[str, dict]:
    """Per answerable set: its questions, and how many lost their answer at each stage (`MISS_KINDS`)."""
    out: dict[str, dict] = {}
    for record in records:
        if not record["answerable"]:
            continue
        row = out.setdefault(dataset_name(record["dataset"]), {"n": 0, **{key: 0 for key, _ in MISS_KINDS}})
        row["n"] += 1
        if kind := miss_kind(record, chunks_read):
            row[kind] += 1
    return out


def measure(settings, out: Path, progress: bool = True) -> dict:
    """Runs every measurement with the shipped reader and margins; writes `out/reader.json` and the end-to-end
    run folder `out/reader-run`."""
    from evals.calibrate import UNANSWERABLE, add_report_half, split_unanswerable
    from evals.calibrate_reader import curve, refusal_rates, score
    from evals.datasets import DATA, load_datasets
    from evals.reader_eval import score_split
    from evals.runner import RunConfig, build_eval_assistant, git_commit, load_run, run_eval

    assistant = build_eval_assistant(replace(settings, reader=True))
    reader = assistant.reading.reader
    result: dict = {
        "rc_validation": score_split(reader, "validation"),
        "rc_test": score_split(reader, "test"),
        "margins": dict(assistant.reading.margins),
        "missing_term_limits": dict(assistant.reading.missing_term_limits),
        "chunks_read": assistant.reading.chunks,
        "commit": git_commit(),
        "refusal": {},
    }
    run_dir = out / "reader-run"
    config = RunConfig(datasets=E2E_SETS, retrievers=("hybrid+rerank",), command="python -m evals.results")
    run_eval(assistant, load_datasets(list(E2E_SETS)), config, run_dir, progress)
    summary, records = load_run(run_dir)
    add_report_half(summary, records)
    by_dataset = summary["variants"]["hybrid+rerank"]["by_dataset"]
    result["end_to_end"] = {
        name: {"n": agg["n"], "metrics": agg["metrics"], "intervals": agg.get("intervals", {})}
        for name, agg in by_dataset.items()
    }
    result["latency_ms"] = summary["variants"]["hybrid+rerank"]["overall"]["latency_ms"]
    result["misses"] = miss_breakdown(records, assistant.reading.chunks)

    _, report_half = split_unanswerable(load_datasets([str(UNANSWERABLE)]))
    negatives = score(assistant, report_half, progress)
    for group, spec in (("no", "norquad:news:test"), ("en", str(DATA / "norquad_news_val_en.jsonl"))):
        positives = score(assistant, [i for i in load_datasets([spec]) if i.answerable], progress)
        neg = [s for s in negatives if language_group(s.item.language) == group]
        margin = assistant.reading.margin_for(group)
        limit = assistant.reading.missing_term_limits.get(group)
        result["refusal"][group] = {
            "answerable": spec,
            "positives": len(positives),
            "negatives": len(neg),
            "without_reader": refusal_rates(positives, neg, -math.inf),
            "shipped": refusal_rates(positives, neg, margin if margin is not None else -math.inf, limit),
            "curve": curve(positives, neg, missing_term_limit=limit),
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


def value_of(reader: dict, where: str, metric: str, shipped: dict | None = None):
    if where.startswith("rc_"):
        return reader[where][metric]
    source = shipped if shipped is not None else reader["end_to_end"]
    return (source.get(where) or {}).get("metrics", {}).get(metric)


def interval_of(reader: dict, where: str, metric: str) -> list[float] | None:
    """The 95 % interval of a measured figure (`evals.metrics.interval`), where the run recorded one."""
    if where.startswith("rc_"):
        return reader[where].get(f"{metric}_interval")
    return ((reader["end_to_end"].get(where) or {}).get("intervals") or {}).get(metric)


def shown(metric: str, value, rc: bool) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if rc else fmt(metric, value)


def render(reader: dict, shipped: dict) -> list[str]:
    """`shipped`: the main run's figures per set for the shipped system (the reader off), shown beside."""
    if not reader:
        return ["## Kilde's reader", "", "Not measured in this run.", ""]
    lines = [
        "## Kilde's reader (`assistant/models/reader.md`; off by default, `KILDE_READER=1`)",
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
    lines += [
        "",
        f"End to end with the reader on (it reads the top {reader['chunks_read']} reranked chunks; run folder "
        "`reader-run` beside this run's"
        + (f"; measured at commit `{reader['commit']}`" if reader.get("commit") else "")
        + "), against the shipped system (reader off) of the run above:",
        "",
        "| target (issue #14) | bound | reader on | 95 % interval (reader on) | reader off (shipped) | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for where, metric, bound, op in TARGETS:
        value = value_of(reader, where, metric)
        off = None if where.startswith("rc_") else value_of(reader, where, metric, shipped)
        met = (
            "–"
            if value is None
            else ("yes" if (value >= bound if op == ">=" else value <= bound) else "**no**")
        )
        rc = where.startswith("rc_")
        bound_shown = f"{bound:.2f}" if rc else fmt(metric, bound)
        spread = interval_of(reader, where, metric)
        spread_shown = f"{shown(metric, spread[0], rc)}–{shown(metric, spread[1], rc)}" if spread else "–"
        lines.append(
            f"| `{where}` {metric} | {op} {bound_shown} | {shown(metric, value, rc)} | {spread_shown} | "
            f"{shown(metric, off, rc)} | {met} |"
        )
    lines += ["", INTERVAL_NOTE]
    lines += off_topic_line(reader, shipped)
    lines += miss_table(reader.get("misses"), reader["chunks_read"])
    read = reader.get("latency_ms", {}).get("read")
    if read:
        lines += ["", f"The reading stage's latency in that run: p50 {read['p50']} ms, p95 {read['p95']} ms."]
    lines += [
        "",
        "Refusal, every gate applied (dense threshold, missing names, then the reader's margin, calibrated per "
        f"language group on validation: {reader['margins']}; the read chunk must miss fewer of the question's "
        f"names and numbers than {reader.get('missing_term_limits') or 'no limit'}, where a limit was chosen). "
        "Unanswerable: the report half of `unanswerable.jsonl`, never used for calibration.",
        "",
        "| language | answerable set | margin | false refusal | unanswerable refused |",
        "| --- | --- | --- | --- | --- |",
    ]
    for group, r in reader["refusal"].items():
        base, now = r["without_reader"], r["shipped"]
        lines.append(
            f"| {group} | `{dataset_name(r['answerable'])}` ({r['positives']}) | none (earlier gates only) | "
            f"{fmt('false_refusal', base['false_refusal'])} | "
            f"{fmt('refusal_unanswerable', base['refused_unanswerable'])} ({r['negatives']}) |"
        )
        lines.append(
            f"| {group} | | calibrated ({reader['margins'].get(group, '–')}) | "
            f"{fmt('false_refusal', now['false_refusal'])} | {fmt('refusal_unanswerable', now['refused_unanswerable'])} |"
        )
        for point in r["curve"][1:]:
            lines.append(
                f"| {group} | | {point['margin']} | {fmt('false_refusal', point['false_refusal'])} | "
                f"{fmt('refusal_unanswerable', point['refused_unanswerable'])} |"
            )
    return [*lines, *limits_text(reader), ""]


def off_topic_line(reader: dict, shipped: dict) -> list[str]:
    """How often questions about subjects the archive never mentions are refused, reader on and off."""
    on = reader["end_to_end"].get(OFF_TOPIC)
    if not on:
        return []
    refused_on = value_of(reader, OFF_TOPIC, "refusal_unanswerable")
    refused_off = value_of(reader, OFF_TOPIC, "refusal_unanswerable", shipped)
    return [
        "",
        f"Questions about subjects the archive never mentions (`{OFF_TOPIC}.jsonl`, {on['n']}) are refused "
        f"{fmt('refusal_unanswerable', refused_on)} % of the time with the reader on, "
        f"{fmt('refusal_unanswerable', refused_off)} % with it off.",
    ]


def miss_table(misses: dict | None, chunks_read: int) -> list[str]:
    """Where the answers that were not found were lost, per answerable set: what limits answer found."""
    if not misses:
        return []
    lines = [
        "",
        f"Where the end-to-end answers were lost (answerable questions whose answer was not found; the reader "
        f"reads the top {chunks_read}, and the gold chunk is the one holding the gold passage):",
        "",
        "| set | questions | answer found | " + " | ".join(label for _, label in MISS_KINDS) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in MISS_KINDS) + " |",
    ]
    for name, row in misses.items():
        lost = sum(row[key] for key, _ in MISS_KINDS)
        n = row["n"]
        cells = " | ".join(f"{100 * row[key] / n:.1f}" for key, _ in MISS_KINDS)
        lines.append(f"| `{name}` | {n} | {100 * (n - lost) / n:.1f} | {cells} |")
    return lines


def refusal_cost(curve: list[dict], target: float) -> float | None:
    """The least false refusal at which the curve refuses `target` of the unanswerable questions (None: never)."""
    reached = [p["false_refusal"] for p in curve if p["refused_unanswerable"] >= target]
    return min(reached) if reached else None


def limits_text(reader: dict) -> list[str]:
    """What keeps the unmet end-to-end targets out of reach, in this run's own figures."""
    lines = []
    for name, row in (reader.get("misses") or {}).items():
        worst = max(MISS_KINDS, key=lambda kind: row[kind[0]])
        lines.append(
            f"- `{name}`: the largest loss of answers is «{worst[1]}», "
            f"{100 * row[worst[0]] / row['n']:.1f} % of its answerable questions."
        )
    bound = next(b for _, metric, b, _ in TARGETS if metric == "refusal_unanswerable")
    most_false = next(b for _, metric, b, _ in TARGETS if metric == "false_refusal")
    for group, r in reader.get("refusal", {}).items():
        cost = refusal_cost(r["curve"], bound)
        where = (
            f"only at a margin that also refuses {fmt('false_refusal', cost)} % of "
            f"`{dataset_name(r['answerable'])}`"
            if cost is not None
            else "at no margin of the curve"
        )
        lines.append(
            f"- {group}: {fmt('refusal_unanswerable', bound)} % of the unanswerable questions are refused {where} "
            f"(the bound on false refusal is {fmt('false_refusal', most_false)} %): the reader is as unsure of many passages that do answer as of "
            "the near misses, so a margin that keeps those answered lets most near misses through."
        )
    return ["", "What limits the unmet targets:", "", *lines] if lines else []


def main(argv: list[str] | None = None) -> int:
    """Re-measure the reader's part alone (after retraining or recalibrating the reader), then
    `python -m evals.results --render-only` rewrites RESULTS.md with it."""
    import argparse

    from assistant.core.config import settings_from

    parser = argparse.ArgumentParser(prog="python -m evals.reader_results", description=main.__doc__)
    parser.add_argument("--data-dir", help="the eval index (env KILDE_DATA_DIR)")
    parser.add_argument("--chroma-url")
    parser.add_argument(
        "--out", type=Path, default=Path("evals/runs/results"), help="the make eval run folder"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    measure(settings_from(args), args.out, progress=not args.no_progress)
    print(f"wrote {args.out / 'reader.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
