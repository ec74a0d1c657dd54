"""Web addresses and markup in answer text: an answer may name no address but its sources' own.

Hostile articles plant links, Markdown images and HTML for an answer to repeat; an API client that
renders Markdown or HTML would follow them. The generative post-check (`OutputFilter`) removes them from
the model's text, and the extractive answerer never quotes a sentence that carries them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.core.inert import carries_markup

URL = re.compile(
    r"(?:\b(?:https?|ftp|file)://|\bwww\.)[^\s<>()\[\]\"']+"
    r"|\b(?:javascript|data|vbscript):[^\s<>\"']*",
    re.IGNORECASE,
)
_TLDS = (
    "example|com|net|org|info|biz|io|no|ru|xyz|app|dev|co|top|site|online|click|link|"
    "se|dk|de|fi|eu|uk|me|ly|tk|cc|tv"
)
# A host without a scheme: a known top-level domain, or any host or IPv4 address followed by a path.
BARE_HOST = re.compile(
    rf"\b((?:[a-z0-9-]+\.)+(?:{_TLDS})|(?:[a-z0-9-]+\.)+[a-z]{{2,}}(?=/)|"
    rf"(?:\d{{1,3}}\.){{3}}\d{{1,3}}(?=/))\b(/[^\s<>()\[\]\"']*)?",
    re.IGNORECASE,
)
MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
MD_LINK = re.compile(r"\[([^\]]*)\]\(([^)]*)\)")
TAG = re.compile(r"</?[A-Za-z][^<>]{0,500}>")


def host_of(url: str) -> str:
    match = re.match(r"(?:[a-z]+://)?([^/:?#\s]+)", url.strip(), re.IGNORECASE)
    return (match.group(1) if match else "").lower().removeprefix("www.")


class AllowedLinks:
    """The sources' own http(s) URLs, and what may be said of them without a scheme."""

    def __init__(self, urls: Sequence[str]):
        urls = [u for u in urls if (u or "").lower().startswith(("http://", "https://"))]
        self.urls = {u.rstrip("/") for u in urls}
        self.hosts = {host_of(u) for u in urls}
        self._bare = {u.split("://", 1)[1].lower().removeprefix("www.").rstrip("/") for u in urls}

    def url(self, url: str) -> bool:
        return url.lower().startswith(("http://", "https://")) and url.rstrip("/") in self.urls

    def bare(self, match: re.Match) -> bool:
        """A source's host on its own, or exactly a source's address without the scheme."""
        host = match.group(1).lower().removeprefix("www.")
        path = (match.group(2) or "").rstrip(".,;:!?")
        if host not in self.hosts:
            return False
        return not path.strip("/") or f"{host}{path}".lower().rstrip("/") in self._bare


def carries_links(text: str, allowed_urls: Sequence[str] = ()) -> bool:
    """Does `text` hold HTML, a Markdown link or image, or a web address other than `allowed_urls`? A site
    named without a path ("ifølge Varsom.no", how news credit a source) is a name here, not an address."""
    if TAG.search(text) or MD_IMAGE.search(text) or MD_LINK.search(text) or carries_markup(text):
        return True
    allowed = AllowedLinks(allowed_urls)
    if any(not allowed.url(m.group().rstrip(".,;:!?")) for m in URL.finditer(text)):
        return True
    return any(m.group(2) and not allowed.bare(m) for m in BARE_HOST.finditer(URL.sub(" ", text)))
