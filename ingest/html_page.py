"""What a saved news page says beside its body text, which the page extractor reads wrong or leaves out: who wrote
it (JSON-LD, `<meta name="author">`, the byline), and a review's rating ("5/6", a die's "Terningkast 5", stars)."""

from __future__ import annotations

import json
import re

# -- authors ------------------------------------------------------------------------------------------------

# What a byline says of a name that is not the name: a role ("Journalist", "kulturjournalist i NRK"), and the word
# that opens it ("Av", "Tekst og foto:").
_ROLE = (
    r"\w*(?:journalist|redaktør|kommentator|reporter|fotograf|korrespondent|kritiker|anmelder|skribent|spaltist"
    r"|editor|commentator|columnist|photographer|correspondent|critic|writer|reviewer)"
)
_ROLE_AFTER = re.compile(rf"(?:^|[\s,–—-]+){_ROLE}(?:e|er|ere|s)?\b.*$", re.IGNORECASE)
_ROLE_BEFORE = re.compile(
    rf"^{_ROLE}\s*:?\s+(?!(?:i|in|for|at|hos|på|ved)\b)", re.IGNORECASE
)  # not "… i NRK"
_OPENING = re.compile(
    r"^(?:av|by|skrevet av|written by|tekst og foto|tekst og bilder|tekst|foto|photo|text)\s*:?\s+", re.I
)
# what stands between two names: "Kari Nordmann og Ola Hansen", "Tekst: Kari Nordmann Foto: Ola Hansen"
_BETWEEN_NAMES = re.compile(
    r"\s*(?:[,;|/&+·•]|\s(?:og|and|samt)\s|\s(?:tekst|text|foto|photo|video|grafikk|illustrasjon)\s*:)\s*",
    re.I,
)
_PARENTHESES = re.compile(r"\([^()]*\)")
_ADDRESS = re.compile(r"\S*(?:@|://|www\.)\S*", re.IGNORECASE)
MAX_NAME_WORDS = 6
# JSON-LD types that are the article (its author, not a review's or a comment's)
_ARTICLE_TYPE = re.compile(r"Article$|^BlogPosting$|^Review$|^Report$")


def author_names(text: str) -> list[str]:
    """The names a byline or an author field gives: "Av Kari Nordmann og Ola Hansen, journalist" -> ["Kari
    Nordmann", "Ola Hansen"]; roles, addresses and the opening word are left out."""
    names = []
    for part in _BETWEEN_NAMES.split(_ADDRESS.sub(" ", _PARENTHESES.sub(" ", " ".join(text.split())))):
        part = part.strip(" .:–—-")
        part = _OPENING.sub("", part)
        part = _ROLE_AFTER.sub("", _ROLE_BEFORE.sub("", part)).strip(" .:,–—-")
        if (
            re.fullmatch(r"[^\d@:]*[^\W\d_][^\d@:]*", part)
            and len(part.split()) <= MAX_NAME_WORDS
            and len(part) <= 80
        ):
            names.append(part)
    return names


def _joined(names: list[str]) -> str | None:
    """Each name once, in the order given."""
    unique: dict[str, str] = {}
    for name in names:
        unique.setdefault(name.casefold(), name)
    return "; ".join(unique.values()) or None


def page_authors(tree, site_name: str | None = None) -> str | None:
    """The article's authors, "; "-separated: the people its JSON-LD names, else its `<meta name="author">` (not
    the site's own name), else its byline (`rel="author"`, `itemprop="author"`, an `<address>` in the article, an
    element classed `author`), else the organisation its JSON-LD names (a wire service: "NTB")."""
    people, organisations = _json_ld_authors(tree)
    if people:
        return _joined(people)
    site = (site_name or "").casefold()
    meta = [
        name
        for content in tree.xpath(
            '//meta[translate(@name, "AUTHOR", "author")="author" or @property="article:author"]/@content'
        )
        for name in author_names(content)
        if name.casefold() != site
    ]
    return _joined(meta) or _joined(_byline_names(tree)) or _joined(organisations)


