"""Request validation against the compact Bot API spec (``botapi_spec.json``).

Parameters arrive as strings (query string, form data, multipart fields) or as JSON values
(JSON bodies). :func:`validate` checks required parameters and basic types and returns the
parameters coerced to Python values: Integer -> int, Float -> float, Boolean -> bool, JSON
arrays/objects decoded. It is slightly stricter than Telegram about garbage values (Telegram
silently reads ``"abc"`` as 0), which surfaces client bugs early.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .errors import ApiError, bad_request

SPEC_PATH = Path(__file__).with_name("botapi_spec.json")

_INT_RE = re.compile(r"^\s*[+-]?\d+\s*$")
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0", ""}

# Telegram reports these missing parameters with its own wording.
_MISSING: dict[str, str] = {
    "chat_id": "chat_id is empty",
    "text": "message text is empty",
    "document": "there is no document in the request",
    "photo": "there is no photo in the request",
    "audio": "there is no audio in the request",
    "video": "there is no video in the request",
    "voice": "there is no voice in the request",
    "animation": "there is no animation in the request",
    "sticker": "there is no sticker in the request",
    "latitude": "latitude is empty",
    "longitude": "longitude is empty",
    "action": "wrong parameter action in request",
    "message_id": "message identifier is not specified",
    "callback_query_id": "query is too old and response timeout expired or query ID is invalid",
    "user_id": "invalid user_id specified",
}
# The content is checked before the chat, like the Bot API does.
_CHECK_FIRST = ("text", "document", "photo", "latitude", "longitude", "action", "commands")


@dataclass(frozen=True)
class MethodSpec:
    name: str
    params: dict[str, list[str]]
    required: tuple[str, ...]
    returns: str


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


class BotApiSpec:
    """Methods (case-insensitive lookup) and object types of one Bot API version."""

    def __init__(self, raw: dict[str, Any]):
        self.version: str = raw["version"]
        self.types: dict[str, dict[str, Any]] = raw["types"]
        self.methods: dict[str, MethodSpec] = {}
        for name, method in raw["methods"].items():
            params = {p: t.split("|") for p, t in method["params"].items()}
            required = tuple(method["required"])
            self.methods[name.lower()] = MethodSpec(name, params, required, method["returns"])

    def method(self, name: str) -> MethodSpec | None:
        return self.methods.get(name.lower())

    def required_fields(self, type_name: str) -> list[str]:
        return list(self.types.get(type_name, {}).get("required", []))

    def update_types(self) -> list[str]:
        return [f for f in self.types["Update"]["fields"] if f != "update_id"]


@cache
def load_spec(path: Path = SPEC_PATH) -> BotApiSpec:
    return BotApiSpec(json.loads(path.read_text(encoding="utf-8")))


def _coerce(value: Any, type_name: str, files: dict[str, UploadedFile]) -> tuple[bool, Any]:
    """Try to read ``value`` as ``type_name``; return (matched, coerced value)."""
    if type_name == "Integer":
        if isinstance(value, bool):
            return False, None
        if isinstance(value, int):
            return True, value
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        if isinstance(value, str) and _INT_RE.match(value):
            return True, int(value)
        return False, None
    if type_name == "Float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return True, float(value)
        if isinstance(value, str):
            try:
                return True, float(value)
            except ValueError:
                return False, None
        return False, None
    if type_name == "Boolean":
        if isinstance(value, bool):
            return True, value
        if isinstance(value, int) and value in (0, 1):
            return True, bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return True, value.strip().lower() in _TRUE
        return False, None
    if type_name == "String":
        if isinstance(value, str):
            return True, value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return True, str(value)
        return False, None
    if type_name == "InputFile":
        if isinstance(value, UploadedFile):
            return True, value
        if isinstance(value, str) and value.startswith("attach://"):
            part = files.get(value.removeprefix("attach://"))
            return (part is not None), part
        return False, None
    decoded = value
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return False, None
    if type_name.startswith("Array of"):
        return isinstance(decoded, list), decoded
    return isinstance(decoded, dict), decoded


def _type_error(name: str, types: list[str], value: Any) -> ApiError:
    if any(t not in _BASIC for t in types):
        if name == "reply_markup":
            return bad_request("can't parse reply keyboard markup JSON object")
        if isinstance(value, str):
            return bad_request(f"can't parse {name} JSON object")
    return bad_request(f'field "{name}" must be of type {" or ".join(types)}')


_BASIC = {"Integer", "Float", "Boolean", "String", "InputFile"}


def validate(
    method: MethodSpec, raw: dict[str, Any], files: dict[str, UploadedFile]
) -> dict[str, Any]:
    """Check required parameters and types; return coerced parameters (unknown ones kept)."""
    params: dict[str, Any] = dict(raw)
    for name, part in files.items():
        if name in method.params and name not in params:
            params[name] = part
    order = sorted(method.required, key=lambda p: (p not in _CHECK_FIRST, p == "chat_id"))
    for name in order:
        value = params.get(name)
        if value is None or value == "":
            detail = _MISSING.get(name, f'parameter "{name}" is required')
            raise bad_request(detail)
    result: dict[str, Any] = {}
    for name, value in params.items():
        types = method.params.get(name)
        if types is None or value is None:
            result[name] = value
            continue
        if value == "" and name not in method.required:
            continue  # Telegram treats empty optional parameters as absent
        for type_name in types:
            matched, coerced = _coerce(value, type_name, files)
            if matched:
                result[name] = coerced
                break
        else:
            if "InputFile" in types and isinstance(value, str) and value.startswith("attach://"):
                raise bad_request(f"there is no {name} in the request")
            raise _type_error(name, types, value)
    return result
