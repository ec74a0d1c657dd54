"""Loaders: files and folders -> `Article`s. A broken file becomes a `BadInputError` naming it; the
rest of the batch is unaffected."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from assistant.core.errors import BadInputError
from assistant.core.language import LANGUAGES
from assistant.core.surrogates import LONE_SURROGATE
from assistant.core.types import Article
from ingest.articles import language_code, make_article, parse_date
from ingest.discovery import SUFFIXES, shown  # noqa: F401  (SUFFIXES: the loader's public list)
from ingest.discovery import discover as walk
from ingest.html_page import author_names, keep_ratings, page_authors
from ingest.html_text import fragment_text, looks_like_html, page_lede
from ingest.ids import safe_id
from ingest.markdown import markdown_text

MAX_FILE_BYTES = 50 * 1024 * 1024
_NORQUAD_FILE = re.compile(r"answers_(\d+)\.json$")


@dataclass
class LoadResult:
    articles: list[Article] = field(default_factory=list)
    rejected: list[BadInputError] = field(default_factory=list)
    # what was loaded with a loss the file's author should hear of (a date not understood: stored without one)
    warnings: list[str] = field(default_factory=list)
    # the article's id is the file's name (a .txt or .md file, an .html page without an address of its own): the
    # ingest keeps it apart from another file's of the same name (ingest/ids.py)
    named_after_file: bool = False


def discover(paths: Iterable[Path], follow_symlinks: bool = False) -> tuple[list[Path], list[BadInputError]]:
    """Files to load and what was not loaded (problems and skipped entries); see ingest/discovery.py."""
    found = walk(paths, follow_symlinks)
    return found.files, found.problems + found.skipped


def decode(raw: bytes, name: str) -> str:
    """UTF-8 (with or without BOM), UTF-16 (with BOM, or without one when its NUL pattern shows), else
    cp1252/latin-1: old Norwegian files are common."""
    if not raw.strip():
        raise BadInputError(name, "empty file")
    utf16 = "utf-16" if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else _bomless_utf16(raw)
    if utf16:
        try:
            return raw.decode(utf16)
        except UnicodeDecodeError as exc:  # odd length, or a lone surrogate
            raise BadInputError(name, f"not valid UTF-16: {exc.reason} at byte {exc.start}") from None
    sample = raw[:8192]
    if b"\x00" in sample or sum(b < 9 or 13 < b < 32 for b in sample) > len(sample) * 0.05:
        raise BadInputError(name, "binary file, not text")
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise BadInputError(name, "cannot decode the text")  # unreachable: latin-1 decodes any byte


def _bomless_utf16(raw: bytes) -> str | None:
    """UTF-16 saved without a byte-order mark: text in the Latin range has a NUL in every other byte, on
    the high side of each pair, and almost none on the low side. Binary data has no such pattern."""
    sample = raw[:8192]
    if len(raw) % 2 or len(sample) < 8:
        return None
    even, odd = sample[0::2], sample[1::2]
    for encoding, high, low in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        if high.count(0) >= 0.9 * len(high) and low.count(0) <= 0.02 * len(low):
            return encoding
    return None


def _valid_unicode(value: str) -> str:
    """JSON's \\ud800-style escapes can leave lone surrogates, which no UTF-8 writer (hash, store) accepts;
    they become U+FFFD as undecodable bytes would."""
    if not LONE_SURROGATE.search(value):
        return value
    return LONE_SURROGATE.sub("\ufffd", value)


def _parse_json(text: str, name: str, one_line: bool = False):
    """`one_line`: `text` is one JSONL line and `name` already says which, so the error says the column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"column {exc.colno}" if one_line else f"line {exc.lineno}"
        raise BadInputError(name, f"malformed JSON at {where}: {exc.msg}") from None
    except ValueError as exc:  # valid syntax Python refuses, e.g. an integer of more than 4,300 digits
        raise BadInputError(name, f"malformed JSON: {exc}") from None


def _size(n: int) -> str:
    """Bytes, exactly, and megabytes beside them from one up."""
    return f"{n:,} bytes" + (f" ({n / 2**20:.1f} MB)" if n >= 2**20 else "")


