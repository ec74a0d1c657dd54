"""The tools and functions a chat request to Kilde may describe, and the calls of them an earlier assistant message
made, held to the shape OpenAI's API holds them to.

Kilde calls no tools, so it ignores them (ui/openai_schema.py refuses a `tool_choice` that forces one), and it reads
no earlier call. But a client whose tool or call OpenAI's API refuses (a name with a dot, a function without its
`function`, a call's `arguments` sent as an object) would find out only there, so each is validated as OpenAI's API
does, as part of `ChatIn`, and refused naming its path (`tools[0].function.name`,
`messages[1].tool_calls[0].function.arguments`) with OpenAI's code (ui/openai_errors.py `invalid_body`). What a
function takes (`parameters`) must be an object; the JSON Schema in it is not read, nor is the JSON in a call's
`arguments`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Strict about JSON types, as the rest of the request (ui/openai_schema.py `OPENAI`); unknown fields ignored.
OPENAI = ConfigDict(extra="ignore", strict=True)

# A function's name, as OpenAI's API reference describes it ("a-z, A-Z, 0-9, or contain underscores and dashes, with a
# maximum length of 64") and its answers quote the pattern; an empty one is "empty string" in its answers, before the
# pattern.
FunctionName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")]
# What a function does, as the model reads it: OpenAI's API refuses one over 1,024 characters
# (`string_above_max_length`, in the words `fault` in ui/openai_errors.py writes).
FunctionDescription = Annotated[str, Field(max_length=1024)]


class FunctionIn(BaseModel):
    """A function a model may call: a tool's `function`, or an item of the deprecated `functions`."""

    model_config = OPENAI
    name: FunctionName
    description: FunctionDescription | None = None
    parameters: dict[str, Any] | None = None  # none: the function takes no arguments
    strict: bool | None = None


class FunctionChoiceIn(BaseModel):
    """The deprecated `function_call` parameter naming the function the model must call (openai-python's
    `ChatCompletionFunctionCallOptionParam`)."""

    model_config = OPENAI
    name: str


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


class CalledFunctionIn(BaseModel):
    """A function an assistant message called: a tool call's `function`, or the deprecated `function_call`. Its
    `arguments` are the JSON text the model wrote, a string (an object is OpenAI's `invalid_type`)."""

    model_config = OPENAI
    name: FunctionName
    arguments: str


class FunctionToolCallIn(BaseModel):
    model_config = OPENAI
    id: str
    type: Literal["function"]
    function: CalledFunctionIn


class CustomCallIn(BaseModel):
    model_config = OPENAI
    name: str
    input: str


class CustomToolCallIn(BaseModel):
    model_config = OPENAI
    id: str
    type: Literal["custom"]
    custom: CustomCallIn


# An assistant message's tool call (openai-python's `ChatCompletionMessageToolCallUnionParam`), told apart by `type`
# as a tool is.
ToolCallIn = Annotated[FunctionToolCallIn | CustomToolCallIn, Field(discriminator="type")]
