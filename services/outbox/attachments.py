"""Files drawn when sent: a photo or document queued by reference (payload ``render`` +
``args``), drawn by the worker when it sends the message."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session


@dataclass(frozen=True)
class Attachment:
    """A photo or document drawn when its message is sent (payload ``render`` + ``args``).

    Why at send time and not as bytes in the payload: drawing a chart takes a few hundred
    milliseconds of CPU; inside the transaction that queues it (a check-in, an alert's
    round) it would hold SQLite's single write lock and delay that emergency round's
    commit. The row keeps only the reference, so no copy of the data it shows (health
    readings) outlives the data's own retention in outbox rows, which are kept for good.
    The loader reads in a short transaction; `draw` runs outside it, in a thread.
    """

    filename: str
    draw: Callable[[], bytes]


Renderer = Callable[[Session, dict[str, Any]], Attachment | None]
_renderers: dict[str, Renderer] = {}


def register_renderer(name: str, renderer: Renderer) -> None:
    """Name the loader of payloads ``{"render": name, "args": {...}}``: a function
    ``(session, args) -> Attachment | None`` (None: nothing to draw any more, the message
    is cancelled). The composition root registers it (bot/app.py, `register_hooks`); keep
    heavy imports (e.g. matplotlib) inside `draw`, which runs in the worker's drawing
    thread."""
    _renderers[name] = renderer


def load_attachment(session: Session, payload: dict[str, Any]) -> Attachment | None:
    """The worker's side: the registered loader for this payload, called with its args.
    An unknown name raises LookupError (the message can never be sent)."""
    name = str(payload.get("render"))
    renderer = _renderers.get(name)
    if renderer is None:
        raise LookupError(f"no renderer registered as {name!r}")
    return renderer(session, dict(payload.get("args") or {}))
