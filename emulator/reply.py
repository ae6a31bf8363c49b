"""Small types shared by the method implementations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    """A successful result with an extra ``description`` (e.g. "Webhook was set")."""

    result: Any
    description: str | None = None


Handler = Callable[[dict[str, Any]], Any | Awaitable[Any]]