def load_file(path: Path) -> LoadResult:
    name = shown(path)
    result = LoadResult()
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:  # refused before it is read
            raise BadInputError(
                name,
                f"the file has {_size(size)}; the limit is {_size(MAX_FILE_BYTES)} a file: split it into "
                "smaller files (a .jsonl file by its lines) and ingest those",
            )
        text = decode(path.read_bytes(), name)
        suffix = path.suffix.lower()
        if suffix in (".txt", ".md", ".html", ".htm"):
            if suffix in (".txt", ".md"):
                article = _from_plain_text(text, path, result.warnings, markdown=suffix == ".md")
            else:
                article = _from_html(text, path)
            result.articles.append(article)
            result.named_after_file = article.id == safe_id(shown(path.stem))
        elif suffix == ".jsonl":
            for lineno, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    result.articles.append(
                        _from_object(
                            _parse_json(line, f"{name}:{lineno}", one_line=True),
                            f"{name}:{lineno}",
                            result.warnings,
                        )
                    )
                except BadInputError as exc:
                    result.rejected.append(exc)
        else:
            _load_json_document(text, path, result)
    except BadInputError as exc:
        result.rejected.append(exc)
    except OSError as exc:
        result.rejected.append(BadInputError(name, f"cannot read: {exc.strerror or exc}"))
    except RecursionError:
        result.rejected.append(BadInputError(name, "nested too deeply to parse"))
    if not result.articles and not result.rejected:  # e.g. `[]`: say so rather than load nothing silently
        result.rejected.append(BadInputError(name, "no articles in the file"))
    return result


def load_paths(paths: Iterable[Path]) -> Iterator[tuple[Path, LoadResult]]:
    files, problems = discover(paths)
    if problems:
        yield Path("."), LoadResult(rejected=problems)
    for path in files:
        yield path, load_file(path)


# -- formats -----------------------------------------------------------------------------------------


# Markdown front matter: `---` fences YAML `key: value` lines, `+++` fences TOML `key = "value"` ones (Hugo).
_FRONT_MATTER_FENCES = {"---": ":", "+++": "="}
MAX_FRONT_MATTER_LINES = 60
_FRONT_MATTER_LINE = re.compile(r"^[A-Za-z_][\w.-]*\s*[:=]")
# the fields an article takes from it; others (tags, draft, layout, …) are left out
FRONT_MATTER_FIELDS = ("title", "date", "published", "source", "url", "author", "language", "lang")


def front_matter(lines: list[str]) -> tuple[dict[str, str], int]:
    """The article fields a Markdown file's front matter gives (its one-line `key: value` entries), and the
    number of lines it takes; ({}, 0) where the file opens with none or the fence is never closed."""
    fence = lines[0].strip() if lines else ""
    if fence not in _FRONT_MATTER_FENCES:
        return {}, 0
    end = next(
        (i for i in range(1, min(len(lines), MAX_FRONT_MATTER_LINES)) if lines[i].strip() == fence), None
    )
    if end is None:
        return {}, 0
    separator = _FRONT_MATTER_FENCES[fence]
    # text between two rules ("---") is the article's own, not front matter: that holds entries only
    if not all(
        _FRONT_MATTER_LINE.match(line) for line in lines[1:end] if line.strip() and line[0] not in " \t-#"
    ):
        return {}, 0
    fields: dict[str, str] = {}
    for line in lines[1:end]:
        key, found, value = line.partition(separator)
        key, value = key.strip().lower(), value.strip()
        if found and key in FRONT_MATTER_FIELDS and not line[:1].isspace():
            if len(value) > 1 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            if value:
                fields[key] = value
    return fields, end + 1


