"""A Markdown export's text without its markup: what a reader of the rendered page sees, not the syntax that
would be quoted ("[Rekordmye snø](https://…)", "**Les også:**", "<!-- ad -->", "<https://…>", "[^1]")."""

from __future__ import annotations

import html
import re

# What the rendered page never shows: comments, and a script or style with its contents (within a paragraph, and
# not one quoted in code: "`<script>`"). Found by `_without_hidden`, which reads the text once: these patterns,
# tried at every opening of a file of unclosed ones ("<!--<!--…"), took minutes for a file of 100 kB.
_COMMENT = "<!--"
_COMMENT_END = "-->"
_SCRIPT = re.compile(r"(?<!`)<(script|style)\b[^>]*>", re.I)
_SCRIPT_END = {"script": re.compile(r"</script\s*>", re.I), "style": re.compile(r"</style\s*>", re.I)}
_PARAGRAPH_END = re.compile(r"\n\s*\n")
# While the syntax is read, what is never syntax stands in as one private-use character each, and is put back
# as it is: a converter's escapes ("\*", "\[", "1\."), code ("`<img src=x>`"), and private-use characters
# the text has of its own (an icon font's).
_ESCAPE = re.compile(r"\\([!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])")
_PRIVATE = re.compile("[\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd]")
_STAND_IN = 0xF0000
_STAND_INS = re.compile("[\U000f0000-\U000ffffd]")
MAX_STAND_INS = 0xFFFFD - _STAND_IN
# A photo with its caption as alt text: the HTML loader leaves photos out too.
# A link's address, with one level of brackets in it ("javascript:alert(1)", Wikipedia's "Oslo_(by)"). A link's
# words hold no "[" (the innermost brackets are the link, as CommonMark has it): each "[" of a line of them
# ("[[[[…") would otherwise be read to the line's end, and a file of 100 kB took minutes.
_TARGET = r"\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"\n]*\")?\)"
_IMAGE = re.compile(r"!\[[^\[\]\n]*\](?:" + _TARGET + r"|\[[^\[\]\n]*\])")  # "![alt](src)", "![alt][ref]"
_LINK = re.compile(r"\[([^\[\]\n]*)\]" + _TARGET)
_REFERENCE = re.compile(r"\[([^\[\]\n]+)\]\[[^\[\]\n]*\]")  # "[Les hele regnskapet][1]", "[NVE][]"
# "[NVE]", where "[NVE]: https://…" says so
_SHORTCUT = re.compile(r"(!?)\[([^\[\]\n^][^\[\]\n]*)\](?![\[(:])")
# The address a reference points to: "[1]: https://…", "[nve]: <https://…> "NVE"", in a quote or a list too; a
# label alone on its line has the address on the next. "[Oppdatert]: Saken er …" is text.
_QUOTE = re.compile(r"^\s{0,3}(?:>\s?)+")
_ITEM = r"^\s{0,3}(?:(?:[-*+]|\d{1,9}[.)])\s+)?"
_DESTINATION = r"(?:<[^<>\n]*>|\S+)(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'|\([^()\n]*\)))?\s*$"
_DEFINITION = re.compile(_ITEM + r"\[(?!\^)([^\]\n]+)\]:\s*" + _DESTINATION)
_LABEL_ALONE = re.compile(_ITEM + r"\[(?!\^)([^\]\n]+)\]:\s*$")
_DESTINATION_ALONE = re.compile(r"^\s*" + _DESTINATION)
# Footnotes: the mark goes, the note's text stays where it is written (the rendered page prints it at the end).
_FOOTNOTE_MARK = re.compile(r"\[\^[^\[\]\s]+\]")
_FOOTNOTE = re.compile(r"^\s{0,3}\[\^[^\]\s]+\]:\s*")
# "<https://…>", "<post@kommune.no>": the rendered page shows the address.
_AUTOLINK = re.compile(r"<([a-z][a-z0-9+.-]{1,31}:[^\s<>]*|[\w.+-]+@[\w-]+(?:\.[\w-]+)+)>", re.I)
# Raw HTML's tags ("<a href=… onclick=…>Vipps</a>", "<br>"), whose text stays, and its entities ("&amp;"). A tag
# is one of HTML's elements, bare or with an attribute given a value: "a <b og b > c" is prose.
_ELEMENTS = (
    "a|abbr|b|big|blockquote|br|center|cite|code|del|details|dfn|div|em|figcaption|figure|font|h[1-6]|hr|i|img|ins|"
    "iframe|kbd|li|mark|ol|p|pre|q|s|small|span|strike|strong|sub|summary|sup|table|tbody|td|th|thead|time|tr|u|ul|"
    "video"
)
_ATTRIBUTE = r"\s+[a-z_:][\w.:-]*(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?"
_VALUED = r"\s+[a-z_:][\w.:-]*\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+)"
_TAG = re.compile(
    rf"</(?:{_ELEMENTS})\s*>|<(?:{_ELEMENTS})(?:\s*/?>|(?=(?:{_ATTRIBUTE})*{_VALUED})(?:{_ATTRIBUTE})+\s*/?>)",
    re.I,
)
_ENTITY = re.compile(r"&(?:#\d{1,7}|#x[0-9a-f]{1,6}|[a-z][a-z0-9]{1,31});", re.I)
_SEPARATORS = re.compile(r"^[\s|·•,–-]*$")
# Bold and struck text hold no delimiter of their own kind: each "**" of a line of unclosed ones would otherwise
# be read to the line's end.
_STRONG = re.compile(r"(\*\*|__)(?=\S)((?:(?!\1).)+?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_STRUCK = re.compile(r"~~(?=\S)((?:(?!~~).)+?)(?<=\S)~~")
_CODE = re.compile(r"(?<!`)(`+)(?!`)((?:(?!\n[ \t]*\n).)+?)(?<!`)\1(?!`)", re.S)  # within a paragraph
_FENCE = re.compile(r"^\s{0,3}(?:```|~~~)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
# A bullet of "*" or "+" (a leading "-" stays: Norwegian text opens a quote with one)
_BULLET = re.compile(r"^(\s*)[*+]\s+(?=\S)")


def markdown_text(text: str) -> str:
    """The lines of `text` as rendered: links as their words and addresses shown as addresses, no photos,
    comments, footnote marks, reference definitions, HTML tags, escapes, emphasis, quote or heading marks. A
    line of links alone (a menu, "Hopp til hovedinnhold", share buttons) is the page's navigation and is left
    out."""
    kept_as_is = _KeptAsIs()
    text = _PRIVATE.sub(lambda m: kept_as_is.stand_in(m.group()), text)
    text = _ESCAPE.sub(lambda m: kept_as_is.stand_in(m.group(1)), text)
    text = _CODE.sub(lambda m: kept_as_is.stand_in(_code(m.group(2), kept_as_is)), text)
    lines = [_QUOTE.sub("", line) for line in _without_hidden(text).split("\n")]
    # Each line is matched once as a reference definition ("[1]: https://…") or a label alone on its line ("[1]:"):
    # the labels are gathered before any line is rendered (a definition may follow its use), and the lines are
    # left out below.
    definitions = [_DEFINITION.match(line) for line in lines]
    labels_alone = [
        None if found else _LABEL_ALONE.match(line) for line, found in zip(lines, definitions, strict=True)
    ]
    labels = {m.group(1).strip().casefold() for m in definitions + labels_alone if m}
    kept = []
    skip_next = False
    for i, line in enumerate(lines):
        if skip_next:
            skip_next = False
            continue
        if _FENCE.match(line) or definitions[i]:
            continue
        if labels_alone[i] and i + 1 < len(lines) and _DESTINATION_ALONE.match(lines[i + 1]):
            skip_next = True
            continue
        kept.append(_rendered(_FOOTNOTE.sub("", line), labels))
    return kept_as_is.put_back("\n".join(line for line in kept if line is not None))


def _without_hidden(text: str) -> str:
    """`text` without its comments and its scripts and styles closed within their paragraph (an unclosed one
    stays, as text). Each search starts where the last ended, or is remembered: a file of many openings takes no
    longer than one of many words."""
    kept: list[str] = []
    at = 0
    comment = text.find(_COMMENT)
    paragraph_end = -1  # where the paragraph of the last script or style seen ends
    unclosed: dict[str, int] = {}  # kind -> the end of a paragraph in which it has no closing tag
    while True:
        if 0 <= comment < at:
            comment = text.find(_COMMENT, at)
        script = _SCRIPT.search(text, at, comment if comment >= 0 else len(text))
        if script:
            kind = script.group(1).lower()
            if script.start() >= paragraph_end:
                found = _PARAGRAPH_END.search(text, script.end())
                paragraph_end = found.start() if found else len(text)
            end = None
            if unclosed.get(kind, -1) <= script.start():
                end = _SCRIPT_END[kind].search(text, script.end(), paragraph_end)
                if end is None:
                    unclosed[kind] = paragraph_end
            kept.append(text[at : script.end() if end is None else script.start()])
            at = script.end() if end is None else end.end()
        elif comment >= 0:
            end = text.find(_COMMENT_END, comment + len(_COMMENT))
            if end < 0:  # unclosed, as is every later one: they stay, as text
                comment = -1
                continue
            kept.append(text[at:comment])
            at = end + len(_COMMENT_END)
        else:
            kept.append(text[at:])
            return "".join(kept)


class _KeptAsIs:
    """Text kept from the syntax rules: each piece stands in as one private-use character of plane 15."""

    def __init__(self):
        self.pieces: list[str] = []

    def stand_in(self, piece: str) -> str:
        if len(self.pieces) >= MAX_STAND_INS:  # more than 65,000 escapes and code spans: read as they are
            return piece
        self.pieces.append(piece)
        return chr(_STAND_IN + len(self.pieces) - 1)

    def put_back(self, text: str) -> str:
        return _STAND_INS.sub(self._piece, text)

    def _piece(self, match: re.Match) -> str:
        index = ord(match.group()) - _STAND_IN
        return self.pieces[index] if index < len(self.pieces) else match.group()


def _code(content: str, kept_as_is: _KeptAsIs) -> str:
    """Code as shown: without its backticks, and one space each side dropped where both have one."""
    if len(content) > 2 and content[0] == content[-1] == " " and content.strip():
        content = content[1:-1]
    return kept_as_is.put_back(content)


def _rendered(line: str, labels: set[str]) -> str | None:
    """One line as rendered; None for a line of links alone."""
    line = _IMAGE.sub("", line)
    if _LINK.search(line) and _SEPARATORS.match(_AUTOLINK.sub("", _LINK.sub("", line))):
        return None
    line = _REFERENCE.sub(r"\1", _LINK.sub(r"\1", line))
    line = _SHORTCUT.sub(lambda m: _shortcut(m, labels), line)
    line = _FOOTNOTE_MARK.sub("", _AUTOLINK.sub(r"\1", line))
    line = _ENTITY.sub(lambda m: html.unescape(m.group()), _TAG.sub("", line))
    line = _STRUCK.sub(r"\1", _EMPHASIS.sub(r"\1", _STRONG.sub(r"\2", line)))
    return _BULLET.sub(r"\1", _HEADING.sub("", line))


def _shortcut(match: re.Match, labels: set[str]) -> str:
    """ "[NVE]" with a definition is a link (its words); "![kart]" with one a photo (left out); else text."""
    if match.group(2).strip().casefold() not in labels:
        return match.group()
    return "" if match.group(1) else match.group(2)
