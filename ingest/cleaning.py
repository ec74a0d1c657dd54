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

    @classmethod
    def load(cls, path: Path = RULES_FILE) -> CleaningRules:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}

        def compile_all(key):
            return tuple(re.compile(p, re.IGNORECASE) for p in data.get(key, []))

        return cls(drop_lines=compile_all("drop_lines"), footer_starts=compile_all("footer_starts"))


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
    for raw in lines:
        line = normalise_line(raw)
        if not line:
            continue
        if any(p.search(line) for p in rules.footer_starts):
            while kept and _is_brand_line(kept[-1]):
                publisher = kept.pop()
            break
        if any(p.search(line) for p in rules.drop_lines):
            continue
        kept.append(line)
    return Cleaned(kept, publisher)


def _is_brand_line(line: str) -> bool:
    return bool(_BRAND_LINE.match(line)) and len(line.split()) <= 4


def clean_text(text: str, rules: CleaningRules | None = None) -> str:
    """Paragraphs separated by one blank line; the offsets of every chunk refer to this text."""
    return "\n\n".join(clean_lines(text.splitlines(), rules).lines)
