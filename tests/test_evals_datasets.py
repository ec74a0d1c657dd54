"""Eval-set loading: the JSONL format, the NorQuAD adapter, the CI subset and the unanswerable split."""

import json

import pytest

from assistant.core.errors import BadInputError
from evals.calibrate import auc, best_threshold, in_calibration_half, rates, split_unanswerable
from evals.ci import CI_SET, ci_articles, write_ci_corpus
from evals.datasets import DATA, annotation_questions, gold_sentence, load_dataset, load_jsonl, load_norquad
from evals.metrics import contains_answer, normalise, passage_hit

SHIPPED = (
    "seed.jsonl",
    "norquad_news_val_en.jsonl",
    "followups.jsonl",
    "unanswerable.jsonl",
    "off_topic.jsonl",
    "off_topic_dev.jsonl",
    "ci_norquad_val.jsonl",
)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_sets_load_and_answerable_items_have_gold(name):
    items = load_jsonl(DATA / name)
    assert items and len({i.id for i in items}) == len(items)
    for item in items:
        assert item.language in ("nb", "nn", "en")
        if item.answerable:
            assert item.gold_passages and item.answers
        else:
            assert not item.gold_passages


def test_followups_carry_history_turns():
    items = load_jsonl(DATA / "followups.jsonl")
    assert all(item.history and item.history[0].role == "user" for item in items)


@pytest.mark.parametrize(
    ("spec", "domain", "count"),
    [
        ("norquad:news:validation", "news", 238),
        ("norquad:news:test", "news", 238),
        ("norquad:wiki:validation", "wikipedia", 234),
        ("norquad:wiki:test", "wikipedia", 234),
    ],
)
def test_norquad_adapter_maps_every_question_to_an_annotated_passage(spec, domain, count):
    items = load_dataset(spec)
    assert len(items) == count and len({i.id for i in items}) == count
    corpus = {}
    for annotator in (1, 2):
        data = json.loads(
            (DATA.parent.parent / "corpus" / "norquad" / domain / f"answers_{annotator}.json").read_text(
                encoding="utf-8"
            )
        )
        for entry in data["data"]:
            for p in entry["paragraphs"]:
                corpus[f"{domain}-a{annotator}-d{p['document_id']}"] = p["context"]
    for item in items:
        (article,) = item.gold_article_ids
        assert item.language == "nb" and item.dataset == spec
        for passage in item.gold_passages:
            assert passage in corpus[article]  # verbatim from the passage the index holds
            assert any(
                contains_answer(passage, [a]) or normalise(a) in normalise(passage) for a in item.answers
            )


@pytest.mark.parametrize("domain", ["news", "wiki"])
def test_norquad_val_and_test_do_not_share_questions(domain):
    val = {(i.gold_article_ids, i.question) for i in load_dataset(f"norquad:{domain}:validation")}
    test = {(i.gold_article_ids, i.question) for i in load_dataset(f"norquad:{domain}:test")}
    assert val and test and not val & test


def test_gold_sentence_is_the_answer_sentence_or_a_window():
    context = "Første setning her. Svaret er Rygge lufthavn i Moss. Siste setning."
    start = context.index("Rygge")
    assert gold_sentence(context, start, start + 5) == "Svaret er Rygge lufthavn i Moss."
    long = "Ord " * 200 + "SVAR" + " ord" * 200
    window = gold_sentence(long, long.index("SVAR"), long.index("SVAR") + 4)
    assert "SVAR" in window and len(window) <= 201
    # An answer longer than the window is the passage whole, not its tail
    answer = "SVAR " + "langt " * 60 + "SLUTT"
    text = "Ord " * 200 + answer + " ord" * 200
    start = text.index("SVAR")
    assert gold_sentence(text, start, start + len(answer)) == answer


def test_bad_inputs_name_the_problem(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"id": "a", "question": "q", "answers": ["x"]}\n{"id": "a", "question": "q", "answers": ["x"]}\n'
    )
    with pytest.raises(BadInputError, match="duplicate id"):
        load_jsonl(bad)
    bad.write_text('{"id": "a", "question": "q"}\n')
    with pytest.raises(BadInputError, match="neither 'answers' nor 'gold_passages'"):
        load_jsonl(bad)
    bad.write_text("{not json\n")
    with pytest.raises(BadInputError, match="malformed JSON"):
        load_jsonl(bad)
    for spec in ("norquad:wiki:train", "norquad:wikipedia:test", "norquad:news"):
        with pytest.raises(BadInputError, match="norquad:wiki:validation or norquad:wiki:test"):
            load_norquad(spec)
    with pytest.raises(BadInputError, match="no such eval set"):
        load_dataset(str(tmp_path / "missing.jsonl"))


