"""Convert Debian's FreeDict English–Norwegian dictionary (package `dict-freedict-eng-nor`, CC-BY-SA-3.0) into
the word list Kilde's English query translation reads (`assistant/data/freedict-eng-nor.tsv`).

    apt-get install dict-freedict-eng-nor   # or: apt-get download dict-freedict-eng-nor && dpkg-deb -x *.deb root
    python scripts/freedict_convert.py [--dictd /usr/share/dictd] [--out assistant/data/freedict-eng-nor.tsv]

Single-word English headwords are kept with their single-word Norwegian translations, and headwords of two or three
words ("prime minister", "barents sea", "red card") with translations of at most three words ("statsminister",
"barentshavet", "rødt kort"): word by word, "prime minister" would be searched as "prim minister". At most
`--max-translations` each, in the dictionary's order; one line per headword, its translations separated by tabs.
The output is sorted, so a rerun writes the same file."""

from __future__ import annotations

import argparse
import gzip
import re
import sys
from pathlib import Path

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_HEAD = re.compile(r"^(?P<word>[^/<]+?)\s*(/.*?/\s*)*(<(?P<pos>[^>]*)>)?\s*$")
_NUMBERED = re.compile(r"^\d+\.\s*")
_NEXT_SENSE = re.compile(r"\s*\d+\.$")
_WORD = re.compile(r"^[a-zæøåéèüöä-]+$")
MAX_PHRASE_WORDS = 3  # longer headwords are sayings ("all roads lead to rome"), not what a question names


def _is_phrase(text: str) -> bool:
    words = text.split(" ")
    return len(words) <= MAX_PHRASE_WORDS and all(_WORD.match(w) for w in words)


def _b64(value: str) -> int:
    n = 0
    for ch in value:
        n = n * 64 + B64.index(ch)
    return n


def entries(dictd: Path):
    """(headword, [translation lines]) for every entry of the dictd database."""
    with gzip.open(dictd / "freedict-eng-nor.dict.dz") as fh:
        data = fh.read()
    for line in (dictd / "freedict-eng-nor.index").read_text(encoding="utf-8").splitlines():
        word, offset, length = line.split("\t")
        if word.startswith("00database"):
            continue
        body = data[_b64(offset) : _b64(offset) + _b64(length)].decode("utf-8").splitlines()
        if not body:
            continue
        # The first line after the headword is a translation; later ones are numbered translations
        # ("2. ende") or English glosses, which are skipped.
        translations = []
        for i, text in enumerate(body[1:]):
            # "år 2." : the trailing number opens the next sense, whose translation may be missing.
            text = _NEXT_SENSE.sub("", text.strip())
            if text and (i == 0 or _NUMBERED.match(text)):
                translations.append(_NUMBERED.sub("", text))
        yield word, translations


def convert(dictd: Path, max_translations: int = 4) -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for word, lines in entries(dictd):
        word = " ".join(word.lower().split())
        if not _is_phrase(word):
            continue
        # a single word keeps single-word translations; a phrase may translate to a phrase ("rødt kort")
        fits = _WORD.match if " " not in word else _is_phrase
        out = table.setdefault(word, [])
        for line in lines:
            for part in re.split(r"[,;]", line):
                part = " ".join(re.sub(r"\(.*?\)", "", part).lower().split())
                if part and fits(part) and part not in out:
                    out.append(part)
    return {w: t[:max_translations] for w, t in table.items() if t}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dictd", type=Path, default=Path("/usr/share/dictd"))
    parser.add_argument("--out", type=Path, default=Path("assistant/data/freedict-eng-nor.tsv"))
    parser.add_argument("--max-translations", type=int, default=4)
    args = parser.parse_args(argv)
    if not (args.dictd / "freedict-eng-nor.index").is_file():
        print(
            f"no freedict-eng-nor.index in {args.dictd}: apt-get install dict-freedict-eng-nor",
            file=sys.stderr,
        )
        return 2
    table = convert(args.dictd, args.max_translations)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        (
            "# English -> Norwegian (Bokmål) words from FreeDict eng-nor 2022.11.18 (CC-BY-SA-3.0, see "
            "freedict-eng-nor.LICENSE.md); made by scripts/freedict_convert.py; headword, then its translations, "
            "tab-separated"
        )
    ]
    lines += ["\t".join([w, *t]) for w, t in sorted(table.items())]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    phrases = sum(" " in w for w in table)
    print(f"wrote {len(table) - phrases} words and {phrases} phrases to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
