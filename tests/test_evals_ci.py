"""The small eval CI runs (`make test` → pytest): seed.jsonl + 40 NorQuAD validation questions on an index of
their articles, checked against evals/ci_thresholds.json, once as shipped and once with the reader on. A quality
regression fails the build."""

import json

import pytest

from assistant.testing.corpus import make_settings
from evals.ci import READER_GATE, READER_RUN, SHIPPED_GATE, THRESHOLDS, check_thresholds, run_ci


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


@pytest.fixture(scope="module")
def ci_settings(tmp_path_factory, tiktoken_cache):
    return make_settings(tmp_path_factory.mktemp("ci-index"), tiktoken_cache)


# Two tests, not one, so that the reader's gate shows its own time in `make test` (bench/test_time.py). The first
# builds the CI index, so it runs first.
@pytest.mark.slow
def test_small_eval_meets_the_ci_thresholds(ci_settings, tmp_path, embedder):
    report = run_ci(ci_settings, tmp_path, embedder=embedder, progress=False, gates=(SHIPPED_GATE,))
    print(report.text)
    assert (tmp_path / "report.html").is_file()
    assert not (tmp_path / READER_RUN).exists()
    assert report.passed, report.text


@pytest.mark.slow
def test_reader_answers_meet_the_ci_thresholds(ci_settings, tmp_path, embedder):
    report = run_ci(ci_settings, tmp_path, embedder=embedder, progress=False, gates=(READER_GATE,))
    print(report.text)
    assert (tmp_path / READER_RUN / "report.html").is_file()
    assert not (tmp_path / "report.html").exists()  # only the reader's gate ran
    assert report.passed, report.text


def test_an_unknown_gate_or_one_with_nothing_to_check_is_refused_before_any_work(tmp_path):
    settings = make_settings(tmp_path / "index", tmp_path / "cache")
    with pytest.raises(ValueError, match="unknown CI gates"):
        run_ci(settings, tmp_path, gates=("readr",))
    no_reader = tmp_path / "thresholds.json"
    no_reader.write_text(json.dumps({"variants": {}}), encoding="utf-8")
    with pytest.raises(ValueError, match="no `reader` section"):
        run_ci(settings, tmp_path, thresholds_path=no_reader, gates=(READER_GATE,))
    assert not (tmp_path / "index").exists()
