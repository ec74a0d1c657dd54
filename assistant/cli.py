"""`kilde`: a CLI of verbs. Errors become one line naming the next step, never a traceback."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from assistant.core.config import add_reader_option, count_argument, path_argument, settings_from
from assistant.core.errors import BadInputError, KildeError, shortened
from assistant.core.surrogates import LONE_SURROGATE
from assistant.core.types import Filters
from evals.cli import register as register_eval
from ui.cli import register as register_serve

EXAMPLES = {
    "ingest": """examples:
  kilde ingest corpus/                      # everything under corpus/, recursively
  kilde ingest news.jsonl extra/ --prune    # and drop articles these files no longer hold
  kilde ingest corpus/ --json               # machine-readable summary""",
    "ask": """examples:
  kilde ask "What does Article 4 commit each side to?"
  kilde ask "Hva forplikter artikkel 4 partene til?" --json
  kilde ask "Hvem vant?" --since 2024-01-01 --source "NorQuAD news" --top-k 8""",
    "stats": "examples:\n  kilde stats\n  kilde stats --json",
    "articles": "examples:\n  kilde articles\n  kilde articles --json --limit 20",
    "show": "examples:\n  kilde show geopolitika-2024-11-27-nord-korea-og-russland-inngar-forsvarspakt",
    "remove": "examples:\n  kilde remove news-a1-d443",
}


# What a Ctrl-C leaves, where the command wrote something before it.
INTERRUPTED = {
    "ingest": "; the articles it wrote before are kept, and the rest are not in the index yet: run the same "
    "kilde ingest again to finish (it writes only what is missing)",
}


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="index folder (env KILDE_DATA_DIR, default ./data)")
    parser.add_argument(
        "--chroma-url", help="use a Chroma server, e.g. http://127.0.0.1:8000 (env KILDE_CHROMA_URL)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kilde",
        description="Kilde: cited answers from a news archive, in Norwegian and English.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='first run:\n  kilde ingest corpus/\n  kilde ask "What does Article 4 commit each side to?"',
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EXAMPLES.get(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_store_options(p)
        return p

    p = command(
        "ingest", "Add or update articles from files and folders (.txt .md .html .json .jsonl, NorQuAD)."
    )
    p.add_argument("paths", nargs="+", type=path_argument, metavar="PATH")
    p.add_argument(
        "--prune",
        action="store_true",
        help="remove stored articles whose source file under PATHs was read and no longer holds them, "
        "or is gone; nothing is pruned if any PATH is missing, unreadable or empty",
    )
    p.add_argument(
        "--yes",
        action="store_true",
        help="with --prune: confirm removing more than 10%% of the index; without it --prune asks at a terminal, "
        "and elsewhere prunes nothing and exits 1",
    )
    p.add_argument(
        "--reset",
        action="store_true",
        help="delete the whole index first (e.g. after changing embedder); only once every PATH is found",
    )
    p.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="follow symbolic links that point outside PATHs (not followed by default)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    p.add_argument(
        "--embedding-cache",
        type=path_argument,
        metavar="FILE",
        help="take passage vectors from FILE where it has them (env KILDE_EMBEDDING_CACHE); "
        "make demo uses corpus/.embeddings/",
    )
    p.add_argument(
        "--save-embedding-cache",
        action="store_true",
        help="add the vectors this run embedded to --embedding-cache, keeping those it holds "
        "(make embedding-cache rebuilds the sample corpus's from an empty file)",
    )
    p.set_defaults(parser=p)  # for usage errors found after parsing (`check_ingest_options`)

    p = command("ask", "Answer a question with citations.")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the Answer JSON contract")
    p.add_argument("--top-k", type=int, help="passages to consider (default 5)")
    p.add_argument("--since", help="only articles dated on or after this ISO date")
    p.add_argument("--until", help="only articles dated on or before this ISO date")
    p.add_argument("--source", action="append", default=[], help="only this source (repeatable)")
    p.add_argument(
        "--language",
        action="append",
        default=[],
        choices=["nb", "nn", "en"],
        help="only articles in this language (repeatable)",
    )
    p.add_argument(
        "--retriever",
        choices=["hybrid+rerank", "hybrid", "dense", "bm25"],
        help="how passages are found (env KILDE_RETRIEVER, default hybrid+rerank)",
    )
    p.add_argument(
        "--backend",
        choices=["extractive", "openai", "openai-compatible"],
        help="answer backend (env KILDE_LLM_BACKEND)",
    )
    add_reader_option(p)

    p = command("stats", "Show what the index holds.")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p = command("articles", "List the stored articles.")
    p.add_argument("--json", action="store_true", help="print the list as JSON, with each article's chunks")
    p.add_argument(
        "--limit", type=count_argument, metavar="N", help="only the N most recent articles (default: all)"
    )
    p = command("show", "Show one article's cleaned text and metadata.")
    p.add_argument("article_id")
    p.add_argument("--json", action="store_true", help="print the article as JSON")
    p = command("remove", "Remove one article and its chunks.")
    p.add_argument("article_id")

    # Verbs that live with their own face; those modules import nothing heavy at module level.
    register_serve(sub, command)
    register_eval(sub, command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) if hasattr(args, "handler") else COMMANDS[args.command](args) or 0)
    except KildeError as exc:
        print(f"kilde: {exc}", file=sys.stderr)
        if getattr(args, "json", False):  # a script reading stdout gets the API's error shape, not nothing
            print(json.dumps({"error": exc.code, "message": str(exc)}, ensure_ascii=False, indent=2))
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"kilde: interrupted{INTERRUPTED.get(args.command, '')}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `kilde articles | head`: the reader left, which is not an error
        sys.stderr.close()
        return 0
    except Exception as exc:  # a full or read-only disk, from whichever layer noticed it
        from assistant.indexes.storage import as_storage_error

        problem = as_storage_error(exc, str(getattr(args, "data_dir", None) or settings_from(args).data_dir))
        if problem is None:
            raise
        print(f"kilde: {problem}", file=sys.stderr)
        return problem.exit_code


