"""The reader's part of RESULTS.md: where an end-to-end answer was lost, from a run's records."""

import math

from evals.reader_results import limits_text, miss_breakdown, miss_kind, miss_table, refusal_cost


def record(
    found: bool = False,
    refused: bool = False,
    gold_ranks: tuple[int, ...] = (1,),
    cited: tuple[int, ...] = (1,),
    answerable: bool = True,
    dataset: str = "norquad:news:test",
) -> dict:
    """A run record: ten retrieved chunks `c1`..`c10`, those at `gold_ranks` holding the gold passage, the
    answer citing the chunks at the ranks in `cited`."""
    return {
        "dataset": dataset,
        "answerable": answerable,
        "error": None,
        "refused": refused,
        "metrics": {"answer_found": float(found)},
        "retrieved": [{"rank": r, "chunk_id": f"c{r}", "hit": r in gold_ranks} for r in range(1, 11)],
        "citations": [] if refused else [{"chunk_id": f"c{r}"} for r in cited],
    }


def test_each_lost_answer_is_put_at_the_stage_that_lost_it():
    assert miss_kind(record(found=True), 3) is None
    assert miss_kind(record(answerable=False), 3) is None
    assert miss_kind(record(refused=True), 3) == "refused"
    assert miss_kind(record(gold_ranks=()), 3) == "not_retrieved"
    assert miss_kind(record(gold_ranks=(4, 7), cited=(1,)), 3) == "not_read"
    assert miss_kind(record(gold_ranks=(4,), cited=(1,)), 4) == "other_chunk"  # four read: rank 4 was read
    assert miss_kind(record(gold_ranks=(2,), cited=(1, 3)), 3) == "other_chunk"
    assert miss_kind(record(gold_ranks=(2,), cited=(1, 2)), 3) == "other_sentence"


def test_the_breakdown_counts_per_answerable_set_and_the_table_adds_up():
    records = [
        record(found=True),
        record(found=True),
        record(refused=True),
        record(gold_ranks=()),
        record(answerable=False),
        record(found=True, dataset="evals/data/norquad_news_val_en.jsonl"),
        record(gold_ranks=(2,), dataset="evals/data/norquad_news_val_en.jsonl"),
    ]
    misses = miss_breakdown(records, 3)
    assert misses["norquad:news:test"] == {
        "n": 4,
        "refused": 1,
        "not_retrieved": 1,
        "not_read": 0,
        "other_chunk": 0,
        "other_sentence": 0,
    }
    assert misses["norquad_news_val_en"]["n"] == 2
    assert misses["norquad_news_val_en"]["other_chunk"] == 1
    rows = [line for line in miss_table(misses, 3) if line.startswith("| `")]
    assert rows[0] == "| `norquad:news:test` | 4 | 50.0 | 25.0 | 25.0 | 0.0 | 0.0 | 0.0 |"
    assert rows[1] == "| `norquad_news_val_en` | 2 | 50.0 | 0.0 | 0.0 | 0.0 | 50.0 | 0.0 |"


def test_a_run_without_the_breakdown_renders_no_table():
    assert miss_table(None, 3) == []


def test_the_cost_of_the_refusal_target_is_read_off_the_curve():
    curve = [
        {"margin": -math.inf, "false_refusal": 0.01, "refused_unanswerable": 0.40},
        {"margin": -6.0, "false_refusal": 0.06, "refused_unanswerable": 0.65},
        {"margin": 4.4, "false_refusal": 0.26, "refused_unanswerable": 0.85},
        {"margin": 6.0, "false_refusal": 0.31, "refused_unanswerable": 0.88},
    ]
    assert refusal_cost(curve, 0.85) == 0.26
    assert refusal_cost(curve[:2], 0.85) is None
    reader = {
        "misses": {
            "norquad:news:test": {
                "n": 10,
                "refused": 1,
                "not_retrieved": 0,
                "not_read": 0,
                "other_chunk": 3,
                "other_sentence": 1,
            }
        },
        "refusal": {
            "no": {"answerable": "norquad:news:test", "curve": curve},
            "en": {"answerable": "evals/data/norquad_news_val_en.jsonl", "curve": curve[:2]},
        },
    }
    text = "\n".join(limits_text(reader))
    assert "«the gold chunk read, another chunk quoted», 30.0 %" in text
    assert "also refuses 26.0 % of `norquad:news:test`" in text
    assert "en: 85.0 % of the unanswerable questions are refused at no margin of the curve" in text


def test_the_targets_table_shows_each_figure_with_its_interval():
    from evals.calibrate import REPORT_HALF
    from evals.reader_results import render

    rc = {"split": "news test", "questions": 238, "no_answer_wins_on_gold_passage": 0.03}
    reader = {
        "rc_validation": {**rc, "split": "news validation", "em": 0.62, "f1": 0.75},
        "rc_test": {
            **rc,
            "em": 0.601,
            "f1": 0.749,
            "em_interval": [0.538, 0.664],
            "f1_interval": [0.70, 0.795],
        },
        "chunks_read": 3,
        "margins": {"no": -11.7},
        "end_to_end": {
            "norquad:news:test": {
                "n": 238,
                "metrics": {"answer_found": 0.798, "citation_precision": 0.853, "false_refusal": 0.029},
                "intervals": {"answer_found": [0.748, 0.849]},
            },
            REPORT_HALF: {"n": 43, "metrics": {"refusal_unanswerable": 0.442}, "intervals": {}},
        },
        "refusal": {},
    }
    shipped = {"norquad:news:test": {"metrics": {"answer_found": 0.756}}}
    rows = {line.split(" | ")[0]: line for line in render(reader, shipped) if line.startswith("| `")}
    assert rows["| `rc_test` f1"] == "| `rc_test` f1 | >= 0.75 | 0.749 | 0.700–0.795 | – | **no** |"
    assert rows["| `norquad:news:test` answer_found"] == (
        "| `norquad:news:test` answer_found | >= 85.0 | 79.8 | 74.8–84.9 | 75.6 | **no** |"
    )
    # a figure recorded without an interval (an older run) shows none
    assert " | 85.3 | – | – | **no** |" in rows["| `norquad:news:test` citation_precision"]


def test_off_topic_refusal_is_shown_reader_on_beside_reader_off_and_only_when_measured():
    from evals.reader_results import OFF_TOPIC, off_topic_line

    reader = {"end_to_end": {OFF_TOPIC: {"n": 36, "metrics": {"refusal_unanswerable": 0.4167}}}}
    shipped = {OFF_TOPIC: {"metrics": {"refusal_unanswerable": 0.3333}}}
    (line,) = [line for line in off_topic_line(reader, shipped) if line]
    assert (
        "(`off_topic.jsonl`, 36) are refused 41.7 % of the time with the reader on, 33.3 % with it off"
        in line
    )
    assert off_topic_line({"end_to_end": {}}, shipped) == []  # an older run without the set


def test_the_issue_13_table_shows_the_interval_and_says_what_it_means():
    from evals.report import INTERVAL_NOTE
    from evals.results import TARGETS, target_table

    system = {"norquad:news:test": {"metrics": {"hit@5": 0.9496}, "intervals": {"hit@5": [0.92, 0.975]}}}
    lines = target_table("#13", TARGETS, system)
    assert "| `norquad:news:test` | hit@5 | >= 95.0 | 94.96 | 92.0–97.5 | **no** |" in lines
    assert "| `norquad_news_val_en` | hit@5 | >= 90.0 | – | – | – |" in lines
    assert INTERVAL_NOTE in lines
