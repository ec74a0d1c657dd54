"""The last word on markup in an `answer`: whatever a quote or a model produced, what leaves Kilde opens
no tag, link, image or address when a client renders it as Markdown or inserts it as HTML.

The checks are on the shapes a renderer acts on, not on whole well-formed constructs, so no length limit,
missing `>` or join of two sentences gets a tag through: `<` directly before a letter, `/`, `!` or `?`
opens a tag (or comment, or autolink) in HTML and in Markdown; `](` ends a Markdown link or image text;
`mailto:` and e-mail addresses become links under Markdown's linkify."""

from __future__ import annotations

import re

OPENS_TAG = re.compile(r"<(?=[A-Za-z/!?])")
LINK_TARGET = re.compile(r"\](?=[(\[])")  # [text](url), ![alt](src), [text][ref]
REFERENCE = re.compile(r"(?m)^([ \t]{0,3}\[[^\]\n]*\]):")  # "[1]: /somewhere" would make every [1] a link
MAILTO = re.compile(r"\bmailto:\S*", re.IGNORECASE)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
ANGLE = "\u2039"  # ‹, shown in place of a '<' that would open a tag


def carries_markup(text: str) -> bool:
    """Would a Markdown or HTML renderer make a tag, link, image or address of something in `text`?"""
    return bool(
        OPENS_TAG.search(text)
        or LINK_TARGET.search(text)
        or REFERENCE.search(text)
        or MAILTO.search(text)
        or EMAIL.search(text)
    )


def make_inert(text: str) -> str:
    """`text` with every such shape disarmed: a tag-opening `<` becomes ‹, `](` loses its bracket join,
    a reference definition loses its colon, planted addresses are removed. Text without them is returned unchanged."""
    if not carries_markup(text):
        return text
    text = MAILTO.sub("", text)
    text = EMAIL.sub("", text)
    text = OPENS_TAG.sub(ANGLE, text)
    text = LINK_TARGET.sub("] ", text)  # CommonMark allows no space between the two parts
    text = REFERENCE.sub(r"\1 :", text)
    return re.sub(r"[ \t]{2,}", " ", text)