# -- verbs -------------------------------------------------------------------------------------------


def cmd_ingest(args) -> int:
    from ingest.discovery import discover
    from ingest.progress import progress_for

    check_ingest_options(args)
    settings = settings_from(args, embedding_cache=args.embedding_cache)
    if args.save_embedding_cache and settings.embedding_cache is None:
        raise BadInputError(
            "--save-embedding-cache", "needs --embedding-cache FILE (or KILDE_EMBEDDING_CACHE)"
        )
    # walked once: it decides whether an index is created
    found = discover(args.paths, args.follow_symlinks, index_folder=settings.data_dir)
    pipeline = _ingest_pipeline(settings, found)
    cached = getattr(pipeline.embedder, "cache", None)
    if args.save_embedding_cache:
        cached.check_writable()  # before the run, not after it
    quiet = args.json
    rejections = RejectionLines(sys.stderr)
    report = pipeline.ingest(
        found,
        prune=args.prune,
        progress=progress_for(sys.stderr, not args.no_progress and not args.json),
        on_reject=None if quiet else rejections.print,
        reset=args.reset,
        confirm_prune=lambda ids, stored: _confirm_prune(ids, stored, args.yes),
        on_warning=None if quiet else lambda w: print(f"warning: {w}", file=sys.stderr),
    )
    if not quiet:
        rejections.close()
    if report.prune_note and not quiet:
        print(f"prune: {report.prune_note}", file=sys.stderr)
    summary = report.to_dict()
    if cached is not None:
        summary["embedding_cache"] = {
            "path": str(cached.path),
            "hits": pipeline.embedder.hits,
            "embedded": pipeline.embedder.misses,
            "sentence_hits": pipeline.embedder.sentence_hits,
            "sentences_embedded": pipeline.embedder.sentence_misses,
            "ignored": cached.mismatch,
        }
        if args.save_embedding_cache:
            summary["embedding_cache"]["saved"] = cached.save()
    articles, chunks = pipeline.store.counts()
    summary["store"] = {"articles": articles, "chunks": chunks, "location": pipeline.store.location}
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        print(
            f"{report.files} files, {report.articles_seen} articles: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.removed} removed, {len(report.rejected)} rejected"
        )
        print(
            f"{report.chunks_embedded} chunks written ({report.sentences_embedded} new sentence vectors) "
            f"in {report.seconds:.1f} s "
            f"({summary['articles_per_s']} articles/s, {summary['chunks_per_s']} chunks/s); "
            f"index now holds {articles} articles, {chunks} chunks at {pipeline.store.location}"
        )
        if cached is not None:
            print(
                f"embedding cache {cached.path}: {pipeline.embedder.hits} chunks from the cache, "
                f"{pipeline.embedder.misses} embedded; {pipeline.embedder.sentence_hits} sentences from the cache, "
                f"{pipeline.embedder.sentence_misses} embedded"
                + (f"; ignored: {cached.mismatch}" if cached.mismatch else "")
                + (
                    f"; saved {summary['embedding_cache']['saved']} entries"
                    if args.save_embedding_cache
                    else ""
                )
            )
    return 1 if report.rejected or report.prune_unconfirmed else 0