def _json_ld_authors(tree) -> tuple[list[str], list[str]]:
    """The people and the organisations the page's JSON-LD names as its article's authors."""
    people: list[str] = []
    organisations: list[str] = []
    for script in tree.xpath('//script[contains(translate(@type, "LDJSON", "ldjson"), "ld+json")]'):
        try:
            for author in _json_ld_article_authors(json.loads(script.text_content() or "null")):
                if isinstance(author, str):
                    people += author_names(author)
                    continue
                name = author.get("name")
                if not isinstance(name, str):
                    given, family = author.get("givenName"), author.get("familyName")
                    name = " ".join(p for p in (given, family) if isinstance(p, str))
                (organisations if author.get("@type") == "Organization" else people).extend(
                    author_names(name)
                )
        except (ValueError, RecursionError):
            continue  # not JSON, or nested too deeply: the page's other fields will do
    return people, organisations


def _json_ld_article_authors(data):
    for item in _items(data):
        types = item.get("@type")
        if any(
            isinstance(t, str) and _ARTICLE_TYPE.search(t)
            for t in (types if isinstance(types, list) else [types])
        ):
            yield from _items(item.get("author"), strings=True)


def _items(data, strings: bool = False):
    """The objects (and, with `strings`, the strings) of a JSON-LD value: a list, an `@graph`, or one object."""
    if isinstance(data, list):
        for item in data:
            yield from _items(item, strings)
    elif isinstance(data, dict):
        if isinstance(data.get("@graph"), list):
            yield from _items(data["@graph"], strings)
        else:
            yield data
    elif strings and isinstance(data, str):
        yield data


_AUTHOR_WORDS = {"author", "authors", "forfatter", "forfattere"}
_NOT_AUTHOR_WORDS = {
    "image",
    "img",
    "avatar",
    "photo",
    "picture",
    "bio",
    "email",
    "mail",
    "twitter",
    "description",
}
# A comment section, a list of other articles (not "kommentar": an opinion piece is an article)
_NOT_BYLINE_PLACE = re.compile(r"comments|comment-|kommentarer|kommentarfelt|related|relaterte|teaser", re.I)


def _byline_names(tree) -> list[str]:
    """Names from the page's byline: `rel="author"` links, `itemprop="author"`, an `<address>` inside the article
    (the page's footer gives the publisher's), and the innermost elements classed `author`, each with its role
    left out; never from navigation, asides, footers or a comment section."""
    found = []
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue
        marked = (
            "author" in (element.get("rel") or "").lower().split()
            or (element.get("itemprop") or "").lower() == "author"
            or (element.tag == "address" and any(a.tag == "article" for a in element.iterancestors()))
            or (_AUTHOR_WORDS & _class_words(element) and not _NOT_AUTHOR_WORDS & _class_words(element))
        )
        if marked and not _in_furniture(element, links=False):
            found.append(element)
    names = []
    inner = set(found)
    for element in found:
        if any(below in inner for below in element.iterdescendants()):
            continue  # the innermost: "Kari Nordmann" of `<div class="author"><span class="author-name">`
        named = element.xpath('.//*[@itemprop="name"]/@content | .//*[@itemprop="name"]')
        text = named[0] if named and isinstance(named[0], str) else None
        text = text or _text(named[0] if named else element)
        names += author_names(text)
    return names


def _text(element, spaced: bool = True) -> str:
    """An element's text, its white space folded; `spaced`: with a space between its elements' ("Kari Nordmann"
    "Journalist", not "Kari NordmannJournalist")."""
    return " ".join((" " if spaced else "").join(element.itertext()).split())


def _class_words(element) -> set[str]:
    """The words of an element's classes, lower-cased, without digits: "article__author-name" -> {"article",
    "author", "name"}, "reviewRating" -> {"review", "rating"}, "die-5" -> {"die"}."""
    words = set()
    for token in (element.get("class") or "").split():
        for word in re.split(r"[-_\d]+|(?<=[a-z])(?=[A-Z])", token):
            if word:
                words.add(word.lower())
    return words


def _in_furniture(element, links: bool = True) -> bool:
    """Inside navigation, an aside, a footer, a comment section or a list of other articles (with `links`, inside
    a link too: a teaser of another review)."""
    for ancestor in element.iterancestors():
        if ancestor.tag in ("nav", "aside", "footer") or (links and ancestor.tag == "a"):
            return True
        if _NOT_BYLINE_PLACE.search(f"{ancestor.get('class') or ''} {ancestor.get('id') or ''}"):
            return True
    return False


# -- a review's rating --------------------------------------------------------------------------------------

