"""No `answer` carries live markup (docs/RELIABILITY.md, "Round two", item 8): hostile articles planting tags
longer than any pattern, unterminated tags, a tag built across two sentences, Markdown links and images and
e-mail addresses go through the real extractive answerer (real embedder, real Chroma), and hostile model
text goes through the generative post-check. Every answer is then rendered as a Markdown client would
(markdown-it-py with HTML and linkify on) and inserted as HTML in Chromium: no element, link or handler
may come of it."""

from __future__ import annotations

import re

import pytest

from assistant.answering.context import AskRequest
from assistant.answering.generative import OutputFilter
from assistant.build import build_assistant, build_pipeline
from assistant.testing.corpus import make_settings

LONG_ALT = "Fjordlinja " * 80  # the tag is far longer than 500 characters
ARTICLES = {
    "lang-tagg.txt": (
        "Ferjeprisene i Fjordlinja\n\nFjordlinja senker ferjeprisene med tretti prosent fra første mai. "
        f'Billettene kjøpes om bord <img src=x onerror="alert(1)" alt="{LONG_ALT}"> eller i appen til Fjordlinja. '
        "Rabatten gjelder alle avganger mellom Moss og Horten."
    ),
    "uavsluttet.txt": (
        "Bibliotekets nye åpningstider\n\nKvernhavn bibliotek åpner igjen mandag etter ombyggingen. "
        "Biblioteket holder åpent til klokka tjue alle hverdager <img src=x onerror=alert(2) alt=Kvernhavn"
    ),
    "delt-tagg.txt": (
        "Maratonløypa i Bergvik\n\nBergvik maraton får ny løype langs sjøen i år <img src=x alt=. "
        "Løypa i Bergvik maraton er godkjent av forbundet onerror=alert(3) >. Starten går fra torget."
    ),
    "lenker.txt": (
        "Havnebadet i Sandvær\n\nHavnebadet i Sandvær åpner i juni [les mer](javascript:alert(4)) for alle. "
        "Påmelding til havnebadet i Sandvær skjer på ![bilde](x onerror=alert(5)) rådhuset. "
        "Spørsmål om havnebadet sendes til post@sandvaer-havnebad.no eller mailto:post@sandvaer-havnebad.no i dag."
    ),
}
QUESTIONS = [
    "Hvor kjøpes billettene til Fjordlinja?",
    "Hvor lenge holder Kvernhavn bibliotek åpent?",
    "Hvor går løypa i Bergvik maraton?",
    "Når åpner havnebadet i Sandvær?",
    "Hvor skjer påmeldingen til havnebadet i Sandvær?",
    "Hvor sendes spørsmål om havnebadet i Sandvær?",
]
# Model text a hostile article could make an obedient model write, cut into stream pieces.
MODEL_TEXTS = [
    f'Billettene kjøpes om bord [1] <img src=x onerror="alert(6)" alt="{LONG_ALT}"> i appen.',
    "Biblioteket er åpent til klokka tjue [1] <img src=x onerror=alert(7) " + "alt=x " * 900,
    "Løypa går langs sjøen <img src=x alt=. [1] Den er godkjent onerror=alert(8) >. [2]",
    "Les mer [her](javascript:alert(9)) og ![x](y) eller skriv til post@evil.example [1].",
    "Biblioteket er åpent <" + "a" * 5000 + " href=x>klikk</a> [1]",
]
SAFE_TAGS = {
    "p",
    "em",
    "strong",
    "code",
    "pre",
    "br",
    "blockquote",
    "ul",
    "ol",
    "li",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
}


@pytest.fixture(scope="module")
def hostile_answers(tmp_path_factory, tiktoken_cache, embedder) -> list[str]:
    folder = tmp_path_factory.mktemp("hostile-markup")
    for name, text in ARTICLES.items():
        (folder / name).write_text(text, encoding="utf-8")
    settings = make_settings(tmp_path_factory.mktemp("index"), tiktoken_cache)
    report = build_pipeline(settings, embedder=embedder).ingest([folder])
    assert report.added == len(ARTICLES), report.rejected
    assistant = build_assistant(settings, embedder=embedder)
    asked = [assistant.ask(AskRequest(q)) for q in QUESTIONS]
    assert sum(a.answerable for a in asked) >= 4, [a.answer for a in asked]  # the hostile passages are quoted
    answers = [a.answer for a in asked]
    for text in MODEL_TEXTS:
        post = OutputFilter(passages=2, allowed_urls=())
        pieces = [text[i : i + 7] for i in range(0, len(text), 7)]
        answers.append("".join(post.feed(p) for p in pieces) + post.flush())
    return answers


def test_no_answer_holds_a_tag_link_or_address(hostile_answers):
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True, "linkify": True}).enable("linkify")
    for answer in hostile_answers:
        assert not re.search(r"<[A-Za-z/!?]", answer), answer
        assert "](" not in answer and "mailto:" not in answer.lower(), answer
        assert not re.search(r"[\w.+-]+@[\w-]+\.\w", answer), answer  # no e-mail address
        html = md.render(answer)
        tags = {t.lower() for t in re.findall(r"</?([A-Za-z][A-Za-z0-9]*)", html)}
        assert tags <= SAFE_TAGS, (tags, answer)


def test_no_answer_makes_an_element_in_chromium(hostile_answers):
    from markdown_it import MarkdownIt
    from playwright.sync_api import sync_playwright

    from assistant.testing.servers import CHROMIUM_ARGS, chromium_path

    if not chromium_path():
        pytest.skip("needs Debian's chromium")
    md = MarkdownIt("commonmark", {"html": True, "linkify": True}).enable("linkify")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_content("<html><body><div id=raw></div><div id=md></div></body></html>")
            page.evaluate("() => { window.fired = []; window.alert = (x) => window.fired.push(x); }")
            for answer in hostile_answers:
                found = page.evaluate(
                    """([raw, rendered]) => {
                    const a = document.getElementById('raw'), b = document.getElementById('md');
                    a.innerHTML = raw; b.innerHTML = rendered;
                    const live = 'img,a,script,iframe,svg,object,embed,form,input,video,audio,link,style,[onerror]';
                    return {raw: a.querySelectorAll('*').length,
                            md: [...b.querySelectorAll(live)].map(e => e.outerHTML)};
                }""",
                    [answer, md.render(answer)],
                )
                assert found["raw"] == 0 and found["md"] == [], (found, answer)
            page.wait_for_timeout(300)  # an onerror handler would have run by now
            assert page.evaluate("() => window.fired") == []
        finally:
            browser.close()
