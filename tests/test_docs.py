"""The docs name only what exists: every repository path, module, make target, `kilde` command and flag,
test, and `module.name` they cite is in the tree, every markdown link lands on a file and heading, and
README's settings table lists exactly the variables `Settings` reads, each beside its `kilde.toml` key.

Renames are how docs rot: a function, test or file renamed in code keeps its old name in prose. These checks
read the files as they are, so a rename that leaves a doc behind fails here with the doc and the name."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
from pathlib import Path

import pytest

from assistant.cli import build_parser
from assistant.core.config import ENVIRONMENT_VARIABLES, Settings
from assistant.core.types import Answer, Citation, Sentence
from assistant.testing.corpus import ROOT
from ui.api import AnswerOut, CitationOut

# docs/RELIABILITY.md records past rounds, whose rows may name a file since removed ("had its own copy in
# ui/mcp_http.py"); its tests, flags and links must still be live.
REFERENCE_DOCS = sorted(
    [
        ROOT / "README.md",
        *(ROOT / "docs").glob("*.md"),
        ROOT / "evals/data/README.md",
        *(ROOT / "assistant/models").glob("*.md"),
        *(ROOT / "bench").glob("RESULTS*.md"),
        ROOT / "evals/RESULTS.md",
    ]
)
CURRENT_DOCS = [doc for doc in REFERENCE_DOCS if doc.name != "RELIABILITY.md"]
# What a command writes, never in a fresh clone (all in .gitignore).
OUTPUTS = ("evals/runs", "build/", "artifacts/", "data/")
# MCP's methods on prompts, which read like a path under prompts/ (docs/integrations.md).
MCP_METHODS = ("prompts/list", "prompts/get")
FILE_SUFFIXES = {"py", "json", "jsonl", "md", "txt", "onnx", "html", "yaml", "toml", "tsv", "npz"}
SOURCES = ("assistant", "ingest", "prompts", "ui", "evals", "bench", "tests", "scripts")


def doc_id(doc: Path) -> str:
    return str(doc.relative_to(ROOT))


def code_spans(text: str) -> list[str]:
    """Inline code and the lines of fenced blocks: where docs name commands, paths and code."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S)
    outside = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.M | re.S)
    return re.findall(r"`([^`\n]+)`", outside) + [line for block in fenced for line in block.splitlines()]


def source_text() -> dict[Path, str]:
    return {
        path: path.read_text(encoding="utf-8") for root in SOURCES for path in (ROOT / root).rglob("*.py")
    }


@pytest.mark.parametrize("doc", CURRENT_DOCS, ids=doc_id)
def test_every_repository_path_a_doc_names_exists(doc):
    text = doc.read_text(encoding="utf-8")
    # A path and what follows it: `*`, `<` or `{` makes it a pattern (`bench/RESULTS-scale*.md`,
    # `prompts/answer.<lang>.md`), which some file must match; `ingest/loaders` in a diagram names a module.
    named = re.findall(
        r"(?<![\w/.~-])((?:assistant|ingest|evals|bench|ui|tests|docs|corpus|prompts|scripts)/[\w./-]*\w/?)(.?.?)",
        text,
    )

    def exists(path: str, after: str) -> bool:
        if set(after) & set("*<{"):
            return any(ROOT.glob(f"{path}*"))
        return (ROOT / path).exists() or (ROOT / f"{path}.py").exists()

    missing = sorted(
        {
            path
            for path, after in named
            if not path.startswith(OUTPUTS) and path not in MCP_METHODS and not exists(path, after)
        }
    )
    assert not missing, f"{doc_id(doc)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", REFERENCE_DOCS, ids=doc_id)
def test_every_python_module_a_doc_runs_exists(doc):
    modules = re.findall(
        r"python -m ((?:assistant|ingest|evals|bench|ui)(?:\.\w+)+)", doc.read_text(encoding="utf-8")
    )
    missing = sorted(
        {
            name
            for name in modules
            if not (ROOT / f"{name.replace('.', '/')}.py").exists()
            and not (ROOT / name.replace(".", "/") / "__main__.py").exists()
        }
    )
    assert not missing, f"{doc_id(doc)} runs modules that do not exist: {missing}"