def _from_plain_text(
    text: str, path: Path, warnings: list[str] | None = None, markdown: bool = False
) -> Article:
    """Front matter gives what it holds (title, date, source, url, author, language); otherwise the first
    non-empty line that is not a date is the headline, and a date line near the top ("27.11.2024", "Publisert
    27.11.2024 kl. 10:15") gives the date. Markdown is read as rendered (ingest/markdown.py)."""
    lines = text.splitlines()
    fields, start = front_matter(lines)
    lines = markdown_text("\n".join(lines[start:])).split("\n") if markdown else lines[start:]
    date = None
    title = fields.get("title")
    body_from = 0
    for i, line in enumerate(lines if title is None else ()):
        stripped = line.strip().lstrip("#").strip()
        if not stripped:
            continue
        if date is None and title is None and (found := _date_line(stripped)):
            date = found
            continue
        title, body_from = stripped, i + 1
        break
    if title is None:
        raise BadInputError(shown(path), "no text in file")
    body = "\n".join(lines[body_from:])
    if not body.strip():  # a note of one paragraph is its own text and heads itself (`make_article`)
        title, body = None, title
    given_date = fields.get("date") or fields.get("published")
    if given_date:
        date = given_date
    elif date is None and (found := _first_date_line(lines[body_from : body_from + 3])):
        date, line = found  # a date line may also follow the headline
        body = body.replace(line, "", 1)
    article = make_article(
        title=title,
        body=body,
        given_id=shown(path.stem),
        url=safe_url(fields.get("url")),
        date=date,
        source=fields.get("source"),
        language=fields.get("language") or fields.get("lang"),
        author=fields.get("author"),
        origin=shown(path),
    )
    _require_text(article, shown(path))
    _check_date(given_date, article, shown(path), warnings)
    _check_language(fields.get("language") or fields.get("lang"), article, shown(path), warnings)
    return article


_PUBLISHED = re.compile(r"^(?:sist\s+)?(?:publisert|published|oppdatert|updated)\s*:?\s+", re.IGNORECASE)


def _date_line(line: str) -> str | None:
    """The date of a line that is one, or that says when the article was published: "Publisert 14.02.2024 kl.
    06:45 · Oppdatert …" (its first date; a sentence that opens with a date is no date line)."""
    if date := parse_date(line):
        return date
    label = _PUBLISHED.match(line)
    words = line[label.end() :].split() if label else []
    for n in range(min(len(words), 4), 0, -1):
        if date := parse_date(" ".join(words[:n]).rstrip(",·|")):
            return date
    return None


def _first_date_line(lines: list[str]) -> tuple[str, str] | None:
    """The date of the first of `lines` that is a date line (`_date_line`), and that line."""
    return next(((date, line) for line in lines if (date := _date_line(line.strip()))), None)


def _date_near_top(body: str) -> str | None:
    """The date of a date line among the first three lines of a text ("Publisert 27.11.2024 kl. 10:15")."""
    found = _first_date_line([line for line in body.split("\n") if line.strip()][:3])
    return found[0] if found else None


def _check_date(given: str | None, article: Article, name: str, warnings: list[str] | None) -> None:
    """A date the file gives that `parse_date` does not understand is left out of the article: say so."""
    if given and article.date is None and warnings is not None:
        warnings.append(
            f"{name}: date {given[:40]!r} not understood (e.g. 2024-11-27 or 27. november 2024); "
            "stored without a date"
        )


def _check_language(given: str | None, article: Article, name: str, warnings: list[str] | None) -> None:
    """A language Kilde does not answer in is replaced by the detected one: say so, not store it quietly."""
    if given and given.strip() and language_code(given) not in LANGUAGES and warnings is not None:
        warnings.append(
            f"{name}: language {given[:40]!r} is not one Kilde supports ({', '.join(LANGUAGES)}); "
            f"stored as {article.language!r}, the language detected in the text"
        )


# An XHTML page's XML declaration, `<?xml version="1.0" encoding="utf-8"?>`: the page is text by now, decoded by
# its bytes (`decode`), and lxml refuses text that declares an encoding.
_XML_DECLARATION = re.compile(r"\A\s*<\?xml\s[^<>]*\?>", re.IGNORECASE)


