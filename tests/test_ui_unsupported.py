"""Unsupported sentences (issue: generative support check) are flagged in the chat, as escaped text."""

from assistant.core.types import Answer, Citation, Sentence
from ui.render import Exchange, conversation_html


def _answer(supported_second: bool) -> Answer:
    first = "Russland og Nord-Korea lover hverandre militær hjelp."
    second = "Avtalen gjelder i <b>50</b> år."
    citation = Citation(
        n=1,
        article_id="a",
        title="T",
        date=None,
        source=None,
        url=None,
        chunk_id="a#0",
        quote="q",
        start=0,
        end=1,
        score=1.0,
    )
    return Answer(
        question="Hva lover de?",
        answer=f"{first} [1] {second} [1]",
        answerable=True,
        language="nb",
        citations=(citation,),
        retrieved=(),
        sentences=(Sentence(first, (1,), True, 0.9), Sentence(second, (1,), supported_second, 0.1)),
    )


def test_an_unsupported_sentence_is_marked_and_explained():
    html = conversation_html([Exchange("Hva lover de?", _answer(False))], "nb")
    marked = html.split('<span class="kilde-unsupported">', 1)[1].split("</span>", 1)[0]
    assert "Avtalen gjelder i &lt;b&gt;50&lt;/b&gt; år." in marked and "<b>" not in html
    assert "Russland og Nord-Korea" not in marked
    assert "støttes ikke av kilden" in html
    assert html.count('class="kilde-cite"') == 2


def test_supported_answers_carry_no_flag():
    html = conversation_html([Exchange("Hva lover de?", _answer(True))], "en")
    assert "kilde-unsupported" not in html


def test_the_answers_own_unsupported_notice_is_not_said_twice():
    from dataclasses import replace

    from assistant.answering.answers import unsupported_notice

    answer = replace(_answer(False), notice=f"The answer was cut off. {unsupported_notice('nb')}")
    html = conversation_html([Exchange("Hva lover de?", answer)], "nb")
    assert html.count("støttes ikke av kilden") == 1 and "The answer was cut off." in html
