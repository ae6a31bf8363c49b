"""Every user-facing string comes from the locale catalogs in services/locales/*.po.

Catalog ids are symbolic keys (``reg.consent.text``); each language's .po file holds the
text. Values substituted into a string are HTML-escaped unless wrapped in `Html`, so user
text can never break Telegram's HTML parse mode.
"""

from __future__ import annotations

import gettext
import html
import re
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

LANGUAGES: tuple[str, ...] = ("zh-Hans", "en")
DEFAULT_LANGUAGE = "zh-Hans"
_CATALOG_DIRS = {"zh-Hans": "zh_Hans", "en": "en"}


class Html(str):
    """A string that is already safe HTML and must not be escaped again."""

    __slots__ = ()


@cache
def catalog(language: str) -> dict[str, str]:
    """All messages of one language: every .po file in services/locales/<language>/. A
    message with plural forms (``msgid_plural``) is here by its last form (so that keys and
    placeholders compare across languages); `tn` picks the right one."""
    return {key: forms[-1] for key, forms in _messages(language).items()}


@cache
def _messages(language: str) -> dict[str, tuple[str, ...]]:
    """Each key's forms: one, or the plural forms in the language's gettext order."""
    folder = resources.files("services") / "locales" / _CATALOG_DIRS[language]
    messages: dict[str, tuple[str, ...]] = {}
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".po"):
            continue
        with path.open("rb") as handle:
            po = read_po(handle, locale=language.replace("-", "_"))
        for message in po:
            if message.id and message.string:
                key = str(message.id[0] if message.pluralizable else message.id)
                if key in messages:
                    raise ValueError(f"{path.name}: duplicate catalog key {key!r}")
                forms = message.string if message.pluralizable else (message.string,)
                messages[key] = tuple(str(form) for form in forms)
    return messages


@cache
def _plural_rule(language: str) -> Callable[[int], int]:
    """The language's gettext plural rule (English: 1 person, 2 people; Chinese: one form)."""
    return gettext.c2py(get_plural(language.replace("-", "_")).plural_expr)


def normalize_language(code: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """Map Telegram's language_code (``zh-hans``, ``zh-CN``, ``en-GB``...) to a catalog."""
    if not code:
        return default
    lowered = code.lower()
    if lowered.startswith("zh"):
        return "zh-Hans"
    if lowered.startswith("en"):
        return "en"
    return default


def escape(value: Any) -> str:
    if isinstance(value, Html):
        return value
    return html.escape(str(value), quote=False)


def plain_text(text: str) -> str:
    """Catalog (Telegram) HTML as plain text: tags removed, character references decoded.
    For what cannot carry markup: callback answers, spreadsheets, WeCom/DingTalk/SMS, the
    fallback when Telegram refuses a message's markup."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def t(language: str | None, key: str, **values: Any) -> str:
    """The text for `key` in `language`, with `values` substituted (HTML-escaped)."""
    lang = language if language in _CATALOG_DIRS else DEFAULT_LANGUAGE
    text = catalog(lang).get(key)
    if text is None:
        text = catalog(DEFAULT_LANGUAGE).get(key, key)
    return _fill(text, values)


def tn(language: str | None, key: str, count: int, **values: Any) -> str:
    """`t` for a message with plural forms: the form for `count` (also given as {count})."""
    lang = language if language in _CATALOG_DIRS else DEFAULT_LANGUAGE
    if key not in _messages(lang):
        lang = DEFAULT_LANGUAGE
    forms = _messages(lang).get(key, (key,))
    form = forms[min(_plural_rule(lang)(count), len(forms) - 1)]
    return _fill(form, {"count": count, **values})


def _fill(text: str, values: dict[str, Any]) -> Html:
    if "{example_" in text:  # suggested values computed from today (services.examples)
        from services import examples

        values = {**examples.values(), **values}
    if values:
        text = text.format(**{name: escape(value) for name, value in values.items()})
    return Html(text)


def has_key(key: str) -> bool:
    return all(key in catalog(lang) for lang in LANGUAGES)