def _from_html(html: str, path: Path) -> Article:
    import lxml.html
    import trafilatura

    html = _XML_DECLARATION.sub("", html, count=1)
    try:
        tree = lxml.html.fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        tree = None
    url, site_name = _page_identity(tree) if tree is not None else (None, None)
    lede = page_lede(tree) if tree is not None else None
    authors = page_authors(tree, site_name) if tree is not None else None
    ratings = keep_ratings(tree) if tree is not None else []  # rewritten so that the extractor keeps them
    page = lxml.html.tostring(tree, encoding="unicode") if ratings else html
    try:
        # no extensive date search: it dated a page without a date by a year in its text ("budsjettet for 2025"
        # gave 2025-01-01); a date line near the top ("Publisert 27.11.2024") is read below instead
        doc = trafilatura.bare_extraction(
            page,
            with_metadata=True,
            include_comments=False,
            favor_recall=True,
            date_extraction_params={"extensive_search": False},
        )
    except (ValueError, TypeError, AttributeError, AssertionError) as exc:
        # AssertionError: lxml's, as the extractor takes apart a page read as a fragment (one that opens with a
        # comment, not <html> or a doctype) whose body is a lone script
        reason = str(exc) or f"the page extractor failed ({type(exc).__name__})"
        raise BadInputError(shown(path), f"cannot parse HTML: {reason}") from None
    fields = (doc.as_dict() if hasattr(doc, "as_dict") else doc) if doc else None
    if not fields or not (fields.get("text") or "").strip():
        raise BadInputError(shown(path), "no article text found in the HTML")
    title = (fields.get("title") or "").strip() or None
    body = _without_headline(fields["text"], title)
    if lede:  # the extractor takes the element classed as the body, below the lede, or puts the lede last
        body = "\n".join([lede] + [line for line in body.split("\n") if " ".join(line.split()) != lede])
    # a rating the extractor still left out (with the page's furniture around it) goes below the lede
    missing = [line for line in ratings if re.sub(r"\s", "", line) not in re.sub(r"\s", "", body)]
    if missing:
        lines = body.split("\n")
        at = 1 if lede else 0
        body = "\n".join(lines[:at] + missing + lines[at:])
    article = make_article(
        title=title,
        body=body,
        given_id=None if url else shown(path.stem),
        url=url,
        date=fields.get("date") or _date_near_top(body),
        source=site_name,
        author=authors or "; ".join(author_names(fields.get("author") or "")) or None,
        origin=shown(path),
    )
    _require_text(article, shown(path))
    return article


def _without_headline(text: str, title: str | None) -> str:
    """The extracted text without the headline it repeats near its top, and without the short lines above it (a
    breadcrumb trail, a kicker, a "VG+" label), which are the page's, not the article's."""
    lines = text.split("\n")
    for i, line in enumerate(lines[:4]):
        if title and line.strip() == title:
            if all(_is_label(above) for above in lines[:i]):
                rest = "\n".join(lines[i + 1 :])
            else:
                rest = "\n".join(lines[:i] + lines[i + 1 :])
            # a page of one paragraph and no <title>, whose paragraph the extractor made its title too
            return rest if rest.strip() else text
    return text


def _is_label(line: str) -> bool:
    return len(line.split()) <= 8 and not re.search(r"[.!?…]\W*$", line.strip())


def _page_identity(tree) -> tuple[str | None, str | None]:
    """The page's own canonical (or og:url) address and og:site_name. A <base href> is never trusted."""
    urls = tree.xpath('//link[translate(@rel, "CANONICAL", "canonical")="canonical"]/@href') + tree.xpath(
        '//meta[@property="og:url"]/@content'
    )
    url = next((u for u in (safe_url(x) for x in urls) if u), None)
    names = [n.strip() for n in tree.xpath('//meta[@property="og:site_name"]/@content') if n.strip()]
    return url, (names[0][:200] if names else None)


def safe_url(value: str | None) -> str | None:
    """Only absolute http(s) addresses are kept; javascript:, data: and the like are dropped."""
    url = (value or "").strip()
    if re.match(r"^https?://[^\s<>\"']+$", url, re.IGNORECASE):
        return url
    return None