class RejectionLines:
    """One "rejected …" line per rejected file or record, up to `shown`, then how many more there were: a JSON
    array of 200,000 bad records printed 200,000 lines, burying the summary. `kilde ingest --json` lists them all."""

    shown = 50

    def __init__(self, out):
        self.out, self.count = out, 0

    def print(self, rejection) -> None:
        self.count += 1
        if self.count <= self.shown:
            print(f"rejected {rejection}", file=self.out)
        elif self.count == self.shown + 1:
            print(f"rejected: more than {self.shown}; the rest are counted below", file=self.out)

    def close(self) -> None:
        if self.count > self.shown:
            print(
                f"rejected {self.count} in all, {self.count - self.shown} not shown above "
                "(kilde ingest --json lists every one)",
                file=self.out,
            )


def check_ingest_options(args) -> None:
    """Usage errors (exit 2) for options that would do nothing: `--yes` alone was accepted and ignored."""
    if args.yes and not args.prune:
        args.parser.error(
            "--yes does nothing without --prune: it confirms a prune that removes many articles "
            "(add --prune, or leave --yes out)"
        )


def _ingest_pipeline(settings, found):
    """The pipeline, but no new index when no PATH holds a file to read (`found`): a typo creates nothing."""
    from assistant.build import build_pipeline
    from assistant.core.errors import IndexMissingError

    try:
        return build_pipeline(settings, create=bool(found.files))
    except IndexMissingError:
        for reason in found.incomplete_reasons():
            print(f"rejected {reason}", file=sys.stderr)
        raise BadInputError(
            str(settings.data_dir), "no index was created, as no PATH holds a file Kilde reads"
        ) from None


def _confirm_prune(ids: list[str], stored: int, yes: bool) -> bool:
    """Asked before --prune removes more than a small share of the index."""
    if yes:
        return True
    if not sys.stdin.isatty():
        print(
            f"kilde: --prune would remove {len(ids)} of {stored} articles; run again with --yes to confirm",
            file=sys.stderr,
        )
        return False
    shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
    reply = input(f"Remove {len(ids)} of {stored} articles ({shown})? [y/N] ")
    return reply.strip().lower() in ("y", "yes", "j", "ja")


def _filters(args) -> Filters:
    return Filters.parse(args.since, args.until, args.source, args.language, field_prefix="--")


def cmd_ask(args) -> int:
    from assistant.answering.assistant import check_top_k
    from assistant.answering.context import AskRequest
    from assistant.build import build_assistant

    check_top_k(args.top_k, "--top-k")  # before the models load
    assistant = build_assistant(settings_from(args, llm_backend=args.backend))
    request = AskRequest(
        question=args.question, filters=_filters(args), top_k=args.top_k, retriever=args.retriever
    )
    if args.json:
        print(json.dumps(assistant.ask(request).to_dict(), ensure_ascii=False, indent=2))
        return 0
    from assistant.answering.answers import UNSUPPORTED_MARK
    from assistant.answering.context import Delta

    answer = None
    for event in assistant.stream(request):
        if isinstance(event, Delta):
            print(event.text, end="", flush=True)
        else:
            answer = event
    print()
    if answer.notice:
        print(f"\n({answer.notice})")
    # The text is printed as it streams, before the support check: the sentences it rejected are named after it.
    mark = UNSUPPORTED_MARK.get(answer.language, UNSUPPORTED_MARK["en"])
    for s in answer.sentences:
        if s.supported is False:
            print(f"  {mark} {s.text}" + "".join(f" [{n}]" for n in s.citations))
    if answer.quoted_original_languages:
        from ui.i18n import quoted_original_notice

        interface = "en" if answer.language == "en" else "nb"
        print(f"\n({quoted_original_notice(answer.quoted_original_languages, interface)})")
    for c in answer.citations:
        meta = ", ".join(x for x in (c.source, c.date) if x)
        print(
            f"\n[{c.n}] {c.title}"
            + (f" ({meta})" if meta else "")
            + f"\n    {c.article_id} chars {c.start}-{c.end}"
        )
    return 0


