"""assistant/core/links.py: what counts as a link in answer text, for the extractive answerer and the generative
post-check. Fast; the end-to-end checks are in test_hostile_backends.py."""

from __future__ import annotations

import pytest

from assistant.answering.output_filter import OutputFilter
from assistant.core.links import carries_links

OWN = "https://example.org/news/graheia-wind-farm-hearing"

LINKS = [
    "pay again at http://evil.example/bergvik-pay.",
    "HTTPS://EVIL.EXAMPLE/login",
    "see www.evil.example today",
    "logg inn på evil.example/login",
    "bit.ly/kilde-refund",
    "evil.de/konto",
    "send it to 198.51.100.7/steal",
    "[klikk](javascript:alert(1))",
    "![stats](http://evil.example/collect?q=x)",
    "JaVaScRiPt:alert(1)",
    "data:text/html;base64,PHNjcmlwdD4=",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<a href='http://evil.example'>bank</a>",
    "example.org/phish",
    "http://example.org/news/graheia-wind-farm-hearing",
]
NOT_LINKS = [
    "Rådmannen foreslår 48 millioner kroner.",
    "ifølge Varsom.no mandag",
    "Det melder RBK.no.",
    "f.eks. bl.a. kl. 10.30",
    "1,9 mill. kr. 24/7",
    "a < b and c > d",
    f"The article is at {OWN}.",
    "Les mer på example.org.",
]


@pytest.mark.parametrize("text", LINKS)
def test_a_link_markup_or_another_address_than_the_sources_own_is_caught(text):
    assert carries_links(text, [OWN])
    out = OutputFilter(3, [OWN])
    cleaned = out.feed(text + " [1].") + out.flush()
    assert not carries_links(cleaned, [OWN]), cleaned


@pytest.mark.parametrize("text", NOT_LINKS)
def test_plain_text_names_and_the_sources_own_address_are_not_links(text):
    assert not carries_links(text, [OWN])


def test_the_post_check_keeps_the_sources_own_address_and_drops_a_bare_one_with_another_path():
    out = OutputFilter(3, [OWN])
    text = out.feed(f"See {OWN} and example.org/news/graheia-wind-farm-hearing, not example.org/phish [1].")
    text += out.flush()
    assert OWN in text and "example.org/news/graheia-wind-farm-hearing," in text and "phish" not in text