def _load_json_document(text: str, path: Path, result: LoadResult) -> None:
    data = _parse_json(text, shown(path))
    norquad = _NORQUAD_FILE.search(path.name)
    if isinstance(data, dict) and isinstance(data.get("data"), list) and norquad:
        domain = path.parent.name if path.parent.name in ("news", "wikipedia") else "norquad"
        result.articles.extend(
            norquad_articles(data, domain, int(norquad.group(1)), shown(path), result.rejected)
        )
        return
    items = data.get("articles") if isinstance(data, dict) and "articles" in data else data
    items = items if isinstance(items, list) else [items]
    for i, obj in enumerate(items):
        try:
            result.articles.append(_from_object(obj, f"{shown(path)}[{i}]", result.warnings))
        except BadInputError as exc:
            result.rejected.append(exc)


_METADATA = ("id", "url", "date", "published", "source", "language", "author")


def _from_object(obj: object, name: str, warnings: list[str] | None = None) -> Article:
    if not isinstance(obj, dict):
        raise BadInputError(name, f"expected a JSON object, got {_json_type(obj)}")
    body = next((obj[k] for k in ("text", "body", "content") if isinstance(obj.get(k), str)), None)
    if body is None:
        given = next((k for k in ("text", "body", "content") if k in obj), None)
        if given is not None:  # the field is there, of another JSON type: say which, not that it is missing
            raise BadInputError(name, f"'{given}' must be a string, got {_json_type(obj[given])}")
        raise BadInputError(name, "no 'text', 'body' or 'content' field")
    if obj.get("title") is not None and not isinstance(obj["title"], str):  # str() would store "['a', 'b']"
        raise BadInputError(name, f"'title' must be a string, got {_json_type(obj['title'])}")
    title = _valid_unicode(obj["title"]) if obj.get("title") else None
    for key in _METADATA:
        if (
            isinstance(obj.get(key), (dict, list)) and warnings is not None
        ):  # not guessed at, but not dropped quietly
            warnings.append(
                f"{name}: '{key}' must be a string, got {_json_type(obj[key])}; stored without it"
            )
    strings = {
        k: (
            _valid_unicode(str(obj[k]))
            if obj.get(k) is not None and not isinstance(obj[k], (dict, list))
            else None
        )
        for k in _METADATA
    }
    date = strings["date"] or strings["published"]
    body = _valid_unicode(body)
    if looks_like_html(body):  # a CMS export's body is often the page's HTML: its tags would be quoted
        body = fragment_text(body)
    article = make_article(
        title=title,
        body=body,
        given_id=strings["id"],
        url=safe_url(strings["url"]),
        date=date,
        source=strings["source"],
        language=strings["language"],
        author=strings["author"],
        origin=name,
    )
    _require_text(article, name)
    _check_date(date, article, name, warnings)
    _check_language(strings["language"], article, name, warnings)
    return article


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), "a value"
    )


def norquad_articles(
    data: dict, domain: str, annotator: int, origin: str, rejected: list[BadInputError] | None = None
) -> list[Article]:
    """NorQuAD annotation file -> one article per passage, keyed (domain, annotator, document_id). A
    passage without NorQuAD's shape (a dict with a string `context`) is skipped and added to `rejected`."""
    articles = []
    problems = rejected if rejected is not None else []
    for i, entry in enumerate(data["data"]):
        paragraphs = entry.get("paragraphs", []) if isinstance(entry, dict) else None
        if not isinstance(paragraphs, list):
            paragraphs = [None]
        for j, paragraph in enumerate(paragraphs):
            where = f"{origin}[data][{i}][paragraphs][{j}]"
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(context, str):
                problems.append(BadInputError(where, "not a NorQuAD passage (no string 'context')"))
                continue
            headline, _, body = _valid_unicode(context).partition("\n")
            document = _valid_unicode(str(paragraph.get("document_id")))
            article = make_article(
                title=headline,
                body=body,
                given_id=f"{domain}-a{annotator}-d{document}",
                source=f"NorQuAD {domain}",
                language="nb",
                origin=origin,
            )
            try:
                _require_text(article, where)
            except BadInputError as exc:
                problems.append(exc)
                continue
            articles.append(article)
    return articles


def _require_text(article: Article, name: str) -> None:
    if len(article.text.strip()) < 20:
        raise BadInputError(name, "no article text left after cleaning (fewer than 20 characters)")
