"""Text out of HTML that is not a whole page: an export's body given as HTML, and a page's lede (ingress) that
the page extractor left out."""

from __future__ import annotations

import re

# An opening or closing tag of the elements an exported body is made of; a "<" in prose ("a < b") is no tag.
_TAG = re.compile(
    r"</?(p|div|br|h[1-6]|ul|ol|li|figure|blockquote|section|article|span|a|strong|em|b|i)\b[^<>]*>", re.I
)
# Elements whose text starts a line of its own.
_BLOCKS = {
    "p",
    "div",
    "br",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "blockquote",
    "section",
    "article",
    "tr",
}
# What the page loader leaves out too: code, embeds, and photos with their captions.
_DROPPED = ("script", "style", "noscript", "iframe", "template", "figure", "svg")


def looks_like_html(text: str) -> bool:
    """Whether `text` is markup: at least two tags of a body's elements (one alone may be prose about HTML)."""
    return len(_TAG.findall(text[:20000])) >= 2


def fragment_text(html: str) -> str:
    """The text of an HTML fragment, one line per paragraph or block, entities decoded."""
    import lxml.html

    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (ValueError, lxml.etree.ParserError):
        return html
    for element in root.iter(*_DROPPED):
        element.drop_tree()
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.lower() in _BLOCKS:
            element.tail = "\n" + (element.tail or "")
            if element.tag.lower() != "br":
                element.text = "\n" + (element.text or "")
    return root.text_content()


# The class a page gives its lede: "lead", "ingress", "standfirst", "article__lead", "article-ingress", …
_LEDE_CLASS = re.compile(r"(?:^|[-_])(?:lead|lede|ingress|standfirst|preamble)(?:$|[-_])", re.I)


def page_lede(tree) -> str | None:
    """The text of the page's lede: the first element classed as one, outside navigation, asides, footers and
    figures. News pages print it above the article's body, in an element of its own, and the extractor, which
    takes the element classed as the body, leaves it out."""
    for element in tree.iter("p", "div", "h2", "section"):
        classes = (element.get("class") or "").split()
        if not any(_LEDE_CLASS.search(c) for c in classes):
            continue
        if any(a.tag in ("nav", "aside", "footer", "figure") for a in element.iterancestors()):
            continue
        text = " ".join(element.text_content().split())
        if len(text) >= 40:
            return text
    return None