def test_ci_subset_is_forty_validation_questions_whose_gold_is_in_its_corpus(tmp_path):
    items = load_jsonl(CI_SET)
    assert len(items) == 40 and {i.language for i in items} == {"nb", "en"}
    validation_ids = {i.id for i in load_dataset("norquad:news:validation")}
    english_ids = {i.id for i in load_jsonl(DATA / "norquad_news_val_en.jsonl")}
    assert all(i.id in validation_ids | english_ids for i in items)
    write_ci_corpus(tmp_path)
    contexts = {}
    for annotator in (1, 2):
        for entry in json.loads((tmp_path / "news" / f"answers_{annotator}.json").read_text())["data"]:
            for p in entry["paragraphs"]:
                contexts[f"news-a{annotator}-d{p['document_id']}"] = p["context"]
    assert (
        set(contexts) | {"geopolitika-2024-11-27-nord-korea-og-russland-inngar-forsvarspakt"} == ci_articles()
    )
    for item in items:
        assert any(passage_hit(contexts[item.gold_article_ids[0]], p) for p in item.gold_passages)


@pytest.mark.parametrize("name", ["off_topic.jsonl", "off_topic_dev.jsonl"])
def test_off_topic_questions_ask_about_what_the_sample_corpus_never_mentions(name):
    import re

    corpus = DATA.parent.parent / "corpus"
    texts = [p.read_text(encoding="utf-8") for p in (corpus / "seed").iterdir() if p.is_file()]
    for path in sorted((corpus / "norquad").glob("*/*.json")):
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            texts += [p["context"] for p in article["paragraphs"]]
    assert len(texts) == 757
    items = [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]
    assert {i["language"] for i in items} == {"nb", "en"} and not any(i["answerable"] for i in items)
    for item in items:
        assert item["checked_patterns"], item["id"]
        for pattern in item["checked_patterns"]:
            found = [t[:80] for t in texts if re.search(pattern, t, re.IGNORECASE)]
            assert not found, (item["id"], pattern, found)


def test_the_off_topic_dev_set_shares_no_subject_with_the_reported_one():
    import re

    dev, reported = (
        [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]
        for name in ("off_topic_dev.jsonl", "off_topic.jsonl")
    )
    for one, other in ((dev, reported), (reported, dev)):
        for item in one:
            for pattern in item["checked_patterns"]:
                shared = [o["id"] for o in other if re.search(pattern, o["question"], re.IGNORECASE)]
                assert not shared, (item["id"], shared)


def test_unanswerable_split_is_deterministic_and_disjoint():
    items = load_jsonl(DATA / "unanswerable.jsonl")
    calibration, report = split_unanswerable(items)
    assert len(calibration) + len(report) == len(items) and calibration and report
    assert not {i.id for i in calibration} & {i.id for i in report}
    assert all(in_calibration_half(i.id) for i in calibration)
    shipped = load_jsonl(DATA / "splits" / "unanswerable_report.jsonl")
    assert [i.id for i in shipped] == [i.id for i in report]


def test_threshold_choice_maximises_balanced_accuracy_under_the_false_refusal_constraint():
    positives, negatives = [0.9, 0.85, 0.8, 0.7], [0.75, 0.6]
    t = best_threshold(positives, negatives)
    assert 0.75 < t <= 0.8 and rates(positives, negatives, t)["balanced_accuracy"] == 0.875
    assert best_threshold(positives, negatives, [positives], min_tpr=1.0) <= 0.7  # answer every positive
    assert auc([1.0, 0.9], [0.1]) == 1.0 and auc([0.5], [0.5]) == 0.5 and auc([], [1]) is None


def test_the_follow_up_dialogues_from_test_are_scored_apart_from_those_for_choices(tmp_path):
    from evals.followups_dev import TEST_OUT, main

    assert main(["--test", "--out", str(tmp_path / "test.jsonl")]) == 0
    assert (tmp_path / "test.jsonl").read_bytes() == TEST_OUT.read_bytes()  # the shipped file is reproducible
    test_questions = {i.question for i in load_dataset("norquad:news:test")}
    made = load_dataset(str(TEST_OUT))
    assert len(made) == 83 and all(i.extra["standalone_question"] in test_questions for i in made)
    assert all(i.history[0].content in test_questions for i in made)  # the first question too
    dev = load_dataset("evals/data/followups_dev.jsonl")
    assert (
        not {i.extra["standalone_question"] for i in dev} & test_questions
    )  # choices never saw a test question


