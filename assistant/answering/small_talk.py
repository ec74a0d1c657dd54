"""Greetings, thanks and "what can you do?": nothing to search the archive for.

Searched like questions, they were answered with whatever passage shared a word ("Hei" quoted a sentence
about a lift, "heis"). A message that is one of these phrases and nothing else (case, punctuation, emoji and
the name "Kilde" aside) gets a reply that says what Kilde answers, in the phrase's language, and cites
nothing. Anything longer is a question, however it opens ("Hei, hvem vant valget?")."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PHRASES = {
    (
        "greeting",
        "en",
    ): "hi|hello|hey|hi there|hello there|hey there|good morning|good afternoon|good evening",
    ("greeting", "nb"): "hei|hallo|heisann|hei hei|hei der|god morgen|god dag|god ettermiddag|god kveld|morn",
    ("greeting", "nn"): "god morgon|god ettermiddag|heia",
    ("thanks", "en"): "thanks|thank you|thanks a lot|thank you very much|many thanks|cheers|bye|goodbye",
    ("thanks", "nb"): "takk|tusen takk|mange takk|takk skal du ha|takk for hjelpen|ha det|ha det bra",
    ("thanks", "nn"): "takk for hjelpa|ha det godt",
    ("help", "en"): "help|what can you do|who are you|what are you|how does this work|how do i use this",
    ("help", "nb"): "hjelp|hva kan du|hva kan du gjøre|hvem er du|hva er du|hvordan virker dette",
    ("help", "nn"): "kva kan du|kva kan du gjere|kven er du|kva er du|korleis verkar dette",
}
PHRASES: dict[str, tuple[str, str]] = {
    phrase: key for key, phrases in _PHRASES.items() for phrase in phrases.split("|")
}

_ABOUT = {
    "en": "I answer questions about the news archive, and every answer quotes the passages it comes from. "
    "Ask about something in the news: who said or did what, when, where or how much.",
    "nb": "Jeg svarer på spørsmål om nyhetsarkivet, og hvert svar siterer avsnittene det bygger på. "
    "Spør om noe i nyhetene: hvem som sa eller gjorde hva, når, hvor eller hvor mye.",
    "nn": "Eg svarar på spørsmål om nyheitsarkivet, og kvart svar siterer avsnitta det byggjer på. "
    "Spør om noko i nyheitene: kven som sa eller gjorde kva, når, kvar eller kor mykje.",
}
REPLIES = {
    ("greeting", "en"): "Hello! " + _ABOUT["en"],
    ("greeting", "nb"): "Hei! " + _ABOUT["nb"],
    ("greeting", "nn"): "Hei! " + _ABOUT["nn"],
    ("thanks", "en"): "You're welcome. Ask me anything else about the news archive.",
    ("thanks", "nb"): "Bare hyggelig. Spør gjerne om mer i nyhetsarkivet.",
    ("thanks", "nn"): "Berre hyggeleg. Spør gjerne om meir i nyheitsarkivet.",
    ("help", "en"): _ABOUT["en"],
    ("help", "nb"): _ABOUT["nb"],
    ("help", "nn"): _ABOUT["nn"],
}
_NOT_WORDS = re.compile(r"[^\w]+")
BACKEND = "kilde"  # `Answer.backend` of a small-talk reply: Kilde itself, not an answerer


@dataclass(frozen=True)
class SmallTalk:
    kind: str  # greeting, thanks or help
    language: str
    reply: str


def small_talk(message: str) -> SmallTalk | None:
    """The reply to a message that is only a greeting, a thank-you or a question about Kilde; None for
    anything else."""
    words = [w for w in _NOT_WORDS.sub(" ", message.lower().replace("_", " ")).split() if w != "kilde"]
    key = PHRASES.get(" ".join(words))
    return SmallTalk(key[0], key[1], REPLIES[key]) if key else None
