"""The one grammar of button data (callback_data), and its gate.

Every button the bot makes carries ``<prefix>:<field>:...``. `GRAMMAR` lists, for each
prefix, the shapes its buttons take and the permission each shape needs. `gate` runs before
every other handler (bot/app.py registers it in `BUTTON_GROUP`) and answers the press, and
stops it, when the data fits no shape (a forged, truncated or outdated button: extra or
missing fields, a number that is not ASCII digits, a value of the wrong kind) with the
stale-button answer, or when the person lacks the shape's permission (the same refusal as
`handlers.common.guarded`, audited). So a handler only ever sees data that parses, from
someone allowed to press it; `parse` gives it the typed fields.

Field kinds in a shape: a literal (``ack``), alternatives (``ok|no``), ``{n}`` a number
(`services.validation.parse_int`: ASCII digits, at most 12), ``{-n}`` a signed number,
``{w}`` a word (ASCII letters, digits, ``_ . -``; codes, tags, roles, dates, choices).
A handler still checks that a word is one it knows. A new button adds its shape here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from telegram import CallbackQuery, Update
from telegram.ext import ApplicationHandlerStop, CallbackQueryHandler

from handlers.common import Context, answer_stale, permitted
from services.permissions import Action
from services.validation import MAX_ID_DIGITS, parse_int

MAX_DATA_BYTES = 64  # Telegram's limit on callback_data
_WORD = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_SAFE = re.compile(r"[\x21-\x7e]{1,64}")  # what the bot's own buttons are made of

A = Action
# prefix -> ((shape, permission needed or None for anyone, e.g. a guest registering), ...)
GRAMMAR: dict[str, tuple[tuple[str, Action | None], ...]] = {
    "lang": (("lang:{w}", None),),
    "hp": (("hp:{w}", None),),  # /help: a task's commands, the terms, the list of tasks
    "f": (("f:lang|consent|pref|cty|alt|start|end|ok:{w}", None),),  # the registration form
    "me": (("me:edit:{w}", A.OWN_DATA),),
    "del": (("del:yes|no", A.OWN_DATA),),
    "adm": (("adm:ok|no|noy|back:{n}", A.APPROVE),),
    "ppl": (
        ("ppl:nop|back", A.MANAGE_PEOPLE),
        ("ppl:l:{w}:{w}:{n}", A.MANAGE_PEOPLE),
        ("ppl:c|ok|no|noy|r|alt|da|sus|susy|act:{n}", A.MANAGE_PEOPLE),
        ("ppl:role|dt:{n}:{w}", A.MANAGE_PEOPLE),
    ),
    "inv": (
        ("inv:x", A.INVITE),
        ("inv:r:{w}", A.INVITE),
        ("inv:e:{w}:{n}", A.INVITE),
        ("inv:u:{w}:{n}:{n}", A.INVITE),
    ),
    "imp": (("imp:links:xlsx|csv", A.MANAGE_PEOPLE),),  # /import: the invitation links file
    "kb": (
        ("kb:up|dn|ho:{n}", A.ASK),
        ("kb:t:{n}:{w}", A.ASK),
        ("kb:rp|faq:{n}", A.MANAGE_KB),
        ("kb:rc", A.MANAGE_KB),
        ("kb:pg:{n}:{w}:{n}", A.ASK),  # an answer's page: <question id>:<topic key>:<page>
        ("kb:dl|uh|st|qs:{n}", A.MANAGE_KB),  # a page of /kb, /kb upload, /kbstats, /questions
        ("kb:sv:{w}:{n}", A.MANAGE_KB),  # a page of /kb show: <document's short reference>:<page>
    ),
    "bw": (
        ("bw:c|go|skip|w|x", A.BROADCAST),
        ("bw:a|at|l|p|r|t:{w}", A.BROADCAST),
    ),
    "bc": (
        ("bc:ok:{n}", A.CONFIRM_NOTICE),  # a recipient's "Received ✓"
        ("bc:done", A.CONFIRM_NOTICE),
        ("bc:v|csv|who|rs|x|xx:{n}", A.BROADCAST),
    ),
    "bt": (("bt:a|r:{n}:{w}", A.MANAGE_PEOPLE),),  # /tag, /untag: the person picked (a/r)
    "dg": (("dg:rmn", A.MANAGE_ROSTER), ("dg:rm|rmy|test|pg:{n}", A.MANAGE_ROSTER)),
    "sms": (("sms:off|profile|test", A.HANDLE_ALERTS),),
    "ci": (("ci:start", A.CHECKIN), ("ci:{w}:{w}", A.CHECKIN)),
    "rm": (("rm:r", A.CHECKIN), ("rm:t|p:{n}", A.CHECKIN)),
    "hs": (("hs:{n}", A.CHECKIN),),  # /history: <page>
    "cx": (("cx:{n}", A.VIEW_AREA),),
    "ct": (("ct:{n}", A.VIEW_AREA),),
    "td": (("td:{w}:{n}", A.VIEW_AREA),),  # /today all: <state or all>:<page>
    "dir": (
        ("dir:home", A.MANAGE_DIRECTORY),
        ("dir:p|add:{w}", A.MANAGE_DIRECTORY),
        ("dir:e|ok|rm|rmy:{n}", A.MANAGE_DIRECTORY),
        ("dir:f:{n}:name|phone|address", A.MANAGE_DIRECTORY),
    ),
    "duty": (("duty:on:{n}", A.GO_ON_DUTY),),
    "ros": (
        ("ros:home", A.MANAGE_ROSTER),
        ("ros:rm:{n}", A.MANAGE_ROSTER),
        ("ros:p|a:{w}", A.MANAGE_ROSTER),
        ("ros:o:{w}:{n}", A.MANAGE_ROSTER),
        ("ros:b|d:{w}:{n}:{n}", A.MANAGE_ROSTER),
        ("ros:s:{w}:{n}:{n}:{w}", A.MANAGE_ROSTER),
    ),
    "cs": (
        ("cs:d|b|z:{n}:{n}", A.OWN_DATA),  # <item>:<due, yyyymmdd>
        ("cs:zz:{n}:{n}:{n}", A.OWN_DATA),
        ("cs:rt", A.OWN_DATA),
        ("cs:rt:{w}", A.OWN_DATA),
        ("cs:csv:{w}", A.VIEW_AREA),
        ("cs:o|u:{n}", A.VIEW_AREA),  # /overdue, /upcoming: <page>
        ("cs:p:{n}", A.MANAGE_SCHEDULES),
        ("cs:info", A.OWN_DATA),  # the details behind one's schedule card
        ("cs:pi:{n}", A.MANAGE_SCHEDULES),  # the same for someone's
        ("cs:as:{n}:{w}", A.MANAGE_SCHEDULES),
        ("cs:pol", A.MANAGE_SCHEDULES),
        ("cs:pol|pc:{w}", A.MANAGE_SCHEDULES),
        ("cs:pv|pt:{w}:{w}", A.MANAGE_SCHEDULES),
        ("cs:ps:{w}:{w}:{w}", A.MANAGE_SCHEDULES),
    ),
    "cf": (  # the care forms (done / booked, an admin's date, an oxygen request)
        ("cf:skip|x", A.OWN_DATA),
        ("cf:date:{-n}", A.OWN_DATA),
        ("cf:ox:ok", A.OWN_DATA),
        ("cf:ox:w|p|u:{w}", A.OWN_DATA),
    ),
    "ox": (
        ("ox:new", A.REQUEST_OXYGEN),
        ("ox:cxl:{n}", A.REQUEST_OXYGEN),
        ("ox:m:{n}", A.REQUEST_OXYGEN),  # /oxygen: a page of one's requests
        ("ox:a:{n}", A.HANDLE_OXYGEN),  # /oxygen: a page of the area's open ones
        ("ox:ack|dlv:{n}", A.HANDLE_OXYGEN),
    ),
    "sos": (
        ("sos:cat:{n}:{w}", A.RAISE_SOS),
        ("sos:skip|cxl|cxly|cxln:{n}", A.RAISE_SOS),
        ("sos:csv", A.HANDLE_ALERTS),
        ("sos:ack|res|back|tl|tlcsv|nskip|info:{n}", A.HANDLE_ALERTS),
        ("sos:tl:{n}:{n}", A.HANDLE_ALERTS),  # a page of a timeline: <alert id>:<page>
        ("sos:out:{n}:{w}", A.HANDLE_ALERTS),
    ),
    "kin": (("kin:new", A.RAISE_SOS), ("kin:rm:{n}", A.RAISE_SOS)),
}


@dataclass(frozen=True)
class Button:
    """Parsed button data: the prefix, the fields after it (numbers as int), the permission."""

    prefix: str
    fields: tuple[str | int, ...]
    action: Action | None


def button_id(raw: str) -> int | None:
    """A `{n}` field of button data (an id, a date, a count), or an id typed after a command:
    ASCII digits, at most MAX_ID_DIGITS; None for anything a button never carries."""
    return parse_int(raw, max_digits=MAX_ID_DIGITS)


@dataclass(frozen=True)
class Press:
    """A pressed button as its handler reads it: the query and the fields of its data, the
    prefix first (`step` is the field after it). A field the data lacks reads "" (`word`)
    or None (`number`), so a handler checks what it got, not how long the data was."""

    query: CallbackQuery
    parts: tuple[str, ...]

    @property
    def data(self) -> str:
        return self.query.data or ""

    @property
    def step(self) -> str:
        return self.word(1)

    def word(self, index: int) -> str:
        return self.parts[index] if index < len(self.parts) else ""

    def number(self, index: int) -> int | None:
        """Field `index` as an id (`button_id`), None when missing or not one."""
        return button_id(self.parts[index]) if index < len(self.parts) else None


def pressed(update: Update) -> Press:
    """The press a CallbackQueryHandler was called for."""
    query = update.callback_query
    assert query is not None
    return Press(query, tuple((query.data or "").split(":")))


def _field(kind: str, raw: str) -> str | int | None:
    if kind == "{n}":
        return button_id(raw)
    if kind == "{-n}":
        return parse_int(raw, max_digits=MAX_ID_DIGITS, signed=True)
    if kind == "{w}":
        return raw if _WORD.fullmatch(raw) else None
    return raw if raw in kind.split("|") else None


def _match(shape: str, parts: list[str]) -> tuple[str | int, ...] | None:
    kinds = shape.split(":")[1:]
    if len(kinds) != len(parts):
        return None
    fields = tuple(_field(kind, raw) for kind, raw in zip(kinds, parts, strict=True))
    return None if any(f is None for f in fields) else fields  # type: ignore[return-value]


def parse(data: str | None) -> Button | None:
    """The button `data` names, or None when it fits none of its prefix's shapes."""
    if not data or not _SAFE.fullmatch(data) or len(data.encode()) > MAX_DATA_BYTES:
        return None
    prefix, *parts = data.split(":")
    for shape, action in GRAMMAR.get(prefix, ()):
        fields = _match(shape, parts)
        if fields is not None:
            return Button(prefix, fields, action)
    return None


async def gate(update: Update, context: Context) -> None:
    """Before any handler: a press whose data does not parse, or that its presser may not
    make, is answered here (once) and goes no further."""
    query = update.callback_query
    assert query is not None
    button = parse(query.data)
    if button is None:
        await answer_stale(update, context, forged=True)
        raise ApplicationHandlerStop
    if button.action is not None and await permitted(update, context, button.action) is None:
        raise ApplicationHandlerStop


def build_gate() -> CallbackQueryHandler:
    return CallbackQueryHandler(gate)