@pytest.mark.parametrize("name", ["norquad_train_en.jsonl", "norquad_train_en_wiki.jsonl"])
def test_english_versions_of_train_questions_carry_their_norwegian_twins_gold(name):
    path = DATA / name
    items = load_dataset(f"english:{path}")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [item.question for item in items] == [row["question"] for row in rows]
    assert {item.language for item in items} == {"en"} and {item.dataset for item in items} == {path.stem}
    assert [item.id for item in items] == [f"nq-{row['key']}-en" for row in rows]
    twins = {
        f"{article}-q{qa['id']}": (article, context, answers)
        for _, article, context, qa, answers in annotation_questions(set())
    }
    for item, row in zip(items, rows, strict=True):
        article, context, answers = twins[row["key"]]
        assert item.gold_article_ids == (article,) and set(item.answers) == {a["text"] for a in answers}
        assert item.gold_passages and all(gold in context for gold in item.gold_passages)


def test_an_english_version_of_a_validation_question_is_refused_by_its_line(tmp_path):
    held_out = load_norquad("norquad:news:validation")[0].id.removeprefix("nq-")
    path = tmp_path / "english.jsonl"
    train = (DATA / "norquad_train_en.jsonl").read_text(encoding="utf-8").splitlines()[0]
    path.write_text(train + "\n" + json.dumps({"key": held_out, "question": "Who?"}) + "\n")
    with pytest.raises(
        BadInputError, match=rf"english.jsonl:2: '{held_out}' is not a NorQuAD train question"
    ):
        load_dataset(f"english:{path}")
    path.write_text(train + "\n{not json\n")
    with pytest.raises(BadInputError, match=r"english\.jsonl:2: malformed JSON"):
        load_dataset(f"english:{path}")
    path.write_text(json.dumps({"key": json.loads(train)["key"]}) + "\n")
    with pytest.raises(
        BadInputError,
        match=r"english\.jsonl:1: 'question' is missing; each line needs a 'key' and a non-empty 'question'",
    ):
        load_dataset(f"english:{path}")
    path.write_text(train + "\n" + json.dumps({"question": "Who signed?"}) + "\n")
    with pytest.raises(BadInputError, match=r"english\.jsonl:2: 'key' is missing"):  # was "None is not a …"
        load_dataset(f"english:{path}")
    with pytest.raises(BadInputError, match="no such file of English train questions"):
        load_dataset(f"english:{tmp_path / 'missing.jsonl'}")


def test_an_english_set_skips_blank_lines_as_every_eval_set_does(tmp_path):
    train = (DATA / "norquad_train_en.jsonl").read_text(encoding="utf-8").splitlines()[:2]
    path = tmp_path / "english.jsonl"
    path.write_text(f"\n{train[0]}\n   \n{train[1]}\n\n", encoding="utf-8")  # was "malformed JSON"
    assert len(load_dataset(f"english:{path}")) == 2


def test_a_file_that_is_not_text_is_named_not_a_traceback(tmp_path):
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe\x80\x81")
    with pytest.raises(BadInputError, match="not UTF-8 text"):
        load_dataset(str(binary))


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        # A string was read letter by letter: "Oslo" was the answers "O", "s", "l", "o", found almost anywhere.
        ({"answers": "Oslo"}, """'answers' must be a list of strings, such as ["Oslo"]; got 'Oslo'"""),
        (
            {"answers": ["x"], "gold_passages": "Oslo er hovedstaden"},
            "'gold_passages' must be a list of strings",
        ),
        ({"answers": ["x"], "gold_article_ids": "seed"}, "'gold_article_ids' must be a list of strings"),
        ({"answers": [4.5]}, "'answers' must be a list of strings"),
        ({"answerable": "false"}, "'answerable' must be true or false; got 'false'"),  # it was true
        ({"answers": ["x"], "language": 5}, "'language' must be a string"),
        ({"answers": ["x"], "history": "user: hei"}, "'history' must be a list"),
        ({"answers": ["x"], "history": [{"role": "user", "content": 5}]}, "history turns must be"),
        # Python reads a lone surrogate escape; the run then broke with a traceback once every item was asked.
        ({"answers": ["x"], "question": "Hva er \ud800?"}, "lone surrogate"),
        ({"answers": ["x"], "note": "\udc80"}, "lone surrogate"),
    ],
)
def test_a_field_of_the_wrong_type_is_refused_by_its_line(tmp_path, fields, says):
    bad = tmp_path / "bad.jsonl"
    good = {"id": "a", "question": "Hva?", "answers": ["x"]}
    bad.write_text(json.dumps(good) + "\n" + json.dumps({"id": "b", "question": "Hva?", **fields}) + "\n")
    with pytest.raises(BadInputError) as caught:
        load_jsonl(bad)
    assert str(caught.value).startswith(f"{bad}:2: ") and says in str(caught.value), str(caught.value)