# The class a page gives a review's score: "rating", "review-rating", "reviewRating", "dice", "die-5", "stars".
_RATING_WORDS = {"rating", "ratings", "terningkast", "terning", "dice", "die", "score", "stars", "stjerner"}
_RATING_ITEMPROP = {"reviewrating", "ratingvalue"}
_INLINE = {"span", "b", "strong", "em", "i", "small", "sup", "img", "svg", "abbr", "data", "meter"}
_RATING_TAGS = _INLINE | {"div", "p", "dd"}
MAX_RATING_CHARS = 60
_STARS_FILLED, _STARS_EMPTY = "★⭐", "☆"


def rating_text(element) -> str | None:
    """What a rating element says, in words where the page gives them: its text where that names the score
    ("Terningkast 5"), else a label that does (`aria-label`, `title`, a die's `alt` or an SVG's `<title>`: "4 av 6
    stjerner"), else its digits ("5/6"; schema.org's `ratingValue` of `bestRating`; a die's "Terningkast 5"), else
    its stars counted ("★★★★☆☆": "4/6"); None where it holds no score (a "rate this article" widget)."""
    text = _text(element, spaced=False)
    if re.search(r"\d", text) and re.search(r"[^\W\d_]", text):
        return text
    labels = []
    for candidate in [element, *element.iterdescendants()]:
        if isinstance(candidate.tag, str):
            labels += [candidate.get(a) for a in ("aria-label", "title", "alt")]
            if candidate.tag.rsplit("}", 1)[-1] == "title":  # an SVG's
                labels.append(candidate.text_content())
    labels = [" ".join(label.split()) for label in labels if label and re.search(r"\d", label)]
    if worded := next((label for label in labels if re.search(r"[^\W\d_]", label)), None):
        return worded
    score = next(iter([*labels, text] if re.search(r"\d", text) else labels), None) or _schema_score(element)
    if (
        score
        and re.fullmatch(r"\d", score)
        and _class_words(element) & {"dice", "die", "terning", "terningkast"}
    ):
        return f"Terningkast {score}"
    if score:
        return score
    filled = sum(text.count(c) for c in _STARS_FILLED)
    total = filled + text.count(_STARS_EMPTY)
    return f"{filled}/{total}" if filled and total > filled else None


def _schema_score(element) -> str | None:
    """schema.org's rating as `<meta itemprop="ratingValue" content="5">` (and `bestRating`): "5/6"."""
    found = {}
    for candidate in [element, *element.iterdescendants()]:
        if isinstance(candidate.tag, str) and candidate.get("itemprop") in ("ratingValue", "bestRating"):
            value = candidate.get("content") or _text(candidate, spaced=False)
            if re.fullmatch(r"\d+(?:[.,]\d+)?", value or ""):
                found.setdefault(candidate.get("itemprop"), value)
    if "ratingValue" not in found:
        return None
    return "/".join(found[k] for k in ("ratingValue", "bestRating") if k in found)


def _is_rating(element) -> bool:
    """An element classed as a rating (or schema.org's), small enough to be one: not a page classed `has-rating`."""
    if not isinstance(element.tag, str) or element.tag not in _RATING_TAGS or element.getparent() is None:
        return False
    marked = (element.get("itemprop") or "").lower() in _RATING_ITEMPROP or _RATING_WORDS & _class_words(
        element
    )
    return bool(marked) and len(_text(element, spaced=False)) <= MAX_RATING_CHARS


def keep_ratings(tree) -> list[str]:
    """Rewrites each rating of the article (not one in navigation, an aside, a link to another review or a comment
    section) as plain text in a plain element, which the extractor keeps (it drops an element classed `rating`,
    and reads no label), and returns the lines that hold them."""
    outermost = [
        element
        for element in tree.iter()
        if _is_rating(element)
        and not _in_furniture(element)
        and not any(_is_rating(a) for a in element.iterancestors())  # read with the rating around it
    ]
    lines = []
    for element in outermost:
        text = rating_text(element)
        if not text:
            continue
        plain = element.makeelement("span" if element.tag in _INLINE else "p", {})
        plain.text, plain.tail = text, element.tail
        element.getparent().replace(element, plain)
        line = plain.getparent() if plain.tag == "span" and plain.getparent().tag in ("p", "li") else plain
        lines.append(_text(line, spaced=False))
    return lines
