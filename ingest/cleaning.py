"""Strips web-page leftovers, by rules kept in leftovers.yaml."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

RULES_FILE = Path(__file__).with_name("leftovers.yaml")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\u200e\u200f\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u2009\u202f]+")
_BRAND_LINE = re.compile(r"^[^.!?:;]{1,60}$")


@dataclass(frozen=True)
class CleaningRules:
    drop_lines: tuple[re.Pattern, ...]
    footer_starts: tuple[re.Pattern, ...]
    strip: tuple[re.Pattern, ...] = ()
    headlines: tuple[re.Pattern, ...] = ()
    link_labels: tuple[re.Pattern, ...] = ()

    @classmethod
    def load(cls, path: Path = RULES_FILE) -> CleaningRules:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        vocabulary: dict[str, str] = {}
        for name, part in (data.get("vocabulary") or {}).items():
            vocabulary[name] = _expand(str(part), vocabulary)

        def compile_all(key):
            return tuple(re.compile(_expand(p, vocabulary), re.IGNORECASE) for p in data.get(key) or [])

        return cls(
            drop_lines=compile_all("drop_lines"),
            footer_starts=compile_all("footer_starts"),
            strip=compile_all("strip"),
            headlines=compile_all("headlines"),
            link_labels=compile_all("link_labels"),
        )


def _expand(pattern: str, vocabulary: dict[str, str]) -> str:
    """`{name}` -> the vocabulary's part; other braces (`{0,3}`) are the pattern's own."""
    for name, part in vocabulary.items():
        pattern = pattern.replace("{" + name + "}", part)
    return pattern


@lru_cache(maxsize=1)
def default_rules() -> CleaningRules:
    return CleaningRules.load()


def normalise_line(line: str) -> str:
    line = unicodedata.normalize("NFC", line)
    return _SPACES.sub(" ", _CONTROL.sub("", line)).strip()


@dataclass(frozen=True)
class Cleaned:
    lines: list[str]
    publisher: str | None  # the brand line of a cut footer names the publisher


def clean_lines(lines: list[str], rules: CleaningRules | None = None) -> Cleaned:
    """Normalised, non-empty content lines: leftovers dropped, footer cut."""
    rules = rules or default_rules()
    kept: list[str] = []
    publisher = None
    linked = False  # the line before announced a link to another article
    for raw in lines:
        line = normalise_line(raw)
        if not line:
            continue
        if any(p.search(line) for p in rules.footer_starts):
            while kept and _is_brand_line(kept[-1]):
                publisher = kept.pop()
            if kept and publisher and _matches(kept[-1], rules.headlines):
                kept.pop()  # another article's headline, shown above the publisher's name
            break
        if linked and _matches(line, rules.headlines):
            linked = False
            continue
        linked = _matches(line, rules.link_labels)
        line = strip_pieces(line, rules)
        if line and not linked and not _matches(line, rules.drop_lines):
            kept.append(line)
    return Cleaned(kept, publisher)


def _matches(line: str, patterns: tuple[re.Pattern, ...]) -> bool:
    return any(p.search(line) for p in patterns)


def strip_pieces(line: str, rules: CleaningRules) -> str:
    """The line without the pieces `strip` names (photo credits inside a caption or before a lede)."""
    for pattern in rules.strip:
        line = pattern.sub("", line)
    return _SPACES.sub(" ", line).strip()


def _is_brand_line(line: str) -> bool:
    return bool(_BRAND_LINE.match(line)) and len(line.split()) <= 4


def clean_text(text: str, rules: CleaningRules | None = None) -> str:
    """Paragraphs separated by one blank line; the offsets of every chunk refer to this text."""
    return "\n\n".join(clean_lines(text.splitlines(), rules).lines)
