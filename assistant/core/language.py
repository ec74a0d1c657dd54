"""Question and article language: Bokmål, Nynorsk or English."""

from __future__ import annotations

LANGUAGES = ("nb", "nn", "en")


def language_group(code: str) -> str:
    """Bokmål and Nynorsk share most stems and all names, so they count as one language for matching."""
    return "no" if code in ("nb", "nn", "no") else code


def detect_language(text: str) -> str:
    """nb, nn or en, by py3langid restricted to those (its 'no' is Bokmål)."""
    import py3langid

    global _identifier_ready
    if not _identifier_ready:
        py3langid.set_languages(["no", "nn", "en"])
        _identifier_ready = True
    code, _ = py3langid.classify(text[:3000])
    return {"no": "nb"}.get(code, code)


_identifier_ready = False
