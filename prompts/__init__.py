"""Prompt files, loaded by name and rendered strictly.

A prompt file is `prompts/<name>.<language>.md`. It holds one or more messages, each introduced by a
line `=== system ===`, `=== user ===` or `=== assistant ===`. Variables are written `{{ name }}`.
Rendering is strict: a variable the template uses but the caller did not give is an error, and so
is a variable given but not used (a typo would otherwise pass silently). Substitution is one pass,
so braces inside a value (a retrieved passage, say) are never expanded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from assistant.core.errors import ConfigError

PROMPT_DIR = Path(__file__).resolve().parent
LANGUAGES = ("en", "nb")
_VARIABLE = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
_HEADER = re.compile(r"^=== (system|user|assistant) ===[ \t]*$", re.MULTILINE)


class PromptError(ConfigError):
    """A prompt file is missing or malformed, or was rendered with the wrong variables."""


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class Prompt:
    name: str
    language: str
    messages: tuple[Message, ...]  # templates, not yet rendered

    @property
    def variables(self) -> set[str]:
        return {m for message in self.messages for m in _VARIABLE.findall(message.content)}

    def render(self, **values: str) -> tuple[Message, ...]:
        missing = self.variables - set(values)
        if missing:
            raise PromptError(f"prompt {self.name}.{self.language} needs {sorted(missing)}")
        unused = set(values) - self.variables
        if unused:
            raise PromptError(f"prompt {self.name}.{self.language} has no variables {sorted(unused)}")
        return tuple(
            Message(m.role, _VARIABLE.sub(lambda match: str(values[match.group(1)]), m.content))
            for m in self.messages
        )


def prompt_language(language: str) -> str:
    """Nynorsk and unknown Scandinavian questions get the Bokmål prompt; anything else English."""
    return "nb" if language in ("nb", "nn", "no") else "en"


def parse(name: str, language: str, text: str) -> Prompt:
    headers = list(_HEADER.finditer(text))
    if not headers or text[: headers[0].start()].strip():
        raise PromptError(f"prompt {name}.{language} must start with a '=== system ===' style header")
    messages = []
    for header, following in zip(headers, [*headers[1:], None], strict=False):
        body = text[header.end() : following.start() if following else len(text)].strip("\n")
        messages.append(Message(header.group(1), body.rstrip() + ("\n" if body.endswith("\n") else "")))
    return Prompt(name, language, tuple(Message(m.role, m.content.rstrip("\n")) for m in messages))


@lru_cache(maxsize=32)
def load(name: str, language: str) -> Prompt:
    language = prompt_language(language)
    path = PROMPT_DIR / f"{name}.{language}.md"
    if not path.is_file():
        raise PromptError(f"no prompt file {path}")
    return parse(name, language, path.read_text(encoding="utf-8"))


def available() -> list[tuple[str, str]]:
    return sorted(tuple(p.name.split(".")[:2]) for p in PROMPT_DIR.glob("*.*.md"))
