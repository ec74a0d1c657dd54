"""Articles whose text holds, before the sentence a question quotes, what can shift a citation's offsets:
characters outside the BMP, decomposed (NFD) letters, CRLF, tabs, no-break and zero-width characters, soft
hyphens, a BOM, and a sentence longer than a chunk. Shared by the tests of every face that returns citations."""

from __future__ import annotations

import unicodedata
from pathlib import Path

# name: (text before the quoted sentence, the sentence, a question it answers)
CASES: dict[str, tuple[str, str, str]] = {
    "emoji": (
        "Fans cheered 🎉🎉 and 𝕏 posts 👨\u200d👩\u200d👧 flew 👍🏽 all night.\n\n",
        "The Kvitholm council restored seven lighthouses 🏠 in 2024.",
        "How many lighthouses did the Kvitholm council restore?",
    ),
    "nfd": (
        unicodedata.normalize("NFD", "Åse Bjørnådal og Ørjan Ærø møttes på kaien.\n\n"),
        unicodedata.normalize("NFD", "The Trælvik mayor Åse Dølgård opened eleven new bridges in 2023."),
        "How many new bridges did the Trælvik mayor open?",
    ),
    "crlf": (
        "First line of the report.\r\nSecond line, with more detail.\r\n\r\n",
        "The Sandnesjø ferry carried nine thousand cyclists last summer.",
        "How many cyclists did the Sandnesjø ferry carry?",
    ),
    "tabs": (
        "Col1\tCol2\t\tCol3 are the columns.\n\n",
        "The Ulvøy\tschool hired\tfourteen new teachers in August.",
        "How many new teachers did the Ulvøy school hire?",
    ),
    "spaces": (
        "Prices rose 12\u00a0% and 3\u202fkm of road\u00a0was built by 3\u2009000 people.\n\n",
        "The Moldhavn\u00a0bakery sold\u00a0twenty\u2007thousand buns at the festival.",
        "How many buns did the Moldhavn bakery sell?",
    ),
    "zero-width": (
        "Zero\u200bwidth and join\u200der and non\u200cjoiner and word\u2060joiner.\n\n",
        "The Grønnes\u200blett orchestra played twelve\u200d concerts in the spring.",
        "How many concerts did the Grønneslett orchestra play?",
    ),
    "soft-hyphen": (
        "Sam\u00adfunns\u00adøkonomi is discussed here at length.\n\n",
        "The Kaldfjord hos\u00adpital treated eight hundred pa\u00adtients in March.",
        "How many patients did the Kaldfjord hospital treat in March?",
    ),
    "bom": (
        "A short intro \ufeffwith a stray BOM.\n\n",
        "The Rypefjell cabin association built five new cabins this year.",
        "How many new cabins did the Rypefjell cabin association build?",
    ),
    # The last sentence of the first chunk, so the first of the second too (the overlap, `chunk_overlap`).
    "chunk-overlap": (
        " ".join(
            f"The harbour office logged ship number {i} in calm weather from the north." for i in range(10)
        )
        + " ",
        "The Storvatn dam was rebuilt by four hundred workers.",
        "How many workers rebuilt the Storvatn dam?",
    ),
    # Longer than a chunk (180 tokens): cut into pieces, the quote is the piece that ends it.
    "chunk-boundary": (
        "Intro 🎈. ",
        "The Hammerøy festival, which "
        + " and ".join(f"drew crowd number {i} to the square" for i in range(40))
        + ", finally sold 🎟️ seventeen thousand tickets in total.",
        "How many tickets did the Hammerøy festival sell?",
    ),
}

AFTER = {
    "chunk-overlap": " ".join(
        f"The ferry office counted car number {i} on the deck at dawn." for i in range(10)
    ),
}


def write_articles(folder: Path) -> Path:
    """One .txt file per case (the BOM case starts with a UTF-8 BOM); the article ids are the case names."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (before, sentence, _) in CASES.items():
        after = AFTER.get(name, "More follows next week.")
        body = f"Report {name} from the coast\n\n2024-05-01\n\n{before}{sentence} {after}\n"
        raw = ("\ufeff" if name == "bom" else "") + body
        (folder / f"{name}.txt").write_bytes(raw.encode("utf-8"))
    return folder


def build_offsets_index(root: Path, cache: Path, embedder, **overrides):
    """Settings of a fresh index of the cases' articles alone, ingested by the real pipeline."""
    from assistant.build import build_pipeline
    from assistant.testing.corpus import make_settings

    settings = make_settings(root / "index", cache, **overrides)
    report = build_pipeline(settings, embedder=embedder).ingest([write_articles(root / "corpus")])
    assert not report.rejected and report.added == len(CASES), report.to_dict()
    return settings


def check_citation(citation: dict, text: str) -> None:
    """The citation points at its quote in `text`, the article as the face serves it, and the reader's answer
    span (when there is one) lies inside the quote."""
    assert text[citation["start"] : citation["end"]] == citation["quote"], citation
    if citation.get("answer_start") is not None:
        assert citation["start"] <= citation["answer_start"] < citation["answer_end"] <= citation["end"]
