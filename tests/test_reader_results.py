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