def local_stats(settings) -> dict | None:
    """The summary the last finished ingest wrote beside its lexical snapshot: no Chroma import. None for a
    Chroma server, while an ingest is writing or was killed, or for an index from before summaries."""
    from assistant.indexes.summary import read_summary

    if (
        settings.chroma_url
        or settings.ingest_dirty_path.exists()
        or not (settings.data_dir / "chroma").is_dir()
    ):
        return None
    summary = read_summary(settings.lexical_root)
    if summary is None:
        return None
    return in_stats_order(summary, str(settings.data_dir))


def store_stats(settings) -> dict:
    from assistant.build import build_embedder, build_store
    from assistant.indexes.summary import summarise

    store = build_store(settings, build_embedder(settings), create=False)
    if not store.exists():
        from assistant.core.errors import IndexMissingError

        raise IndexMissingError(store.location)
    # An ingest marker left behind: a killed ingest may have left chunks no answer counts (the next ingest sweeps them).
    unfinished = not settings.chroma_url and settings.ingest_dirty_path.exists()
    return in_stats_order(summarise(store, committed_only=unfinished), store.location)


def in_stats_order(summary: dict, location: str) -> dict:
    keys = ("articles", "chunks", "embedder", "location", "languages", "sources")
    return {key: location if key == "location" else summary[key] for key in keys}


def cmd_stats(args) -> int:
    settings = settings_from(args)
    stats = local_stats(settings) or store_stats(settings)
    if args.json:
        print(json.dumps(stats, ensure_ascii=False, indent=2))
    else:
        for key, value in stats.items():
            print(f"{key:>10}: {value}")
    return 0


def cmd_articles(args) -> int:
    from assistant.build import build_embedder, build_store

    settings = settings_from(args)
    store = build_store(settings, build_embedder(settings), create=False)
    rows = sorted(
        store.stored_articles().values(), key=lambda s: (s.meta.date or "", s.meta.id), reverse=True
    )
    if args.limit:
        rows = rows[: args.limit]
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": s.meta.id,
                        "title": s.meta.title,
                        "date": s.meta.date,
                        "source": s.meta.source,
                        "language": s.meta.language,
                        "chunks": s.chunk_count,
                    }
                    for s in rows
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        for s in rows:
            print(f"{s.meta.date or '----------'}  {s.meta.language}  {s.meta.id}  {s.meta.title}")
    return 0


def _check_article_id(article_id: str) -> None:
    if not article_id.strip():  # `kilde remove ""` said ": no such article"
        raise BadInputError("article id", "is empty; name one of those `kilde articles` lists")
    # Bytes that are not UTF-8 reach argv as lone surrogates, which neither Chroma nor a terminal accepts;
    # stored ids never hold one (ingest/discovery.py `shown`).
    if LONE_SURROGATE.search(article_id):
        raise BadInputError(
            "article id",
            "holds bytes that are not UTF-8, so no article has it; list the ids with `kilde articles`",
        )


def cmd_show(args) -> int:
    from assistant.build import build_embedder, build_store

    _check_article_id(args.article_id)
    settings = settings_from(args)
    article = build_store(settings, build_embedder(settings), create=False).get_article(args.article_id)
    if article is None:
        raise BadInputError(shortened(args.article_id), "no such article; list them with `kilde articles`")
    if args.json:
        from dataclasses import asdict

        print(json.dumps(asdict(article), ensure_ascii=False, indent=2))
    else:
        print(
            f"{article.title}\n{article.date or ''} {article.source or ''} {article.url or ''}\n\n{article.text}"
        )
    return 0


def cmd_remove(args) -> int:
    from assistant.build import build_pipeline

    _check_article_id(args.article_id)
    if not build_pipeline(settings_from(args), create=False).remove(args.article_id):
        raise BadInputError(shortened(args.article_id), "no such article; list them with `kilde articles`")
    print(f"removed {args.article_id}")
    return 0


COMMANDS = {
    "ingest": cmd_ingest,
    "ask": cmd_ask,
    "stats": cmd_stats,
    "articles": cmd_articles,
    "show": cmd_show,
    "remove": cmd_remove,
}

if __name__ == "__main__":
    sys.exit(main())
