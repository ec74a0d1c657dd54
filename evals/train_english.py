"""`python -m evals.train_english`: a study of English questions' own reranker and sentence picker, beside the pair
`python -m evals.train` trains on NorQuAD's Norwegian questions. Nothing it writes ships (docs/evals.md: why).

An English question reaches the Norwegian articles through the dictionary and the multilingual embedding, so its
features (translated coverage, cross-language cosines) sit elsewhere than a Norwegian question's. This pair is
trained on the English versions of the NorQuAD train questions (`evals/data/norquad_train_en*.jsonl`, written for
the reader; none is a validation or test question), each labelled by its Norwegian twin's gold passage, on the
candidate pools the product builds for them (the English BM25 query `models.json` records for the Norwegian
reranker). Choices (the reranker's rounds; the picker's rounds, second-sentence margin and passage) are made on
the English versions of news validation (135), the only English set with NorQuAD's gold passages.

Five folds of the English training questions (by article), which no choice has seen, then decide the rest: each
fold is ordered and answered by models trained on the other folds, against the Norwegian pair (which learned
every one of these questions in Norwegian). The English reranker's weight beside the Norwegian one's score is the
one that ranks the folds best (0: none); the English picker is kept where, on that order, it finds the answer at
least as often as the Norwegian picker (and beat the rule on validation).

Writes into `--out` (default `build/english-models`): `reranker-en.txt` and `picker-en.txt` (those kept), a
`models.json` that is the Norwegian pair's with an `english` section naming them (the product reads such a
section: `Reranker.english_model`, `SentencePicker.english`), `metrics.json` and the card `english.md`. To try
them end to end, copy those files into `assistant/models/` and run `kilde eval run`; `git checkout
assistant/models` puts the shipped files back."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from assistant.answering.features import PICKER_FEATURES, RERANK_FEATURES
from assistant.answering.rerank import blended_scores
from assistant.core.digests import file_sha256
from evals.datasets import DATA, load_english_versions, load_jsonl, split_keys
from evals.train import (
    MODELS,
    PICKER_PARAMS,
    PICKER_ROUND_CHOICES,
    RERANK_PARAMS,
    RERANK_ROUND_CHOICES,
    SEED,
    QueryVectors,
    answer_metrics,
    beats_the_rule,
    choose_picker_settings,
    collect,
    comparison_lines,
    fused_orders,
    metrics_table,
    model_orders,
    pick_all,
    picker_examples,
    pool_source,
    ranking_metrics,
    rule_metrics,
    scored_order,
    train_ranker,
    training_parser,
    truncated,
    write_card,
)

ENGLISH_TRAIN_FILES = ("norquad_train_en.jsonl", "norquad_train_en_2.jsonl", "norquad_train_en_wiki.jsonl")
VALIDATION = "validation (en)"
RERANKER_FILE, PICKER_FILE = "reranker-en.txt", "picker-en.txt"
FOLDS = 5  # the check against the Norwegian pair: folds of the English training questions, by article
# The English reranker's share of an English question's score, beside the Norwegian one's: chosen on the folds.
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def english_train_items() -> list:
    return [item for name in ENGLISH_TRAIN_FILES for item in load_english_versions(DATA / name)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = training_parser(
        "python -m evals.train_english",
        __doc__,
        limit_help="first N questions of each set (smoke runs)",
        seed_help=f"LightGBM's seed (default {SEED})",
    )
    parser.add_argument(
        "--models", type=Path, default=MODELS, help="the folder of the Norwegian pair (its models.json)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("build/english-models"),
        help="where the English pair, a models.json naming it beside the Norwegian pair, its metrics and card go",
    )
    args = parser.parse_args(argv)

    record = args.models / "models.json"
    if not record.is_file():
        raise SystemExit(f"{record} is missing: run `python -m evals.train --out {args.models}` first")
    meta = json.loads(record.read_text(encoding="utf-8"))
    if args.out.resolve() == args.models.resolve():
        raise SystemExit("--out must be another folder than --models: this study writes nothing that ships")
    args.out.mkdir(parents=True, exist_ok=True)

    from assistant.answering.rerank import LightGBMModel, RerankSettings

    started = time.perf_counter()
    assistant, rows_by_id = pool_source(args.data_dir, args.seed)
    retriever = assistant.retriever
    # The pools the product builds for English questions: the Norwegian reranker's English BM25 query.
    retriever.reranker.settings = RerankSettings(**meta["reranker"].get("settings", {}))

    train = english_train_items()[: args.limit]
    valid = load_jsonl(DATA / "norquad_news_val_en.jsonl")[: args.limit]
    progress = not args.no_progress
    retriever.embedder = QueryVectors(
        retriever.embedder, [i.question for i in train + valid], args.cache, progress
    )
    print(f"pools: {len(train)} English training questions, {VALIDATION} {len(valid)}", file=sys.stderr)
    train_ex = collect(retriever, train, rows_by_id, progress)
    valid_ex = collect(retriever, valid, rows_by_id, False)

    rerank_params = {**RERANK_PARAMS, "seed": args.seed}
    full = train_ranker(train_ex, RERANK_FEATURES, rerank_params, max(RERANK_ROUND_CHOICES))
    round_scores = {
        r: _ranks(ranking_metrics(model_orders(truncated(full, r), valid_ex), valid_ex))
        for r in RERANK_ROUND_CHOICES
    }
    rounds = max(round_scores, key=lambda r: (round_scores[r], -r))  # on a tie, the fewer rounds
    reranker = truncated(full, rounds)
    held_out_articles = {a for split in split_keys().values() for a, _ in split}
    disjoint_ex = [ex for ex in train_ex if ex.item.gold_article_ids[0] not in held_out_articles]
    reranker_disjoint = train_ranker(disjoint_ex, RERANK_FEATURES, rerank_params, rounds)

    import lightgbm

    norwegian = lightgbm.Booster(model_file=str(args.models / meta["reranker"]["file"]))
    print(
        f"choosing the English model's weight across {FOLDS} folds of the training questions", file=sys.stderr
    )
    folds = [
        (held, rest, train_ranker(rest, RERANK_FEATURES, rerank_params, rounds))
        for held, rest in split_folds(train_ex)
    ]
    fold_examples = [ex for held, _, _ in folds for ex in held]
    weight_scores = {}
    for w in WEIGHTS:
        fold_orders = [o for held, _, model in folds for o in blended_orders(model, norwegian, held, w)]
        weight_scores[w] = ranking_metrics(fold_orders, fold_examples)
    # The best hit@5 + MRR@10 on the folds, where the Norwegian model has a head start (it learned every one of
    # these questions in Norwegian); on a tie the lower weight. Weight 0 is the Norwegian model alone.
    weight = max(WEIGHTS, key=lambda w: (_ranks(weight_scores[w]), -w))
    orders = blended_orders(reranker, norwegian, valid_ex, weight)
    retrieval = {
        "fused (hybrid)": ranking_metrics(fused_orders(valid_ex), valid_ex),
        "the Norwegian reranker": ranking_metrics(model_orders(norwegian, valid_ex), valid_ex),
        "English reranker": ranking_metrics(model_orders(reranker, valid_ex), valid_ex),
        "English reranker, passage-disjoint": ranking_metrics(
            model_orders(reranker_disjoint, valid_ex), valid_ex
        ),
        f"English reranker at weight {weight}, the Norwegian one at {1 - weight}": ranking_metrics(
            orders, valid_ex
        ),
    }

    print("training the English sentence picker", file=sys.stderr)
    sentences = retriever.reranker.sentences
    pick_train = picker_examples(train_ex, blended_orders(reranker, norwegian, train_ex, weight), sentences)
    pick_valid = picker_examples(valid_ex, orders, sentences)
    picker_params = {**PICKER_PARAMS, "seed": args.seed}
    full_picker = train_ranker(pick_train, PICKER_FEATURES, picker_params, max(PICKER_ROUND_CHOICES))
    rule = rule_metrics(assistant.extractive, retriever.embedder, pick_valid)
    (picker_rounds, margin, same_passage), choices = choose_picker_settings(
        full_picker, pick_valid, rule["answer_words"]
    )
    picker = truncated(full_picker, picker_rounds)
    picked = answer_metrics(pick_all(picker, pick_valid, margin, same_passage), pick_valid)
    beats = beats_the_rule(picked, rule)  # as the Norwegian picker is judged
    answers = {"rule (today's ExtractiveAnswerer)": rule, "English picker": picked}

    norwegian_picker = lightgbm.Booster(model_file=str(args.models / meta["picker"]["file"]))
    print(f"checking both pairs across {FOLDS} folds of the English training questions", file=sys.stderr)
    crossed = cross_check(
        folds,
        weight,
        (picker_params, picker_rounds, margin, same_passage),
        (norwegian, norwegian_picker, meta["picker"]),
        sentences,
    )
    # Each model replaces the Norwegian one for English questions only where it does better on the folds (where
    # the Norwegian pair has a head start: it learned every one of these questions in Norwegian). The reranker:
    # higher hit@5 + MRR@10. The picker, on the English reranker's order: it finds the answer at least as often
    # and scores higher on answer found + citation precision (a more precise quote of the wrong sentence is no
    # better answer), and it beat the rule on validation.
    keep_reranker = weight > 0
    mine, theirs = crossed["English pair"], crossed["English reranker, Norwegian picker"]
    keep_picker = (
        keep_reranker
        and beats
        and mine["answer_found"] >= theirs["answer_found"]
        and _answers(mine) > _answers(theirs)
    )

    # The files replaced: English questions' models before this run (the Norwegian ones where there were none),
    # each as the product uses it, on the validation pools.
    english_before = meta.get("english", {})
    old_reranker_meta = english_before.get("reranker", meta["reranker"])
    old_picker_meta = english_before.get("picker", meta["picker"])
    old_reranker = lightgbm.Booster(model_file=str(args.models / old_reranker_meta["file"]))
    old_picker = lightgbm.Booster(model_file=str(args.models / old_picker_meta["file"]))
    old_orders = model_orders(old_reranker, valid_ex)
    old_pick = picker_examples(valid_ex, old_orders, sentences)
    answered = old_picker_meta["second_margin"], old_picker_meta["second_same_passage"]
    old_answers = (
        answer_metrics(pick_all(old_picker, old_pick, *answered), old_pick)
        if "en" in old_picker_meta.get("languages", ())
        else rule_metrics(assistant.extractive, retriever.embedder, old_pick)
    )
    norwegian_settings = meta["picker"]["second_margin"], meta["picker"]["second_same_passage"]
    if keep_picker:
        new_answers = picked
    elif "en" in meta["picker"].get("languages", ()):
        new_answers = answer_metrics(pick_all(norwegian_picker, pick_valid, *norwegian_settings), pick_valid)
    else:
        new_answers = rule
    comparison = {
        VALIDATION: {
            "replaced": ranking_metrics(old_orders, valid_ex) | old_answers,
            "rebuilt": ranking_metrics(orders, valid_ex) | new_answers,
        }
    }
    print(
        "\n".join([f"{VALIDATION}, the files replaced and the rebuilt ones:", *comparison_lines(comparison)]),
        file=sys.stderr,
    )

    for name in (RERANKER_FILE, PICKER_FILE):
        (args.out / name).unlink(missing_ok=True)
    english: dict = {"trained_on": list(ENGLISH_TRAIN_FILES)}
    if keep_reranker:
        reranker.save_model(str(args.out / RERANKER_FILE), num_iteration=rounds)
        LightGBMModel(args.out / RERANKER_FILE, RERANK_FEATURES)  # loading checks the features
        english["reranker"] = {
            "file": RERANKER_FILE,
            "weight": weight,
            "rounds": rounds,
            "params": rerank_params,
            "sha256": file_sha256(args.out / RERANKER_FILE),
        }
    if keep_picker:
        picker.save_model(str(args.out / PICKER_FILE), num_iteration=picker_rounds)
        LightGBMModel(args.out / PICKER_FILE, PICKER_FEATURES)
        english["picker"] = {
            "file": PICKER_FILE,
            "rounds": picker_rounds,
            "params": picker_params,
            "second_margin": margin,
            "second_same_passage": same_passage,
            "languages": ["en"],
            "sha256": file_sha256(args.out / PICKER_FILE),
        }
    meta.pop("english", None)
    if keep_reranker:
        meta["english"] = english
    (args.out / "models.json").write_text(
        json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    report = {
        "train_questions": len(train_ex),
        "disjoint_questions": len(disjoint_ex),
        "retrieval": {VALIDATION: retrieval},
        "answers": {VALIDATION: answers},
        "reranker_rounds": rounds,
        "reranker_weight": weight,
        "weights_on_folds": {str(w): m for w, m in weight_scores.items()},
        "reranker_rounds_on_validation": {str(r): s for r, s in round_scores.items()},
        "picker": {
            "rounds": picker_rounds,
            "second_margin": margin,
            "second_same_passage": same_passage,
            "beats_the_rule_on_validation": beats,
        },
        "picker_choices_on_validation": choices,
        "folds": crossed,
        "kept": {"reranker": keep_reranker, "picker": keep_picker},
        "replaced_files_on_validation": comparison,
    }
    (args.out / "metrics.json").write_text(
        json.dumps({"english": report}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    card(args.out, meta, report)
    kept = [name for name, kept in ((RERANKER_FILE, keep_reranker), (PICKER_FILE, keep_picker)) if kept]
    print(
        f"wrote {', '.join(f'{args.out}/{k}' for k in kept) or 'no English model (the Norwegian pair ranks better)'}"
        f", models.json, metrics.json and english.md in {time.perf_counter() - started:.0f} s"
    )
    return 0


def fold_of(example) -> int:
    """A training question's fold, by its article: questions about one passage stay in one fold."""
    digest = hashlib.sha256(example.item.gold_article_ids[0].encode()).hexdigest()
    return int(digest, 16) % FOLDS


