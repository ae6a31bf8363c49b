"""Emergency channel (being built): SOS, acknowledgement, escalation, duty roster."""

from __future__ import annotations

from telegram.ext import BaseHandler


def build_emergency() -> list[BaseHandler]:
    """Handlers that run before any form (group -10) and stop further processing."""
    return []


def build() -> list[BaseHandler]:
    return []