@pytest.mark.parametrize(
    "name",
    [
        *SHIPPED,
        "seed_short.jsonl",
        "followups_dev.jsonl",
        "followups_dev_bare.jsonl",
        "followups_mixed.jsonl",
        "followups_test.jsonl",
        "splits/unanswerable_calibration.jsonl",
        "splits/unanswerable_report.jsonl",
    ],
)
def test_every_shipped_eval_set_passes_the_type_checks(name):
    assert load_jsonl(DATA / name)


def test_two_datasets_of_one_name_are_refused(tmp_path):
    # Named twice, a set was asked and counted twice (n 2 for one question); two files of one name were scored
    # as one set, and their questions of one id taken for each other by `kilde eval compare`.
    from evals.datasets import load_datasets

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "val.jsonl").write_text('{"id": "q1", "question": "Hva?", "answers": ["x"]}\n')
    first, second = str(tmp_path / "a" / "val.jsonl"), str(tmp_path / "b" / "val.jsonl")
    with pytest.raises(BadInputError, match=r"is named 'val' too.*give each set once"):
        load_datasets([first, first])
    with pytest.raises(BadInputError, match=r"is named 'val' too.*rename one of the files"):
        load_datasets([first, second])
    assert len(load_datasets([first, f"standalone:{first}", f"live:{second}"])) == 3  # three names


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_a_line_separator_inside_a_string_is_part_of_its_line(tmp_path, separator):
    # JSON lets these stand unescaped in a string (json.dumps(..., ensure_ascii=False) writes them so), and
    # str.splitlines() broke the line at them: a valid set was refused as "malformed JSON".
    path = tmp_path / "set.jsonl"
    item = {"id": "a", "question": f"Hva{separator}sier artikkel 4?", "answers": [f"x{separator}y"]}
    path.write_text(json.dumps(item, ensure_ascii=False) + "\n" + json.dumps({**item, "id": "b"}) + "\n")
    first, second = load_jsonl(path)
    assert (first.question, first.answers, second.id) == (item["question"], tuple(item["answers"]), "b")


def test_a_byte_order_mark_and_windows_line_ends_read_as_the_same_set(tmp_path):
    lines = [json.dumps({"id": i, "question": "Hva?", "answers": ["x"]}) for i in "ab"]
    plain, windows = tmp_path / "plain.jsonl", tmp_path / "windows.jsonl"
    plain.write_text("\n".join(lines), encoding="utf-8")  # no newline after the last line either
    windows.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")  # was "Unexpected UTF-8 BOM"
    assert load_jsonl(windows, "plain") == load_jsonl(plain)


@pytest.mark.parametrize("text", ["", "\n  \n\n"])
def test_a_set_without_a_question_is_refused(tmp_path, text):
    # It made a run of n 0 whose every figure was "–", and the exit code said it had passed.
    path = tmp_path / "empty.jsonl"
    path.write_text(text)
    with pytest.raises(BadInputError, match=rf"{path}: holds no questions"):
        load_jsonl(path)


@pytest.mark.parametrize("field", ["id", "question"])
def test_an_empty_id_or_question_is_refused_by_its_line(tmp_path, field):
    # An empty question was asked, failed, and left the figures unseen; an empty id named no item in compare.
    path = tmp_path / "set.jsonl"
    item = {"id": "a", "question": "Hva?", "answers": ["x"]}
    path.write_text(json.dumps(item) + "\n" + json.dumps({**item, "id": "b", field: " \t"}) + "\n")
    with pytest.raises(BadInputError, match=rf"{path}:2: '{field}' is empty"):
        load_jsonl(path)