def split_folds(examples) -> list[tuple[list, list]]:
    """(a fold's questions, the other folds' questions) for each fold that has both."""
    out = []
    for fold in range(FOLDS):
        held = [ex for ex in examples if fold_of(ex) == fold]
        rest = [ex for ex in examples if fold_of(ex) != fold]
        if held and rest:
            out.append((held, rest))
    return out


def blended_orders(english, norwegian, examples, weight: float) -> list[np.ndarray]:
    """Each question's candidates by `weight` × the English model's score + (1 − `weight`) × the Norwegian one's,
    as `Reranker.order` ranks an English question; equal scores by chunk id."""

    def scores_of(booster):
        return lambda rows: booster.predict(rows, num_threads=1)

    return [
        scored_order(blended_scores(scores_of(english), scores_of(norwegian), ex.rows, weight), ex)
        for ex in examples
    ]


def cross_check(folds, weight, picking, norwegian, sentences) -> dict[str, dict]:
    """Both pairs on the English training questions, each fold's questions ordered by its fold's reranker (trained
    on the other folds) at `weight` beside the Norwegian one, and answered by a picker trained on the other folds
    with the choices made on validation; every fold's questions scored together. `picking`: (params, rounds,
    margin, same passage); `norwegian`: (reranker, picker, the picker's settings in models.json)."""
    picker_params, picker_rounds, margin, same_passage = picking
    norwegian_reranker, norwegian_picker, norwegian_meta = norwegian
    settings = norwegian_meta["second_margin"], norwegian_meta["second_same_passage"]

    examples, english_orders, held_picks, english_chosen, norwegian_chosen = [], [], [], [], []
    for held, rest, reranker in folds:
        rest_orders = blended_orders(reranker, norwegian_reranker, rest, weight)
        rest_pick = picker_examples(rest, rest_orders, sentences)
        picker = train_ranker(rest_pick, PICKER_FEATURES, picker_params, picker_rounds)
        orders = blended_orders(reranker, norwegian_reranker, held, weight)
        held_pick = picker_examples(held, orders, sentences)
        examples += held
        english_orders += orders
        held_picks += held_pick
        english_chosen += pick_all(picker, held_pick, margin, same_passage)
        norwegian_chosen += pick_all(norwegian_picker, held_pick, *settings)
    norwegian_orders = model_orders(norwegian_reranker, examples)
    norwegian_pick = picker_examples(examples, norwegian_orders, sentences)
    return {
        "Norwegian pair": ranking_metrics(norwegian_orders, examples)
        | answer_metrics(pick_all(norwegian_picker, norwegian_pick, *settings), norwegian_pick),
        "English reranker, Norwegian picker": ranking_metrics(english_orders, examples)
        | answer_metrics(norwegian_chosen, held_picks),
        "English pair": ranking_metrics(english_orders, examples)
        | answer_metrics(english_chosen, held_picks),
    }


