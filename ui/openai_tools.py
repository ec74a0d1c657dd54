"""The tools and functions a chat request to Kilde may describe, held to the shape OpenAI's API holds them to.

Kilde calls no tools, so it ignores them (ui/openai_schema.py refuses a `tool_choice` that forces one). But a client
whose tool OpenAI's API refuses (a name with a dot, a function without its `function`) would find out only there,
so each is validated as OpenAI's API does, as part of `ChatIn`, and refused naming its path
(`tools[0].function.name`) with OpenAI's code (ui/openai_errors.py `invalid_body`). What a function takes
(`parameters`) must be an object; the JSON Schema in it is not read.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Strict about JSON types, as the rest of the request (ui/openai_schema.py `OPENAI`); unknown fields ignored.
OPENAI = ConfigDict(extra="ignore", strict=True)

# A function's name, as OpenAI's API reference describes it ("a-z, A-Z, 0-9, or contain underscores and dashes, with a
# maximum length of 64") and its answers quote the pattern.
FunctionName = Annotated[str, Field(max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")]


class FunctionIn(BaseModel):
    """A function a model may call: a tool's `function`, or an item of the deprecated `functions`."""

    model_config = OPENAI
    name: FunctionName
    description: str | None = None
    parameters: dict[str, Any] | None = None  # none: the function takes no arguments
    strict: bool | None = None


class FunctionToolIn(BaseModel):
    model_config = OPENAI
    type: Literal["function"]
    function: FunctionIn


class CustomIn(BaseModel):
    """A custom tool's description (openai-python's `ChatCompletionCustomToolParam`): its input is free text or
    follows a grammar (`format`, not read). OpenAI's reference gives its name no pattern, so none is held."""

    model_config = OPENAI
    name: str
    description: str | None = None
    format: dict[str, Any] | None = None


class CustomToolIn(BaseModel):
    model_config = OPENAI
    type: Literal["custom"]
    custom: CustomIn


# Told apart by `type`: a tool without it is "Missing required parameter: 'tools[0].type'.", one of another type
# names the two OpenAI's chat completions take.
ToolIn = Annotated[FunctionToolIn | CustomToolIn, Field(discriminator="type")]
