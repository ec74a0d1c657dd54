"""The post-check of a model's streamed text: only citations to passages that were shown (renumbered),
no URLs but the sources' own, no markup or chat-template tokens; and the answer's sentences with the
citation numbers each carries."""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.answering.answers import CITATION_MARK
from assistant.core.inert import make_inert
from assistant.core.links import BARE_HOST, MD_IMAGE, MD_LINK, URL, AllowedLinks
from assistant.core.markup import ACTIVE_ELEMENT, CHAT_TOKENS, TAG
from assistant.core.sentences import sentence_spans

_ONE_MARKER = re.compile(r"\[(\d+)\]")  # a marker as the post-check leaves it
MARKER = re.compile(r"\[\s*(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\s*\]")
# At the end of a stream: an unclosed `<tag …`, `</passa`, `<|im_` or `[12, ` runs to the end of the text.
_UNCLOSED = re.compile(
    r"""(?:<\s*/?\s*[A-Za-z][\w:.-]*(?:\s+[\w:.-]+(?:\s*=\s*(?:"[^"]*"?|'[^']*'?|[^\s"'<>]*))?)*\s*"""
    r"""|<\|[^|<>]*\|?|<\s*/?\s*|\[\s*\d[\d\s,;]*)$"""
)


class OutputFilter:
    """Cleans the model's text as it streams: citations only to shown passages (renumbered in
    order of first use), no URLs other than the sources' own, no markup or chat-template tokens.

    Text is released up to the last white space outside an unclosed bracket, so a marker, link or
    tag is always judged whole."""

    def __init__(self, passages: int, allowed_urls: Sequence[str]):
        self.passages = passages
        self.allowed = AllowedLinks(allowed_urls)
        self.numbers: dict[int, int] = {}  # passage number shown to the model -> number in the answer
        self.dropped: list[int] = []
        self.removed_urls: list[str] = []
        self._pending = ""

    def feed(self, text: str) -> str:
        self._pending += text
        cut = self._cut()
        if cut <= 0:
            return ""
        raw, self._pending = self._pending[:cut], self._pending[cut:]
        out = self.clean(raw)
        return out if out.strip() or not raw.strip() else ""  # a removed link leaves no stray space

    def flush(self) -> str:
        """The rest, when the stream has ended. A tag, chat token or citation marker left open there (an
        answer cut off at the token limit) is dropped: it would otherwise be shown as text."""
        raw, self._pending = _UNCLOSED.sub("", self._pending), ""
        out = self.clean(raw)
        return out if out.strip() or not raw.strip() else ""

    def _cut(self) -> int:
        pending = self._pending
        if len(pending) > 4000:
            return len(pending)
        opened = re.search(r"<(script|style|iframe|object|svg|form)\b", pending, re.IGNORECASE)
        if opened and not re.search(rf"</{opened.group(1)}\s*>", pending[opened.start() :], re.IGNORECASE):
            return 0  # hold an active element until it closes, so it is removed whole
        depth = {"[": 0, "(": 0, "<": 0}
        closing = {"]": "[", ")": "(", ">": "<"}
        cut = 0
        for i, ch in enumerate(pending):
            if ch in depth:
                depth[ch] += 1
            elif ch in closing:
                depth[closing[ch]] = max(0, depth[closing[ch]] - 1)
            elif ch.isspace() and not any(depth.values()) and i > 0:
                cut = i
        return cut

    def clean(self, text: str) -> str:
        text = CHAT_TOKENS.sub("", text)
        text = ACTIVE_ELEMENT.sub("", text)
        text = MD_IMAGE.sub("", text)
        text = MD_LINK.sub(
            lambda m: m.group(1) if not MARKER.fullmatch(f"[{m.group(1)}]") else f"[{m.group(1)}]", text
        )
        text = TAG.sub("", text)
        text = URL.sub(self._url, text)
        text = BARE_HOST.sub(self._bare_host, text)
        text = MARKER.sub(self._marker, text)
        text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)
        return make_inert(re.sub(r"[ \t]{2,}", " ", text))  # whatever the patterns above missed

    def _url(self, match: re.Match) -> str:
        url = match.group().rstrip(".,;:!?")
        tail = match.group()[len(url) :]
        if self.allowed.url(url):
            return match.group()
        self.removed_urls.append(url)
        return tail

    def _bare_host(self, match: re.Match) -> str:
        if self.allowed.bare(match):
            return match.group()
        self.removed_urls.append(match.group())
        return ""

    def _marker(self, match: re.Match) -> str:
        out = []
        for raw in re.split(r"\s*[,;]\s*", match.group(1)):
            n = int(raw)
            if not 1 <= n <= self.passages:
                self.dropped.append(n)
                continue
            number = self.numbers.setdefault(n, len(self.numbers) + 1)
            out.append(f"[{number}]")
        return "".join(dict.fromkeys(out))


def split_sentences(text: str) -> list[tuple[str, tuple[int, ...]]]:
    """The answer's sentences with the citation numbers each one carries (markers removed)."""
    return [
        (sentence, tuple(dict.fromkeys(n for n, _ in marks))) for sentence, marks in sentence_markers(text)
    ]


def sentence_markers(text: str) -> list[tuple[str, list[tuple[int, re.Match]]]]:
    """The answer's sentences (markers removed), each with its markers: number and where it stands in `text`.
    A run of markers standing on its own (after the full stop) belongs to the sentence before it."""
    out: list[tuple[str, list[tuple[int, re.Match]]]] = []
    for start, end in sentence_spans(text):
        marks = [(int(m.group(1)), m) for m in _ONE_MARKER.finditer(text, start, end)]
        leading = re.match(r"(?:\s*\[\d+\])+", text[start:end])
        if leading and out:  # "… assistance. [1] Next sentence": the marker closes the sentence before
            out[-1][1].extend(mark for mark in marks if mark[1].end() <= start + leading.end())
            marks = [mark for mark in marks if mark[1].end() > start + leading.end()]
            start += leading.end()
        bare = CITATION_MARK.sub("", text[start:end]).strip()
        if not re.search(r"\w", bare):
            if out:
                out[-1][1].extend(marks)
            continue
        out.append((re.sub(r"\s+([.,;:!?])", r"\1", bare), marks))
    return out


def sentence_end(text: str, at: int) -> int | None:
    """Where the sentence of `text` that holds offset `at` ends, with the markers that close it after its full
    stop ("… assistance. [1]"): the start of the next sentence with words, once one has begun; None while
    that sentence may still go on."""
    for start, end in sentence_spans(text):
        leading = re.match(r"(?:\s*\[\d+\])+\s*", text[start:end])
        begins = start + (leading.end() if leading else 0)
        if begins > at and re.search(r"\w", CITATION_MARK.sub("", text[begins:end])):
            return begins
    return None


def without_markers(text: str, dropped: list[re.Match]) -> str:
    """`text` without the given markers (of `sentence_markers`), and the space before each unless a marker
    follows it ("sentence [1][2]" loses "[1]" as "sentence [2]")."""
    for mark in sorted(dropped, key=lambda m: m.start(), reverse=True):
        before = mark.start()
        if not text.startswith("[", mark.end()):
            before = len(text[:before].rstrip(" \t"))
        text = text[:before] + text[mark.end() :]
    return text
