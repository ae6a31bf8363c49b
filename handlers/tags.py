"""Cohort tags (/tag, /untag, /tags; bt:a|r:<person>:<tag> picks one of several people a name
fits), which broadcasts can address."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from handlers.callbacks import pressed
from handlers.common import Context, answer, buttons, guarded, pressed_label, reply, show_answer
from models import Person
from services import broadcasts, people
from services.i18n import t
from services.people import name_of
from services.permissions import Action
from services.validation import parse_int


@guarded(Action.MANAGE_PEOPLE)
async def tag_command(update: Update, context: Context, admin: Person) -> None:
    await _tagging(update, context, admin, add=True)


@guarded(Action.MANAGE_PEOPLE)
async def untag_command(update: Update, context: Context, admin: Person) -> None:
    await _tagging(update, context, admin, add=False)


async def _tagging(update: Update, context: Context, admin: Person, *, add: bool) -> None:
    """`/tag <tag> <person>…`: a person is a Telegram user id, #number (from /people) or a
    name (or part of one); a name that fits several people gets buttons to pick from."""
    lang = admin.language
    args = list(context.args or [])
    tag = broadcasts.normalize_tag(args[0]) if args else None
    if tag is None or len(args) < 2:
        await reply(update, t(lang, "broadcast.tag.usage"))
        return
    refs = [a for a in args[1:40] if parse_int(a.removeprefix("#"), max_digits=19) is not None]
    name = " ".join(a for a in args[1:40] if a not in refs)
    db = context.db
    matches = await db.run(people.search_by_name, name) if name else []
    if len(matches) == 1:
        refs.append(f"#{matches[0].id}")
    not_found = [name] if name and not matches else []
    if refs or not_found:
        fn = broadcasts.tag_people if add else broadcasts.untag_people
        tagged, unknown = await db.run(fn, admin, tag, refs) if refs else ([], [])
        await reply(update, _tag_result(lang, tag, add, tagged, unknown + not_found))
    if len(matches) < 2:
        return
    rows = [[_pick_button(p, tag, add)] for p in matches[: people.NAME_MATCHES]]
    key = "broadcast.tag.choose" if len(matches) <= people.NAME_MATCHES else "broadcast.tag.many"
    await reply(
        update, t(lang, key, name=name, count=people.NAME_MATCHES), reply_markup=buttons(rows)
    )


def _pick_button(person: Person, tag: str, add: bool) -> tuple[str, str]:
    label = f"#{person.id} {name_of(person, '-')}"[:60]
    if add:
        return (label, f"bt:a:{person.id}:{tag}")
    return (label, f"bt:r:{person.id}:{tag}")


def _tag_result(lang: str, tag: str, add: bool, tagged: list[Person], unknown: list[str]) -> str:
    """The names the tag was given to (or removed from), e.g. 李伟、张强, and what was not
    found."""
    key = "broadcast.tag.added" if add else "broadcast.tag.removed"
    names = t(lang, "care.list_sep").join(name_of(p, "-") for p in tagged)
    text = t(lang, key, tag=tag, names=names) if tagged else ""
    if unknown:
        text += ("\n" if text else "") + t(lang, "broadcast.tag.unknown", refs=" ".join(unknown))
    return text


@guarded(Action.MANAGE_PEOPLE)
async def on_tag_button(update: Update, context: Context, admin: Person) -> None:
    """bt:<a|r>:<person id>:<tag>: the person picked (add or remove the tag) for a name
    that fit several."""
    query = update.callback_query
    assert query is not None and query.data is not None
    lang = admin.language
    press = pressed(update)
    sign, person_id = press.step, press.number(2)
    tag = broadcasts.normalize_tag(press.word(3))
    offered = pressed_label(query) is not None  # only a button the bot put on this message
    if sign not in ("a", "r") or person_id is None or tag is None or not offered:
        await answer(query, t(lang, "form.stale"), alert=True)
        return
    await answer(query)
    await show_answer(query, lang)
    fn = broadcasts.tag_people if sign == "a" else broadcasts.untag_people
    tagged, unknown = await context.db.run(fn, admin, tag, [f"#{person_id}"])
    await reply(update, _tag_result(lang, tag, sign == "a", tagged, unknown))


@guarded(Action.MANAGE_PEOPLE)
async def tags_command(update: Update, context: Context, admin: Person) -> None:
    lang = admin.language
    found = await context.db.run(broadcasts.tags)
    if not found:
        await reply(update, t(lang, "broadcast.no_tags"))
        return
    lines = [f"• <code>{tag}</code> — {count}" for tag, count in found]
    await reply(update, t(lang, "broadcast.tags.title") + "\n" + "\n".join(lines))


def build() -> list[BaseHandler[Any, Any, Any]]:
    return [
        CommandHandler("tag", tag_command),
        CommandHandler("untag", untag_command),
        CommandHandler("tags", tags_command),
        CallbackQueryHandler(on_tag_button, pattern=r"^bt:[ar]:"),
    ]
