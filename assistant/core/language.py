"""Question and article language: Bokmål, Nynorsk or English."""

from __future__ import annotations

import re

LANGUAGES = ("nb", "nn", "en")

# Words that only one of the two written Norwegian standards uses. py3langid's character n-grams cannot tell
# them apart in a short question ("Hva sa NATO-generalsekretær Jens Stoltenberg om avtalen …?" scores
# as Nynorsk), while one question word or pronoun settles it. Longer texts (articles) have n-grams enough.
SHORT_TEXT = 400
BOKMAL_WORDS = frozenset(
    [
        "hva",
        "hvem",
        "hvor",
        "hvordan",
        "hvorfor",
        "hvilken",
        "hvilke",
        "hvilket",
        "hvis",
        "jeg",
        "ikke",
        "noen",
        "noe",
        "mye",
        "fra",
        "hun",
        "mer",
        "bare",
        "nå",
        "være",
        "vært",
        "ble",
        "en",
        "et",
        "de",
        "deres",
        "hennes",
        "kommer",
        "sier",
        "gjør",
    ]
)
NYNORSK_WORDS = frozenset(
    [
        "kva",
        "kven",
        "kvar",
        "kor",
        "korleis",
        "kvifor",
        "viss",
        "eg",
        "ikkje",
        "nokon",
        "noko",
        "nokre",
        "mykje",
        "frå",
        "ho",
        "meir",
        "berre",
        "no",
        "vere",
        "vore",
        "vart",
        "ein",
        "eit",
        "dei",
        "deira",
        "hennar",
        "kjem",
        "seier",
        "gjer",
    ]
)
WORD = re.compile(r"[a-zæøåòéèô]+")
# The words an English question opens with and a Norwegian one never does. py3langid reads a short English
# question full of Norwegian names as Norwegian ("When did Solskjær's team play Chelsea?"); its first word
# settles it. Not "are": a Norwegian first name ("Are Kalvø").
ENGLISH_OPENERS = frozenset(
    [
        "what",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "which",
        "did",
        "does",
        "do",
        "is",
        "was",
        "were",
        "has",
        "have",
        "had",
        "can",
        "could",
        "will",
        "would",
        "should",
    ]
)


def language_group(code: str) -> str:
    """Bokmål and Nynorsk share most stems and all names, so they count as one language for matching."""
    return "no" if code in ("nb", "nn", "no") else code


def norwegian_standard(text: str) -> str | None:
    """'nb' or 'nn' when the text's marker words favour one standard, else None."""
    words = WORD.findall(text.lower())
    nb = sum(w in BOKMAL_WORDS for w in words)
    nn = sum(w in NYNORSK_WORDS for w in words)
    if nb == nn:
        return None
    return "nb" if nb > nn else "nn"


def detect_language(text: str) -> str:
    """nb, nn or en, by py3langid restricted to those (its 'no' is Bokmål). In a short text (a question) an
    English opening word makes it English, and between the two Norwegian standards marker words decide when
    there are any."""
    import py3langid

    global _identifier_ready
    if not _identifier_ready:
        py3langid.set_languages(["no", "nn", "en"])
        _identifier_ready = True
    code, _ = py3langid.classify(text[:3000])
    code = {"no": "nb"}.get(code, code)
    if code in ("nb", "nn") and len(text) < SHORT_TEXT:
        first = re.match(r"\W*([A-Za-z]+)\b", text)
        if first and first.group(1).lower() in ENGLISH_OPENERS:
            return "en"
        return norwegian_standard(text) or code
    return code


_identifier_ready = False