def make_targets() -> set[str]:
    done = subprocess.run(
        ["make", "-pnq", "-f", "Makefile"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    return set(re.findall(r"^([a-z][\w.-]*):", done.stdout, re.M))


@pytest.mark.parametrize("doc", REFERENCE_DOCS, ids=doc_id)
def test_every_make_target_a_doc_names_exists(doc):
    # `make demo`, `… && make eval`; not a message's words ("cannot make the run folder")
    named = {
        found.group(1)
        for span in code_spans(doc.read_text(encoding="utf-8"))
        for part in re.split(r"[;|&]", span)
        if (found := re.match(r"\s*make ([a-z][\w-]*)", part))
    }
    missing = sorted(named - make_targets())
    assert not missing, f"{doc_id(doc)} names make targets the Makefile lacks: {missing}"


def kilde_commands() -> dict[str, set[str]]:
    """Each `kilde` command ("eval run" for a verb's action) and the options it takes."""

    def subcommands(parser: argparse.ArgumentParser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                yield from action.choices.items()

    commands = {}
    for name, parser in subcommands(build_parser()):
        commands[name] = set(parser._option_string_actions)
        for action, sub in subcommands(parser):
            commands[f"{name} {action}"] = commands[name] | set(sub._option_string_actions)
    return commands


@pytest.mark.parametrize("doc", REFERENCE_DOCS, ids=doc_id)
def test_every_kilde_command_and_flag_a_doc_names_exists(doc):
    commands = kilde_commands()
    unknown = []
    for span in code_spans(doc.read_text(encoding="utf-8")):
        # one shell command at a time: `kilde articles | head; kilde show ID`
        for part in re.split(r"[;|&#]|\$\(", span):
            found = re.search(r"(?:^|\s)kilde ([a-z]+)((?: [a-z]+)?)(.*)", part)
            if not found:
                continue
            verb, action, rest = found.group(1), found.group(2).strip(), found.group(3)
            command = f"{verb} {action}" if f"{verb} {action}" in commands else verb
            if command not in commands:
                unknown.append(f"kilde {verb}")
                continue
            unknown += [
                f"kilde {command} {flag}"
                for flag in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", rest)
                if flag not in commands[command]
            ]
    assert not unknown, f"{doc_id(doc)} names commands or options `kilde` lacks: {sorted(set(unknown))}"


@pytest.mark.parametrize("doc", REFERENCE_DOCS, ids=doc_id)
def test_every_test_a_doc_cites_exists(doc):
    defined = {name for text in source_text().values() for name in re.findall(r"def (test_\w+)", text)}
    cited = set(re.findall(r"`(test_\w+)(?:\[[^\]`]*\])?`", doc.read_text(encoding="utf-8")))
    missing = sorted(cited - defined)
    assert not missing, f"{doc_id(doc)} cites tests that do not exist: {missing}"


def defines(text: str, name: str) -> bool:
    pattern = rf"^\s*(?:async def|def|class) {name}\b|^\s*(?:self\.)?{name}\s*[:=]"
    return re.search(pattern, text, re.M) is not None


@pytest.mark.parametrize("doc", CURRENT_DOCS, ids=doc_id)
def test_every_module_or_class_member_a_doc_cites_exists(doc):
    """`condense.fits_elsewhere`, `Assistant.conversation_articles`: the module (by its file's name) or the
    class holds the name. A name of something outside Kilde (`json.dumps`) matches neither and is passed."""
    sources = {path: text for path, text in source_text().items() if not path.is_relative_to(ROOT / "tests")}
    missing = []
    for head, name in re.findall(
        r"`([A-Za-z_]\w*)\.([A-Za-z_]\w*)(?:\([^`]*\))?`", doc.read_text(encoding="utf-8")
    ):
        if name in FILE_SUFFIXES:
            continue  # a file's name (`reader.onnx`, `summary.json`), which the path check covers
        modules = [text for path, text in sources.items() if path.stem == head]
        classes = [text for text in sources.values() if re.search(rf"^class {head}\b", text, re.M)]
        holders = modules or classes
        if holders and not any(defines(text, name) for text in holders):
            missing.append(f"{head}.{name}")
    assert not missing, f"{doc_id(doc)} cites names their module or class lacks: {sorted(set(missing))}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", REFERENCE_DOCS, ids=doc_id)
def test_every_markdown_link_lands_on_a_file_and_heading(doc):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text(encoding="utf-8")):
        if re.match(r"\w+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (doc.parent / path).resolve() if path else doc
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.M)
            if anchor not in {slug(h) for h in headings}:
                broken.append(target)
    assert not broken, f"{doc_id(doc)} links to missing files or headings: {broken}"


@pytest.mark.parametrize(
    "package", ["assistant/core", "assistant/indexes", "ingest", "assistant/answering", "ui"]
)
def test_architecture_names_every_module_of_the_packages_it_lists_file_by_file(package):
    """docs/architecture.md's table says what each module of these packages holds; a module added beside them
    belongs in its row (evals/ and bench/ are described as a whole)."""
    text = (ROOT / "docs/architecture.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith(f"| `{package}/` |"))
    modules = {path.name for path in (ROOT / package).glob("*.py") if path.name != "__init__.py"}
    missing = sorted(name for name in modules if f"`{name}`" not in row)
    assert not missing, f"docs/architecture.md's row for {package}/ leaves out {missing}"


def settings_rows() -> list[tuple[list[str], list[str]]]:
    """README's settings table: each row's variables and its `kilde.toml` keys, in the same order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| environment | `kilde.toml` |") :].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines()[2:]:
        variables, keys = line.split(" | ")[:2]
        rows.append((re.findall(r"`(KILDE_\w+)`", variables), re.findall(r"`([a-z_…]+)`", keys)))
    return rows


def test_readme_settings_table_lists_every_variable_settings_reads():
    listed = {variable for variables, _ in settings_rows() for variable in variables}
    # The variables read besides the table `ENVIRONMENT_VARIABLES`: the settings file's name, and the model server's key.
    read = set(ENVIRONMENT_VARIABLES) | {"KILDE_CONFIG", "KILDE_LLM_API_KEY"}
    assert listed == read, (
        f"only in README: {sorted(listed - read)}; only in the code: {sorted(read - listed)}"
    )


def test_readme_settings_table_pairs_each_variable_with_its_kilde_toml_key():
    fields = {field.name for field in dataclasses.fields(Settings)}
    wrong = []
    for variables, keys in settings_rows():
        if len(keys) != len(variables):
            continue  # a row whose keys are named together (`llm_…`), or a variable with no key
        for variable, key in zip(variables, keys, strict=True):
            if key not in fields or ENVIRONMENT_VARIABLES.get(variable) != key:
                wrong.append(f"{variable} -> {key} (reads {ENVIRONMENT_VARIABLES.get(variable)})")
    assert not wrong, wrong


def test_the_api_schema_at_docs_names_every_key_of_the_answer_and_its_citations():
    """/docs and /openapi.json describe /api/ask's reply with `AnswerOut`, which the route does not build (it
    returns `Answer.to_dict()`): a key added to the answer is missing there unless it is added here too."""
    answer = Answer(question="q", answer="a", answerable=False, language="en", citations=(), retrieved=())
    assert set(AnswerOut.model_fields) == set(answer.to_dict())
    assert set(CitationOut.model_fields) == {field.name for field in dataclasses.fields(Citation)}


def test_readme_json_example_shows_every_key_of_the_answer():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = json.loads(re.search(r"^```json\n(.*?)^```", readme, re.M | re.S).group(1))
    sentence = Sentence(text="a", citations=(1,))
    answer = Answer(
        question="q",
        answer="a",
        answerable=True,
        language="en",
        citations=(),
        retrieved=(),
        sentences=(sentence,),
    ).to_dict()
    assert set(example) == set(answer)
    assert set(example["citations"][0]) == {field.name for field in dataclasses.fields(Citation)}
    assert set(example["sentences"][0]) == set(answer["sentences"][0])


def test_evals_data_readme_describes_every_shipped_eval_set():
    readme = (ROOT / "evals/data/README.md").read_text(encoding="utf-8")
    missing = sorted(
        path.name for path in (ROOT / "evals/data").glob("*.jsonl") if f"`{path.name}`" not in readme
    )
    assert not missing, f"evals/data/README.md does not describe {missing}"


@pytest.mark.parametrize("doc", CURRENT_DOCS, ids=doc_id)
def test_every_kilde_variable_a_doc_names_is_read(doc):
    """A variable the docs name and nothing reads is ignored without a word (`KILDE_TOP_KK=3`)."""
    read = "\n".join(
        [
            *source_text().values(),
            *((ROOT / name).read_text(encoding="utf-8") for name in ("Makefile", "evals/eval.mk")),
        ]
        + [path.read_text(encoding="utf-8") for path in (ROOT / "scripts").glob("*.sh")]
    )
    named = set(re.findall(r"\b(KILDE_[A-Z0-9_]*[A-Z0-9])\b", doc.read_text(encoding="utf-8")))
    unread = sorted(name for name in named if not re.search(rf"\b{name}\b", read))
    assert not unread, f"{doc_id(doc)} names variables nothing reads: {unread}"
