"""A Markdown export's text without its markup: what a reader of the rendered page sees, not the syntax that
would be quoted ("[Rekordmye snø](https://…)", "**Les også:**", "<!-- ad -->")."""

from __future__ import annotations

import re

_COMMENT = re.compile(r"<!--.*?-->", re.S)
# A photo with its caption as alt text: the HTML loader leaves photos out too.
# A link's address, with one level of brackets in it ("javascript:alert(1)", Wikipedia's "Oslo_(by)").
_TARGET = r"\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"\n]*\")?\)"
_IMAGE = re.compile(r"!\[[^\]\n]*\]" + _TARGET)
_LINK = re.compile(r"\[([^\]\n]*)\]" + _TARGET)
_REFERENCE = re.compile(r"\[([^\]\n]+)\]\[[^\]\n]*\]")  # "[Les hele regnskapet][1]"
_DEFINITION = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s*\S")  # "[1]: https://…", the address it points to
_SEPARATORS = re.compile(r"^[\s|·•,–-]*$")
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")


def markdown_text(text: str) -> str:
    """The lines of `text` as rendered: links as their words, no photos, comments, emphasis or heading marks. A
    line of links alone (a menu, "Hopp til hovedinnhold", share buttons) is the page's navigation and is left
    out."""
    lines = []
    for line in _COMMENT.sub("", text).split("\n"):
        line = _IMAGE.sub("", line)
        if _DEFINITION.match(line) or (_LINK.search(line) and _SEPARATORS.match(_LINK.sub("", line))):
            continue
        line = _REFERENCE.sub(r"\1", _LINK.sub(r"\1", line))
        line = _EMPHASIS.sub(r"\1", _STRONG.sub(r"\2", line))
        lines.append(_HEADING.sub("", line))
    return "\n".join(lines)
