"""The English -> Norwegian words learned from NorQuAD's question pairs (`evals/mine_translations.py`) and the
sentence picker's reading of an English question through them."""

from __future__ import annotations

from assistant.answering.picker import SentencePicker
from assistant.answering.translate import LEARNED, Translator, default_translator
from evals.mine_translations import learned_translations, main, model_one


def test_the_shipped_file_is_what_a_rerun_writes(tmp_path):
    out = tmp_path / "learned.tsv"
    assert main(["--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == LEARNED.read_text(encoding="utf-8")


def test_model_one_learns_which_word_translates_which_from_pairs_alone():
    pairs = [
        (["die", "king"], ["døde", "kongen"]),
        (["die", "soldier"], ["døde", "soldaten"]),
        (["king", "sign"], ["kongen", "signert"]),
        (["soldier", "sign"], ["soldaten", "signert"]),
    ]
    probability = model_one(pairs)
    for english, norwegian in (("die", "døde"), ("king", "kongen"), ("sign", "signert")):
        best = max((p, word) for (source, word), p in probability.items() if source == english)
        assert best[1] == norwegian
    written = {s: {s: 2} for s in ("die", "king", "soldier", "sign")}
    import collections

    rows = learned_translations(pairs, {s: collections.Counter(w) for s, w in written.items()})
    assert rows == []  # no English word of these is asked by MIN_QUESTIONS questions


def test_learned_words_come_first_only_where_asked_for():
    plain, learned = default_translator(), default_translator(learned=True)
    # FreeDict reads "died" as the die that stamps: "sokkel", "stempel"
    assert "døde" not in plain.translate("How many died?").split()
    assert learned.translate("How many died?").split()[-2:] == ["døde", "sokkel"]
    assert learned.translate("Who signed it?").split()[:2] == ["hvem", "signert"]
    assert learned.translate("Who was killed?").split()[:2] == ["hvem", "drept"]
    # a word the pairs do not teach is translated as before
    assert learned.translate("Who denies the arms trade?") == plain.translate("Who denies the arms trade?")
    assert len(learned) > len(Translator.load())  # stems FreeDict lacks are added too


def test_the_sentence_picker_reads_an_english_question_through_the_learned_words():
    picker = SentencePicker.load()
    assert picker is not None and "døde" in picker.translator.translate("When did he die?").split()
