"""Admin commands: /people (list, filter, act on a person) and /invite."""

from __future__ import annotations

from telegram.ext import BaseHandler


def build() -> list[BaseHandler]:
    return []
