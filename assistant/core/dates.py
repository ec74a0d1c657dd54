"""Dates as articles and filters write them, parsed to ISO."""

from __future__ import annotations

import re
from datetime import date as Date

_MONTHS = {
    "januar": 1,
    "january": 1,
    "jan": 1,
    "februar": 2,
    "february": 2,
    "feb": 2,
    "mars": 3,
    "march": 3,
    "mar": 3,
    "april": 4,
    "apr": 4,
    "mai": 5,
    "may": 5,
    "juni": 6,
    "june": 6,
    "jun": 6,
    "juli": 7,
    "july": 7,
    "jul": 7,
    "august": 8,
    "aug": 8,
    "september": 9,
    "sep": 9,
    "sept": 9,
    "oktober": 10,
    "october": 10,
    "okt": 10,
    "oct": 10,
    "november": 11,
    "nov": 11,
    "desember": 12,
    "december": 12,
    "des": 12,
    "dec": 12,
}
# the time and its offset as ISO 8601 writes them, or as Jekyll's front matter does ("2024-11-27 10:15:00 +0100")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ][\d:.]+ ?(?:Z|[+-]\d{2}:?\d{2})?)?$", re.IGNORECASE)
_DMY_WORDS = re.compile(r"^(\d{1,2})\.?\s+([a-zæøå]+)\.?,?\s+(\d{4})$", re.IGNORECASE)
_MDY_WORDS = re.compile(r"^([a-z]+)\.?\s+(\d{1,2}),?\s+(\d{4})$", re.IGNORECASE)
_DMY_DOTS = re.compile(r"^(\d{1,2})[./](\d{1,2})[./](\d{4})$")


def parse_date(value: str | None) -> str | None:
    """An ISO date from '27. november, 2024', 'November 27, 2024', '27.11.2024' or ISO; else None."""
    if not value:
        return None
    text = value.strip().lower()
    for pattern, order in ((_ISO, "ymd"), (_DMY_WORDS, "dmy"), (_MDY_WORDS, "mdy"), (_DMY_DOTS, "dmy")):
        m = pattern.match(text)
        if not m:
            continue
        parts = dict(zip(order, m.groups()[:3], strict=False))
        month = parts["m"]
        month_num = int(month) if month.isdigit() else _MONTHS.get(month)
        try:
            return Date(int(parts["y"]), int(month_num or 0), int(parts["d"])).isoformat()
        except (TypeError, ValueError):
            return None
    return None
