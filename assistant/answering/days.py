"""Whether a question asks for a date ("På hvilken dato …?", "What date …?", "Which day …?"), and whether a quote
gives one.

"På hvilken dato signerte Putin og Kim Jong Un avtalen om et omfattende strategisk partnerskap?" reaches the
sentence saying that they signed it, which gives no date: the passages are about it, the date is not there. An
answer to such a question must name a day: a date ("19. juni", "June 19", "19.06.2024"), a month, a weekday or a
day told from the report's own ("i går", "yesterday"). A year alone dates nothing to the day, so it does not count;
"when" ("Når …?") asks for a time of any grain and is left alone."""

from __future__ import annotations

import re

# At the question's start, after "og"/"and" or a preposition ("På hvilken dato", "On what day").
_ASKS_FOR_DATE = re.compile(
    r"^\W*(?:(?:og|and|men|but)\s+)?(?:(?:på|i|til|fra|on|in|to|from|by)\s+)?"
    r"(hvilken (dato|dag|ukedag)|(what|which) (date|day|weekday))\b",
    re.IGNORECASE,
)
_MONTHS = (
    r"januar|februar|mars|april|mai|juni|juli|august|september|oktober|november|desember|"
    r"january|february|march|may|june|july|october|december"
)
# Written short, a month takes a point ("3. jan."): without it, "Jan" is a name.
_SHORT_MONTHS = r"jan|feb|apr|aug|sep|sept|okt|oct|nov|des|dec"
_WEEKDAYS = (
    r"mandag|tirsdag|onsdag|torsdag|fredag|lørdag|søndag|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday"
)
# A day counted from the report's own, or one the calendar names.
_RELATIVE_DAYS = (
    r"i dag|i går|i morgen|i forgårs|i overmorgen|today|yesterday|tomorrow|"
    r"julaften|nyttårsaften|nyttårsdag|julenatt"
)
# "19.06.2024", "20.6.", "6/19", "2024-06-19"
_NUMERIC_DATE = (
    r"\b\d{1,2}\.\s?\d{1,2}\.(\s?\d{2,4})?(?!\d)|\b\d{1,2}/\d{1,2}(/\d{2,4})?\b|\b\d{4}-\d{2}-\d{2}\b"
)
_STATES_DATE = re.compile(
    rf"\b({_MONTHS})\b|\b({_SHORT_MONTHS})\.|\b({_WEEKDAYS})(en|ens|s)?\b|\b({_RELATIVE_DAYS})\b|{_NUMERIC_DATE}",
    re.IGNORECASE,
)


def asks_for_date(question: str) -> bool:
    """The question's own first sentence (a follow-up's standalone form ends with the question before it) asks on
    what date or day something happened."""
    return bool(_ASKS_FOR_DATE.search(question.split("?", 1)[0]))


def states_date(text: str) -> bool:
    """`text` names a day: a date, a month, a weekday or a day counted from the report's own."""
    return bool(_STATES_DATE.search(text))
