"""The small eval CI runs (`make test` → pytest): seed.jsonl + 40 NorQuAD validation questions on an index of
their articles, checked against evals/ci_thresholds.json, once as shipped and once with the reader on. A quality
regression fails the build."""

import json

import pytest

from assistant.testing.corpus import make_settings
from evals.ci import READER_RUN, THRESHOLDS, check_thresholds, run_ci


def test_threshold_check_reports_floors_ceilings_and_missing_rows():
    summary = {
        "variants": {
            "hybrid": {
                "errors": 0,
                "overall": {"metrics": {}},
                "by_dataset": {"seed": {"metrics": {"hit@5": 0.9, "false_refusal": 0.2}}},
            }
        }
    }
    ok = {"variants": {"hybrid": {"seed": {"min": {"hit@5": 0.85}, "max": {"false_refusal": 0.25}}}}}
    assert check_thresholds(summary, ok) == []
    bad = {
        "variants": {
            "hybrid": {
                "seed": {"min": {"hit@5": 0.95}, "max": {"false_refusal": 0.1}},
                "other": {"min": {"hit@5": 0.1}},
            },
            "dense": {},
        }
    }
    problems = check_thresholds(summary, bad)
    assert len(problems) == 4 and any("hit@5 = 0.9 < floor 0.95" in p for p in problems)


def test_thresholds_file_is_well_formed():
    thresholds = json.loads(THRESHOLDS.read_text())
    for per_dataset in [*thresholds["variants"].values(), thresholds["reader"]]:
        assert set(per_dataset) == {"seed", "ci_norquad_val"}
        for bounds in per_dataset.values():
            assert bounds["min"] and all(0 <= v <= 1 or k == "answer_words" for k, v in bounds["min"].items())


@pytest.mark.slow
def test_small_eval_meets_the_ci_thresholds(tmp_path_factory, tiktoken_cache, embedder):
    settings = make_settings(tmp_path_factory.mktemp("ci-index"), tiktoken_cache)
    out = tmp_path_factory.mktemp("ci-run")
    report = run_ci(settings, out, embedder=embedder, progress=False)
    print(report.text)
    assert (out / "report.html").is_file()
    assert (out / READER_RUN / "report.html").is_file()  # the reader's gate ran
    assert report.passed, report.text
