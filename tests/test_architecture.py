"""The package graph holds its shape: the import-linter contracts in pyproject.toml pass, no module of
Kilde's packages is part of an import cycle, and no module imports another module's private names.

Each check reads the source as it is now, so a change that breaks a rule fails here with the modules
and the import chain to look at. Imports inside functions and under TYPE_CHECKING count: they are
dependencies all the same."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp

from assistant.testing.corpus import ROOT

# The packages whose modules must form an acyclic graph (tests/ may import any of them).
PACKAGES = ("assistant", "ingest", "prompts", "ui", "evals", "bench")
# Private names are off limits everywhere, tests and scripts included.
SOURCE_ROOTS = (*PACKAGES, "tests", "scripts")
PRODUCT = ("assistant", "ingest", "prompts", "ui", "evals")
HARNESS = "assistant.testing"
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def test_import_linter_contracts_hold():
    done = subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--no-logo", "pyproject.toml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"lint-imports failed:\n{done.stdout}\n{done.stderr}"
    assert "0 broken" in done.stdout, done.stdout


def import_graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """The import graph's strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            module, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[module] = min(low[module], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def describe_cycles(graph: grimp.ImportGraph, components: list[list[str]]) -> list[str]:
    """For each cycle, one import edge A -> B inside it and the chain by which B leads back to A."""
    lines = []
    for component in components:
        members = set(component)
        for importer in component:
            for imported in sorted(graph.find_modules_directly_imported_by(importer) & members):
                back = graph.find_shortest_chain(imported, importer)
                lines.append(f"{importer} -> {' -> '.join(back)}  (cycle among {', '.join(component)})")
                break
            else:
                continue
            break
    return lines


def test_no_import_cycles_between_modules():
    graph = import_graph()
    assert len(graph.modules) > 50, sorted(graph.modules)  # the packages were really found
    cycles = describe_cycles(graph, strongly_connected(graph))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_product_code_never_imports_the_test_harness():
    graph = import_graph()
    users = {
        m
        for m in graph.find_downstream_modules(HARNESS, as_package=True)
        if m.split(".")[0] in PRODUCT and not (m == HARNESS or m.startswith(HARNESS + "."))
    }
    assert not users, f"product modules that depend on {HARNESS}: {sorted(users)}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules = {}
    for top in SOURCE_ROOTS:
        for path in sorted((ROOT / top).rglob("*.py")):
            modules[module_name(path)] = path
    return modules


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def absolute(importer: str, path: Path, node: ast.ImportFrom) -> str:
    """The module a `from ... import` names, with relative imports resolved against the importer."""
    if not node.level:
        return node.module or ""
    package = importer.split(".") if path.name == "__init__.py" else importer.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def private_imports(modules: dict[str, Path]) -> list[str]:
    """`from X import _name` and `import X as m ... m._name` where X is another module of the project."""
    roots = {name.split(".")[0] for name in modules}
    found = []
    for importer, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        aliases: dict[str, str] = {}  # local name -> project module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = absolute(importer, path, node)
                if source.split(".")[0] not in roots or source == importer:
                    continue
                for alias in node.names:
                    target = f"{source}.{alias.name}"
                    if is_private(alias.name):
                        found.append(
                            f"{path.relative_to(ROOT)}:{node.lineno}: from {source} import {alias.name}"
                        )
                    elif target in modules:
                        aliases[alias.asname or alias.name] = target
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] not in roots:
                        continue
                    if any(is_private(part) for part in alias.name.split(".")):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: import {alias.name}")
                    if alias.asname:
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and is_private(node.attr)
                and node.value.id in aliases
                and aliases[node.value.id] != importer
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {aliases[node.value.id]}.{node.attr}")
    return found


def test_no_module_imports_a_private_name_of_another():
    modules = project_modules()
    assert {"assistant.build", "ingest.pipeline", "ui.server", "tests.conftest"} <= set(modules)
    found = private_imports(modules)
    assert not found, "private names used from another module:\n" + "\n".join(found)