def _ranks(m: dict) -> float:
    return round(m["hit@5"] + m["mrr@10"], 6)


def _answers(m: dict) -> float:
    return round(m["answer_found"] + m["citation_precision"], 6)


def card(out: Path, meta: dict, report: dict) -> None:
    english = meta.get("english", {})
    picker = report["picker"]
    kept = report["kept"]
    kept_files = {
        "reranker": (
            f"`{RERANKER_FILE}`, its score weighted {english['reranker']['weight']} beside the Norwegian "
            f"reranker's {1 - english['reranker']['weight']} (SHA-256 `{english['reranker']['sha256']}`)"
        )
        if kept["reranker"]
        else None,
        "picker": f"`{PICKER_FILE}` (SHA-256 `{english['picker']['sha256']}`)" if kept["picker"] else None,
    }
    folds = {"English training questions, by folds": report["folds"]}
    body = [
        (
            "English questions' own reranker and sentence picker, a study by `python -m evals.train_english`; "
            "none ships (docs/evals.md). The features, their version and the LightGBM parameters are the Norwegian "
            "pair's (`reranker.md`, `picker.md`). With this folder's `models.json` in `assistant/models/`, a "
            "question `detect_language` reads as English is ordered and answered by the models it keeps."
        ),
        "",
        f"- Reranker: {kept_files['reranker'] or 'none kept; English questions are ordered by the Norwegian one'}.",
        f"- Picker: {kept_files['picker'] or 'none kept; English questions are answered as by the Norwegian pair'}.",
        "",
        "## Data and split",
        "",
        (
            f"- Training: {report['train_questions']} English versions of NorQuAD train questions "
            f"({', '.join(f'`evals/data/{n}`' for n in ENGLISH_TRAIN_FILES)}), each with its Norwegian twin's gold "
            "passage, on the candidate pools the product builds for them (the English BM25 query recorded for "
            f"the Norwegian reranker: `{meta['reranker'].get('translation_choice', 'its settings')}`)."
        ),
        (
            f"- Passage-disjoint model: the {report['disjoint_questions']} of those whose passage has no validation "
            "or test question; same rounds, scored beside the full one."
        ),
        (
            "- Choices (the reranker's rounds; the picker's rounds, second-sentence margin and passage): the English "
            "versions of NorQuAD news validation (`evals/data/norquad_news_val_en.jsonl`, 135), the only English "
            "set with NorQuAD's gold passages. There is no English test split, so the validation figures below are "
            "those the choices were made on; `make eval` scores the product end to end."
        ),
        (
            f"- Whether each is kept: {FOLDS} folds of the English training questions (by article), each fold ordered "
            "and answered by models trained on the other folds with the choices above, against the Norwegian pair, "
            "which learned every one of these questions in Norwegian. The English reranker's weight beside the "
            f"Norwegian one (of {list(WEIGHTS)}) is the one that ranks the folds best (hit@5 + MRR@10; at 0 none "
            "is kept); the picker is kept if, on that order, it finds the answer at least as often as the Norwegian "
            "picker, scores higher on answer found + citation precision, and beat the rule on validation."
        ),
        "",
        "## Choices",
        "",
        (
            f"- Reranker: {report['reranker_rounds']} rounds (hit@5 + MRR@10 on validation by rounds: "
            f"{report['reranker_rounds_on_validation']})."
        ),
        (
            f"- Picker: {picker['rounds']} rounds, second-sentence margin {picker['second_margin']}, second sentence "
            f"{'from the same passage only' if picker['second_same_passage'] else 'from any passage'}; "
            f"{'beats' if picker['beats_the_rule_on_validation'] else 'does not beat'} the rule on validation."
        ),
        "",
        "## Folds: the English reranker's weight",
        "",
        *metrics_table(
            {
                "English training questions, by folds": {
                    f"weight {w}": m for w, m in report["weights_on_folds"].items()
                }
            },
            ("hit@1", "hit@5", "hit@10", "mrr@10"),
        ),
        "",
        "## Folds: the English pair against the Norwegian one",
        "",
        *metrics_table(
            folds, ("hit@1", "hit@5", "mrr@10", "answer_found", "citation_precision", "answer_words")
        ),
        "",
        "## Validation (English versions)",
        "",
        *metrics_table(report["retrieval"], ("hit@1", "hit@5", "hit@10", "mrr@10", "pool_recall")),
        "",
        *metrics_table(report["answers"], ("answer_found", "citation_precision", "answer_words")),
        "",
        "## Against the shipped files (validation, as the product uses them)",
        "",
        *comparison_lines(report["replaced_files_on_validation"]),
        "",
    ]
    write_card(out / "english.md", "Model card: English questions' reranker and picker", body)


if __name__ == "__main__":
    sys.exit(main())
