"""The chat's handlers, driven without Blocks or a browser, over the real small index."""

from __future__ import annotations

import html
import json
import logging
import shutil
import time
from types import SimpleNamespace

import gradio as gr
import pytest

from assistant.testing.corpus import DEMO_QUESTION_EN, DEMO_QUESTION_NB, SEED_ID
from ui import render
from ui.feedback import FeedbackLog
from ui.handlers import ChatHandlers, ChatSession, filter_refusal
from ui.limits import RateLimiter


@pytest.fixture
def handlers(assistant, tmp_path):
    return ChatHandlers(assistant, RateLimiter(30), FeedbackLog(tmp_path / "feedback.jsonl"))


def test_ask_then_open_the_citation_then_rate_the_answer(handlers, tmp_path):
    updates = list(handlers.respond(DEMO_QUESTION_EN, "", "", [], [], "en", None, None))
    assert len(updates) >= 2  # the question at once, then the answer
    conversation, sources, _article, answer, _, state = updates[-1]
    assert answer["answerable"] and answer["citations"][0]["article_id"] == SEED_ID
    assert html.escape(DEMO_QUESTION_EN) in conversation
    assert html.escape(answer["citations"][0]["title"], quote=False) in sources
    assert isinstance(state, ChatSession) and len(state.exchanges) == 1

    _sources, article = handlers.open_citation("en", state, SimpleNamespace(_data={"turn": 0, "n": 1}))
    quote = answer["citations"][0]["quote"]
    assert 'id="kilde-hl"' in article and html.escape(quote.split("\n")[0], quote=False) in article

    comment, status = handlers.give_feedback("up")("clear answer", "en", state, None)
    assert comment == "" and "kilde-status" in status
    record = json.loads((tmp_path / "feedback.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert record["rating"] == "up" and record["question"] == DEMO_QUESTION_EN


def test_a_citation_click_for_an_unknown_turn_changes_nothing(handlers):
    assert handlers.open_citation("en", ChatSession(), SimpleNamespace(_data={"turn": 3, "n": 1})) == (
        gr.skip(),
        gr.skip(),
    )


def test_a_date_that_cannot_be_read_is_a_readable_error_in_the_chat_language(handlers):
    with pytest.raises(gr.Error, match=r"2024-13-45.*YYYY-MM-DD"):
        list(handlers.respond(DEMO_QUESTION_EN, "2024-13-45", "", [], [], "en", None, None))


@pytest.mark.parametrize(
    ("languages", "says"),
    [
        (["en"], "language filter: no article is in the language 'en'; the archive's languages: 'nb'"),
        (["nob"], "languages: 'nob' is not one of nb, nn, en"),  # a call made without the page's checkboxes
    ],
)
def test_a_language_filter_the_archive_cannot_match_is_refused_by_name(handlers, languages, says):
    """It answered "not in the archive", as if the archive held nothing on the question (RELIABILITY.md, round
    thirteen)."""
    with pytest.raises(gr.Error) as refused:
        list(handlers.respond(DEMO_QUESTION_EN, "", "", [], languages, "en", None, None))
    assert says in refused.value.message and refused.value.print_exception is False


@pytest.mark.parametrize(
    ("sources", "languages", "lang", "says"),
    [
        (["Geopolitka"], [], "nb", "Kildefilter: ingen artikkel har kilden 'Geopolitka'; arkivets kilder: "),
        (
            ["Geopolitka"],
            [],
            "en",
            "source filter: no article has the source 'Geopolitka'; the archive's sources: ",
        ),
        ([], ["en"], "nb", "Språkfilter: ingen artikkel er på språket 'en'; arkivets språk: 'nb'"),
    ],
)
def test_a_filter_no_article_matches_is_refused_in_the_chat_language(
    handlers, sources, languages, lang, says
):
    """The Norwegian chat said a bad date in Norwegian but these in English."""
    with pytest.raises(gr.Error) as refused:
        list(handlers.respond(DEMO_QUESTION_NB, "", "", sources, languages, lang, None, None))
    assert refused.value.message.startswith(says) and refused.value.print_exception is False


def test_a_filter_refusal_names_a_few_sources_and_counts_the_rest_in_the_chat_language():
    from assistant.answering.retrieval import filter_matches_nothing

    sources = ["A", "B", "C", "D", "E"]
    many = filter_matches_nothing(
        "source filter", "X", sources, "no article has the source", "the archive's sources", "", 2
    )
    assert filter_refusal(many, "nb").endswith("arkivets kilder: 'A', 'B' og 3 til")
    assert filter_refusal(many, "en").endswith("the archive's sources: 'A', 'B' and 3 more")
    none = filter_matches_nothing("language filter", "en", [], "", "", "the archive holds no article")
    assert filter_refusal(none, "nb").endswith("arkivet har ingen artikler")
    assert filter_refusal(none, "en").endswith("the archive holds no article")


@pytest.mark.parametrize(("lang", "title"), [("nb", "Ikke i arkivet. "), ("en", "Not in the archive. ")])
def test_a_refused_answer_is_announced_with_the_title_the_conversation_shows(handlers, lang, title):
    """The live region read the refusal's text without the "Not in the archive" title shown above it."""
    conversation, *_, state = list(
        handlers.respond("Hvem vant Melodi Grand Prix i 1985?", "", "", [], [], lang, None, None)
    )[-1]
    answer = state.exchanges[-1].answer
    assert not answer.answerable
    live = conversation[: conversation.index("</div>")]
    assert 'class="kilde-live"' in live and live.split(">", 1)[1] == title + html.escape(answer.answer)


def test_an_english_question_is_told_the_quotes_are_norwegian(handlers):
    english = list(handlers.respond(DEMO_QUESTION_EN, "", "", [], [], "en", None, None))[-1][0]
    assert "quoted in their original language (Norwegian)" in english
    norwegian = list(
        handlers.respond("Hva forplikter artikkel 4 hver av partene til?", "", "", [], [], "nb", None, None)
    )[-1][0]
    assert "originalspråket" not in norwegian


def test_a_date_in_another_format_is_refused_not_guessed(handlers):
    with pytest.raises(gr.Error, match=r"31\.12\.2024.*YYYY-MM-DD"):
        list(handlers.respond(DEMO_QUESTION_EN, "31.12.2024", "", [], [], "en", None, None))


@pytest.mark.parametrize("since, until", [("31.12.2024", ""), ("", "last tuesday"), ("2024-02-30", "")])
def test_a_bad_date_costs_the_server_log_one_line_and_no_traceback(handlers, caplog, since, until):
    """Gradio prints the traceback of every gr.Error unless told not to: ~40 lines per bad date."""
    caplog.set_level(logging.DEBUG)
    with pytest.raises(gr.Error) as refused:
        list(handlers.respond(DEMO_QUESTION_EN, since, until, [], [], "en", None, None))
    assert refused.value.print_exception is False
    assert "YYYY-MM-DD" in refused.value.message
    assert len(caplog.records) == 1
    [record] = caplog.records
    assert record.exc_info is None and (since or until) in record.getMessage()


def test_an_empty_question_is_refused_without_a_traceback(handlers):
    with pytest.raises(gr.Error) as refused:
        list(handlers.respond("   ", "", "", [], [], "en", None, None))
    assert refused.value.print_exception is False


@pytest.mark.parametrize(
    ("language", "said"), [("en", "question: the question is empty"), ("nb", "Spørsmålet er tomt.")]
)
def test_a_question_that_cannot_be_asked_is_refused_in_the_interface_language(handlers, language, said):
    with pytest.raises(gr.Error) as refused:
        list(handlers.respond("   ", "", "", [], [], language, None, None))
    assert refused.value.message == said


def test_only_the_languages_the_index_holds_are_offered(assistant):
    from ui.handlers import filter_choices

    held = {s.meta.language for s in assistant.store.stored_articles().values()}
    sources, languages = filter_choices(assistant)
    assert [code for _, code in languages] == [c for c in ("nb", "nn", "en") if c in held]
    assert "en" not in held and ("English", "en") not in languages
    assert sources == sorted({s.meta.source for s in assistant.store.stored_articles().values()} - {""})


def test_a_source_and_language_ingested_while_the_chat_runs_are_offered_on_the_next_page_load(
    built_index, embedder, tmp_path
):
    """The page is built once at start; its filter lists are refreshed on each load, from the archive as it is."""
    from assistant.build import build_assistant, build_pipeline

    settings = built_index.replace(data_dir=tmp_path / "index")
    shutil.copytree(built_index.data_dir, settings.data_dir)
    chat = ChatHandlers(
        build_assistant(settings, embedder=embedder), RateLimiter(30), FeedbackLog(tmp_path / "f")
    )
    sources, languages = chat.refresh_filters()
    assert "Harbour Gazette" not in sources["choices"] and ("English", "en") not in languages["choices"]

    article = tmp_path / "harbour.json"
    article.write_text(
        json.dumps(
            {
                "id": "harbour-2024-12-01",
                "title": "Harbour reopens",
                "date": "2024-12-01",
                "source": "Harbour Gazette",
                "language": "en",
                "text": "The harbour reopened on Sunday after the storm. Ferries run to the islands again.",
            }
        ),
        encoding="utf-8",
    )
    assert build_pipeline(settings, embedder=embedder).ingest([article]).added == 1
    deadline = time.monotonic() + 30  # the chat looks at the store's generation every few seconds
    while "Harbour Gazette" not in (sources := chat.refresh_filters()[0])["choices"]:
        assert time.monotonic() < deadline, sources
        time.sleep(0.5)
    assert ("English", "en") in chat.refresh_filters()[1]["choices"]


def test_the_language_switch_relabels_everything_and_keeps_the_open_article(handlers):
    from ui.handlers import RELABELLED

    state = list(handlers.respond(DEMO_QUESTION_EN, "", "", [], [], "en", None, None))[-1][-1]
    handlers.open_citation("en", state, SimpleNamespace(_data={"turn": 0, "n": 1}))
    updates = dict(zip(RELABELLED, handlers.relabel("nb", state), strict=True))
    assert updates["ask"]["value"] == "Spør" and updates["new_chat"]["value"] == "Ny samtale"
    assert "Hele artikkelen" in updates["article_view"]["value"]
    assert 'id="kilde-hl"' in updates["article_view"]["value"]  # still the open article, now in Norwegian
    assert "Siterte avsnitt" in updates["sources_panel"]["value"]


def test_a_long_conversation_keeps_its_latest_exchanges_and_says_so(handlers, tmp_path):
    """The session kept every exchange, each with its answer and the passages retrieved for it, and sent the
    whole conversation with every update: a widget left open all day grew without end."""
    from ui.handlers import MAX_EXCHANGES

    *_, first = handlers.respond(DEMO_QUESTION_EN, "", "", [], [], "en", None, None)
    state = first[-1]
    answered = state.exchanges[0]
    state.exchanges += [render.Exchange(f"Q{i}", answered.answer) for i in range(1, MAX_EXCHANGES)]
    state.filters += state.filters * (MAX_EXCHANGES - 1)
    *_, last = handlers.respond("Hva sier artikkel 4?", "", "", [], [], "en", state, None)
    conversation, _sources, _article, _answer, _, state = last
    assert len(state.exchanges) == len(state.filters) == MAX_EXCHANGES and state.dropped == 1
    assert state.exchanges[0].question == "Q1" and state.exchanges[-1].question == "Hva sier artikkel 4?"
    assert "Earlier questions in this conversation are no longer shown (1)." in conversation
    assert f'data-turn="{MAX_EXCHANGES}"' not in conversation  # turns count from the oldest kept
    # The latest turn's [1] and feedback still reach the latest answer.
    _, article = handlers.open_citation(
        "en", state, SimpleNamespace(_data={"turn": MAX_EXCHANGES - 1, "n": 1})
    )
    assert 'id="kilde-hl"' in article
    handlers.give_feedback("up")("", "en", state, None)
    record = json.loads((tmp_path / "feedback.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert record["question"] == "Hva sier artikkel 4?"


def test_new_conversation_ends_the_answer_streaming_into_the_old_one(handlers):
    """An answer still streaming when "New conversation" was clicked went on into the old session and, at its
    end, showed the old conversation again: the next question was read as its follow-up."""
    *_, first = handlers.respond(DEMO_QUESTION_EN, "", "", [], [], "en", None, None)
    state = first[-1]
    streaming = handlers.respond("Hva sier artikkel 4?", "", "", [], [], "en", state, None)
    asked = next(streaming)[0]
    assert "Hva sier artikkel 4?" in asked
    handlers.reset("en", state)
    *_, last = streaming
    conversation, _sources, _article, answer, _, session = last
    assert session is None and answer is None
    assert "kilde-user" not in conversation and "kilde-empty" in conversation
    assert [ex.question for ex in state.exchanges] == [DEMO_QUESTION_EN]  # the cut answer was not kept
