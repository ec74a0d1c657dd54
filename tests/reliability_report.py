"""Figures from the property-based reliability tests (examples, steps, outcomes), printed and, when
KILDE_RELIABILITY_REPORT names a folder, written there as `<name>.json` for `make soak` to keep."""

from __future__ import annotations

import json
import os
from pathlib import Path


def env_count(name: str, default: int) -> int:
    """How many examples (or steps) a property test runs: small in CI, large in a soak run."""
    return int(os.environ.get(name, default))


def record(name: str, figures: dict) -> None:
    print(f"\n[reliability] {name}: {json.dumps(figures, sort_keys=True)}")
    folder = os.environ.get("KILDE_RELIABILITY_REPORT")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{name}.json").write_text(
            json.dumps(figures, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
