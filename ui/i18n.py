"""Interface text in Norwegian (Bokmål) and English. Answers keep the language of the question."""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("nb", "en")
DEFAULT_LANGUAGE = "nb"

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Kilde: ask the news archive",
        "intro": "Answers quote the archive. Click a [n] marker or a source to read the article at the quote.",
        "question": "Your question",
        "placeholder": "For example: What does Article 4 commit each side to?",
        "placeholder_short": "Ask the news archive…",
        "ask": "Ask",
        "new_chat": "New conversation",
        "filters": "Filters",
        "since": "From date (YYYY-MM-DD)",
        "until": "To date (YYYY-MM-DD)",
        "sources": "Sources",
        "languages": "Article language",
        "interface_language": "Interface language",
        "sources_panel": "Sources",
        "article_panel": "Article",
        "sources_heading": "Cited passages",
        "article_heading": "Full article",
        "no_sources": "The sources of the latest answer appear here.",
        "no_article": "Click a [n] marker or a source to open the article here.",
        "not_found_title": "Not in the archive",
        "not_found_hint": "Nothing in the archive answers this. Try other words, or widen the filters.",
        "thinking": "Searching the archive…",
        "unsupported": "Underlined sentences are not supported by the passage they cite: check the source.",
        "you": "You",
        "kilde": "Kilde",
        "feedback": "Was this answer useful?",
        "comment": "Comment (optional)",
        "thumbs_up": "Useful",
        "thumbs_down": "Not useful",
        "feedback_saved": "Thank you, your feedback was saved.",
        "feedback_already": "You have already rated this answer; one vote per answer counts.",
        "feedback_not_saved": "Your feedback could not be saved; answering is not affected. Please try again later.",
        "feedback_nothing": "Ask a question first; feedback is about the latest answer.",
        "bad_date": "{field}: {value!r} is not a date; use YYYY-MM-DD.",
        "bad_range": "{field}: {until} is before the from date, {since}; no date is in both.",
        "rate_limited": "Too many questions: the limit is {limit} per minute. Try again in {seconds} s.",
        "citation_missing": "That source is no longer in the archive.",
        "date": "Date",
        "source": "Source",
        "open_article": "Open the article",
        "quote_at": "characters {start}–{end}",
        "searched_as": "Follow-up, searched as:",
        "earlier_dropped": "Earlier questions in this conversation are no longer shown ({count}).",
        "quoted_original": "The passages are quoted in their original language ({languages}).",
        "language_nb": "Norwegian",
        "language_nn": "Norwegian Nynorsk",
        "language_en": "English",
    },
    "nb": {
        "title": "Kilde: spør nyhetsarkivet",
        "intro": "Svarene siterer arkivet. Klikk på en [n]-markør eller en kilde for å lese artikkelen ved sitatet.",
        "question": "Spørsmålet ditt",
        "placeholder": "For eksempel: Hva forplikter artikkel 4 hver av partene til?",
        "placeholder_short": "Spør nyhetsarkivet …",
        "ask": "Spør",
        "new_chat": "Ny samtale",
        "filters": "Filtre",
        "since": "Fra dato (ÅÅÅÅ-MM-DD)",
        "until": "Til dato (ÅÅÅÅ-MM-DD)",
        "sources": "Kilder",
        "languages": "Artikkelspråk",
        "interface_language": "Språk i grensesnittet",
        "sources_panel": "Kilder",
        "article_panel": "Artikkel",
        "sources_heading": "Siterte avsnitt",
        "article_heading": "Hele artikkelen",
        "no_sources": "Kildene til det siste svaret vises her.",
        "no_article": "Klikk på en [n]-markør eller en kilde for å åpne artikkelen her.",
        "not_found_title": "Ikke i arkivet",
        "not_found_hint": "Ingenting i arkivet svarer på dette. Prøv andre ord, eller utvid filtrene.",
        "thinking": "Søker i arkivet …",
        "unsupported": "Understrekede setninger støttes ikke av kilden de viser til: sjekk kilden.",
        "you": "Du",
        "kilde": "Kilde",
        "feedback": "Var svaret nyttig?",
        "comment": "Kommentar (valgfritt)",
        "thumbs_up": "Nyttig",
        "thumbs_down": "Ikke nyttig",
        "feedback_saved": "Takk, tilbakemeldingen er lagret.",
        "feedback_already": "Du har allerede vurdert dette svaret; én stemme per svar teller.",
        "feedback_not_saved": "Tilbakemeldingen kunne ikke lagres; svarene påvirkes ikke. Prøv igjen senere.",
        "feedback_nothing": "Still et spørsmål først; tilbakemeldingen gjelder det siste svaret.",
        "bad_date": "{field}: {value!r} er ikke en dato; bruk ÅÅÅÅ-MM-DD.",
        "bad_range": "{field}: {until} er før fra-datoen, {since}; ingen dato er i begge.",
        "unknown_source": "Kildefilter: ingen artikkel har kilden {value!r}; arkivets kilder: {listed}",
        "unknown_source_none": "Kildefilter: ingen artikkel har kilden {value!r}; "
        "ingen artikkel i arkivet oppgir en kilde",
        "unknown_language": "Språkfilter: ingen artikkel er på språket {value!r}; arkivets språk: {listed}",
        "unknown_language_none": "Språkfilter: ingen artikkel er på språket {value!r}; arkivet har ingen artikler",
        "and_more": "{listed} og {count} til",
        "rate_limited": "For mange spørsmål: grensen er {limit} i minuttet. Prøv igjen om {seconds} s.",
        # A question that cannot be asked (core.errors.UnusableQuestionError), by its kind; in English, core's words.
        "question_empty": "Spørsmålet er tomt.",
        "question_only_markup": "Spørsmålet er bare HTML-koder, uten ord å søke etter.",
        "question_too_long": "Spørsmålet er {length} tegn langt; grensen er {limit}.",
        "question_no_words": "Spørsmålet har ingen ord (bokstaver eller sifre) å søke etter.",
        # What the person sent, refused before the question checks (core.errors.NotTextError, TextTooLongError).
        "not_text": "{field} inneholder en enslig surrogat (halvdelen av et UTF-16-par), som ikke er tekst; "
        "send teksten som gyldig UTF-8.",
        "field_question": "Spørsmålet",
        "field_comment": "Kommentaren",
        "field_sources": "Kildefilteret",
        "comment_too_long": "Kommentaren er {length} tegn lang; grensen er {limit}.",
        "citation_missing": "Den kilden finnes ikke lenger i arkivet.",
        "date": "Dato",
        "source": "Kilde",
        "open_article": "Åpne artikkelen",
        "quote_at": "tegn {start}–{end}",
        "searched_as": "Oppfølgingsspørsmål, søkt som:",
        "earlier_dropped": "Tidligere spørsmål i denne samtalen vises ikke lenger ({count}).",
        "quoted_original": "Kildene er sitert på originalspråket ({languages}).",
        "language_nb": "bokmål",
        "language_nn": "nynorsk",
        "language_en": "engelsk",
    },
}


