"""Planned feature module; see the issue tracker. build() returns its handlers."""

from __future__ import annotations

from telegram.ext import BaseHandler


def build() -> list[BaseHandler]:
    return []