def normalise_language(value: str | None) -> str:
    """'nb', 'no', 'nn', 'nb-NO' -> 'nb'; 'en-GB' -> 'en'; anything else -> the default."""
    code = (value or "").strip().lower().replace("_", "-").split("-")[0]
    if code in ("nb", "no", "nn"):
        return "nb"
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def from_accept_language(header: str | None) -> str:
    """The supported language the header weighs highest (its `q`, first listed on a tie), else the default.
    `q=0` says "not this one", and a malformed weight counts as that: such a language is never chosen."""
    best, best_q = DEFAULT_LANGUAGE, 0.0
    for part in (header or "").split(","):
        code, *params = part.split(";")
        code = code.strip().lower().split("-")[0]
        if code not in ("nb", "no", "nn", "en"):
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        if 0.0 < q <= 1.0 and q > best_q:
            best, best_q = normalise_language(code), q
    return best


def t(language: str, key: str, **values: object) -> str:
    table: Mapping[str, str] = STRINGS.get(language) or STRINGS[DEFAULT_LANGUAGE]
    text = table[key]
    return text.format(**values) if values else text


def quoted_original_notice(languages: tuple[str, ...], language: str) -> str:
    """'The passages are quoted in their original language (Norwegian).', in the interface `language`."""
    names = ", ".join(t(language, f"language_{q}") for q in languages)
    return t(language, "quoted_original", languages=names)
