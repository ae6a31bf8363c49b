"""The board's HTML for the views beyond alerts and today: overdue care and oxygen requests
(officers and admins), and the admins' people, duty roster, roster import, broadcast
reports and handed-over questions. Texts from the catalogs; chat texts reused as they are
(Telegram HTML is valid HTML); anything a person typed is escaped (services.i18n escapes
catalog values, `_e` the rest)."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from models import Person, Role, Status
from services import roster
from services.care import areas as care_areas
from services.care import texts
from services.health import summary
from services.i18n import t
from services.people import name_of, posting_text
from services.postings import load_postings
from webapp.pages import SEARCH_MAX, _e, _query, nav, pager

ROLES = (Role.CADRE, Role.DUTY_OFFICER, Role.ADMIN)  # as /people assigns them
PEOPLE_FILTERS = ("pending", "active", "suspended", "rejected", "all")


def _flash(text: str) -> str:
    return f'<p class="flash" role="status">{text}</p>' if text else ""


def _none(lang: str, key: str = "board.today.none") -> str:
    return f'<p class="muted">{_e(t(lang, key))}</p>'


def _post(action: str, label: str, *, cls: str = "", fields: dict[str, Any] | None = None) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{_e(k)}" value="{_e(v)}">' for k, v in (fields or {}).items()
    )
    klass = f' class="{cls}"' if cls else ""
    return (
        f'<form method="post" data-action="{_e(action)}">{hidden}'
        f"<button type=submit{klass}>{_e(label)}</button></form>"
    )


# ---------------------------------------------------------------------------- care, oxygen


def overdue(
    lang: str,
    day: date,
    summary: care_areas.AreaSummary,
    admin: bool,
    area: list[str] | None = None,
    chosen: str | None = None,
) -> str:
    """Overdue rests and examinations: a chip per prefecture of the viewer's `area` (None:
    all) to narrow the list to it, the counts per prefecture and the first rows."""
    postings = load_postings()
    title = _e(t(lang, "care.overdue.title", date=day.isoformat()))
    codes = area if area is not None else [p.code for p in postings.prefectures()]
    choices = [(None, t(lang, "board.filter.all"))] + [
        (code, postings.name(code, lang, short=True)) for code in codes
    ]
    chips = "".join(
        f'<a href="#" class="chip{" on" if code == chosen else ""}" '
        f'data-view="care{"?" + _query(prefecture=code) if code else ""}">{_e(label)}</a>'
        for code, label in choices
    )
    counts = "".join(
        f"<li>{_e(postings.name(code, lang, short=True) if postings.prefecture(code) else '-')}"
        f" <b>{count}</b></li>"
        for code, count in sorted(summary.counts.items())
    )
    rows = []
    for row in summary.rows:
        values = {
            "name": row.person.name,
            "posting": texts.posting_text(lang, row.person),
            "altitude": row.person.altitude_m if row.person.altitude_m is not None else "-",
            "item": texts.item_name(lang, row.due.kind),
            "due": row.due.due.isoformat(),
        }
        line = t(lang, "care.area.line_overdue", count=row.due.overdue_days(row.today), **values)
        if row.due.booked_for is not None:
            line += t(lang, "care.area.booked_suffix")
        rows.append(f'<li><a href="#" data-view="person/{row.person.id}">{line}</a></li>')
    body = f'<ul class="list">{"".join(rows)}</ul>' if rows else _none(lang)
    more = ""
    if summary.total > len(summary.rows):
        more = f'<p class="muted">{_e(t(lang, "board.care.more", count=summary.total))}</p>'
    filters = f'<div class="chips">{chips}</div>' if len(codes) > 1 else ""
    return (
        f"{nav(lang, 'care', admin)}<h1>{title}</h1>{filters}"
        f'<ul class="counts">{counts}</ul>{body}{more}'
    )


def oxygen_list(lang: str, items: list[tuple[Any, str, str]], admin: bool) -> str:
    """items: (request, its notice text, its status line)."""
    rows = "".join(
        f'<li><div class="card">{text}\n<i>{status}</i></div>'
        f'<a href="#" data-view="person/{request.person_id}">👤 →</a></li>'
        for request, text, status in items
    )
    body = f'<ul class="list plain">{rows}</ul>' if rows else _none(lang, "board.oxygen.none")
    title = _e(t(lang, "board.oxygen.title", count=len(items)))
    return f"{nav(lang, 'oxygen', admin)}<h1>{title}</h1>{body}"


# ---------------------------------------------------------------------------- people


def _posting(lang: str, person: Person) -> str:
    return posting_text(person, lang)


def people_list(
    lang: str,
    found: Any,
    status: str,
    prefecture: str | None,
    name: str = "",
    more: bool = False,
    counts: dict[str, int] | None = None,
) -> str:
    """/people's list: status chips (with `counts`), a prefecture, 50 a page; or the
    people whose name contains `name` (`more`: more than a page of them)."""
    postings = load_postings()
    chips = "".join(
        f'<a href="#" class="chip{" on" if code == status and not name else ""}" '
        f'data-view="people?{_query(status=code, prefecture=prefecture)}">'
        f"{_e(t(lang, f'people.filter.{code}'))}"
        f"{f' <b>{counts.get(code, 0)}</b>' if counts is not None else ''}</a>"
        for code in PEOPLE_FILTERS
    )
    all_ = _e(t(lang, "board.filter.all"))
    options = "".join(
        f'<option value="{_e(p.code)}"{" selected" if p.code == prefecture else ""}>'
        f"{_e(postings.name(p.code, lang, short=True))}</option>"
        for p in postings.prefectures()
    )
    form = (
        '<form class="filters" data-view-form="people">'
        f'<input type="hidden" name="status" value="{_e(status)}">'
        f"<label>{_e(t(lang, 'board.filter.prefecture'))}"
        f'<select name="prefecture" data-autosubmit><option value="">{all_}</option>'
        f"{options}</select></label>"
        f'<label class="wide">{_e(t(lang, "board.filter.name"))}'
        f'<input type="search" name="q" value="{_e(name)}" maxlength="{SEARCH_MAX}" '
        f'autocomplete="off" enterkeyhint="search"></label>'
        f'<button type="submit">{_e(t(lang, "board.filter.apply"))}</button></form>'
    )
    rows = "".join(
        f'<li><a href="#" data-view="people/{p.id}">{_e(name_of(p))}'
        f"<small>{_e(t(lang, f'role.{p.role}'))} · {_e(t(lang, f'people.status.{p.status}'))}"
        f" · {_e(_posting(lang, p))}</small></a></li>"
        for p in found.people
    )
    body = f'<ul class="list people">{rows}</ul>' if rows else _none(lang)
    if name:
        paging = _none(lang, "board.people.more") if more else ""
    else:
        paging = pager(
            lang,
            "people",
            found.page + 1,
            len(found.people),
            found.total,
            status=status,
            prefecture=prefecture,
        )
    title = _e(t(lang, "board.people.title", count=found.total))
    return (
        f"{nav(lang, 'people', True)}<h1>{title}</h1>"
        f'<div class="chips">{chips}</div>{form}{body}{paging}'
    )


def person_card(
    lang: str, person: Person, card: str, areas: list[str], viewer: Person, flash: str = ""
) -> str:
    """A person as /people shows them, with what an admin may do: the same actions."""
    pid = person.id
    parts = [
        f'<a href="#" class="back" data-view="people">{_e(t(lang, "board.back"))}</a>',
        _flash(flash),
        f'<div class="card">{card}</div>',
    ]
    if person.status == Status.PENDING:
        parts.append(
            '<div class="actions">'
            + _post(f"people/{pid}/approve", t(lang, "approve.yes"), cls="primary")
            + _post(f"people/{pid}/reject", t(lang, "approve.no"))
            + "</div>"
        )
    if person.status != Status.EXPECTED:
        options = "".join(
            f'<option value="{role}"{" selected" if role == person.role else ""}>'
            f"{_e(t(lang, f'role.{role}'))}</option>"
            for role in ROLES
        )
        parts.append(
            f'<form method="post" data-action="people/{pid}/role" class="inline">'
            f"<label>{_e(t(lang, 'people.btn.role'))}"
            f'<select name="role">{options}</select></label>'
            f'<button type="submit">{_e(t(lang, "board.save"))}</button></form>'
        )
    if person.role == Role.DUTY_OFFICER:
        postings = load_postings()
        toggles = "".join(
            _post(
                f"people/{pid}/area",
                ("☑️ " if p.code in areas else "⬜ ") + postings.name(p.code, lang, short=True),
                fields={"prefecture": p.code},
            )
            for p in postings.prefectures()
        )
        parts.append(
            f"<h2>{_e(t(lang, 'people.btn.duty_areas'))}</h2><div class='toggles'>{toggles}</div>"
        )
    if person.status == Status.ACTIVE and person.id != viewer.id:
        parts.append(_post(f"people/{pid}/suspend", t(lang, "people.btn.suspend"), cls="danger"))
    elif person.status == Status.SUSPENDED:
        parts.append(_post(f"people/{pid}/reinstate", t(lang, "people.btn.reinstate")))
    if person.status in (Status.ACTIVE, Status.SUSPENDED) and person.role != Role.CONTACT:
        parts.append(f'<p><a href="#" data-view="person/{pid}">📈 →</a></p>')
    return "".join(parts)


def confirm(lang: str, person: Person, action: str, question: str, yes: str) -> str:
    """Suspend and reject ask first; the yes and the way back are far apart."""
    return (
        f'<section class="confirm"><p>{question}</p>'
        + _post(f"people/{person.id}/{action}", yes, cls="danger", fields={"confirm": "yes"})
        + f'<p><a href="#" class="back" data-view="people/{person.id}">'
        f"{_e(t(lang, 'board.cancel'))}</a></p></section>"
    )


# ---------------------------------------------------------------------------- roster


def _span(shift: Any) -> tuple[int, int]:
    return shift.start_minute, shift.end_minute


def roster_grid(
    lang: str,
    prefecture: str,
    shifts: list[tuple[Any, Person]],
    officers: list[Person],
    flash: str = "",
) -> str:
    """The weekly duty roster of a prefecture as a grid: a row per weekday, a column per
    span of hours; each cell names the officers (✕ removes a shift), and a form adds."""
    postings = load_postings()
    blocks = {span: code for code, span in roster.SHIFT_BLOCKS.items()}
    spans = sorted(
        {_span(s) for s, _ in shifts} | {roster.SHIFT_BLOCKS["day"], roster.SHIFT_BLOCKS["night"]}
    )
    header = "".join(f"<th>{_e(roster.hhmm(a))}–{_e(roster.hhmm(b))}</th>" for a, b in spans)
    body = []
    for day in range(7):
        cells = []
        for span in spans:
            names = "".join(
                f'<span class="who">{_e(name_of(p))}'
                f'<form method="post" data-action="roster/{s.id}/remove" class="x">'
                f'<input type="hidden" name="prefecture" value="{_e(prefecture)}">'
                f'<button type="submit" aria-label="✕">✕</button></form></span>'
                for s, p in shifts
                if s.weekday == day and _span(s) == span
            )
            cells.append(f"<td>{names}</td>")
        body.append(f"<tr><th>{_e(t(lang, f'sos.day.{day}'))}</th>{''.join(cells)}</tr>")
    tabs = "".join(
        f'<a href="#" class="chip{" on" if p.code == prefecture else ""}" '
        f'data-view="roster?prefecture={_e(p.code)}">'
        f"{_e(postings.name(p.code, lang, short=True))}</a>"
        for p in postings.prefectures()
    )
    area = postings.name(prefecture, lang, short=True)
    if officers:
        who = "".join(f'<option value="{o.id}">{_e(name_of(o))}</option>' for o in officers)
        days = "".join(
            f'<label class="day"><input type="checkbox" name="day" value="{d}">'
            f"{_e(t(lang, f'sos.day.{d}'))}</label>"
            for d in range(7)
        )
        block_options = "".join(
            f'<option value="{code}">{_e(t(lang, f"sos.block.{code}"))}</option>'
            for code in roster.SHIFT_BLOCKS
        )
        add = (
            f"<h2>{_e(t(lang, 'sos.roster.add'))}</h2>"
            f'<form method="post" data-action="roster/add" class="add">'
            f'<input type="hidden" name="prefecture" value="{_e(prefecture)}">'
            f'<select name="officer">{who}</select><div class="days">{days}</div>'
            f'<select name="block">{block_options}</select>'
            f'<button type="submit" class="primary">{_e(t(lang, "sos.roster.add"))}</button>'
            "</form>"
        )
    else:
        add = f'<p class="muted">{_e(t(lang, "sos.roster.no_officers", area=area))}</p>'
    names = {b: t(lang, f"sos.block.{c}") for b, c in blocks.items()}
    legend = "".join(f"<li>{_e(label)}</li>" for span, label in names.items() if span in spans)
    return (
        f"{nav(lang, 'roster', True)}<h1>{t(lang, 'sos.roster.header', area=area)}</h1>"
        f'<div class="chips">{tabs}</div>{_flash(flash)}'
        f'<div class="grid"><table><thead><tr><th></th>{header}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
        f'<ul class="muted small">{legend}</ul>{add}'
    )


# ---------------------------------------------------------------------------- import


def import_view(lang: str, count: int, waiting: list[Person], page: int, flash: str = "") -> str:
    rows = "".join(
        f"<li><span>{_e(p.real_name or '-')}"
        f"<small>{_e(p.phone or '')} · {_e(_posting(lang, p))}</small></span></li>"
        for p in waiting
    )
    body = f'<ul class="list people">{rows}</ul>' if rows else _none(lang)
    paging = pager(lang, "import", page, len(waiting), count)
    upload = (
        '<form method="post" data-action="import" enctype="multipart/form-data" '
        f'data-progress="{_e(t(lang, "board.import.uploading"))}" class="upload">'
        f"<label>{_e(t(lang, 'board.import.file'))}"
        '<input type="file" name="file" accept=".xlsx,.csv" required></label>'
        f'<button type="submit" class="primary">{_e(t(lang, "board.import.send"))}</button>'
        "</form>"
    )
    exports = (
        '<div class="actions">'
        + _post("import/template", t(lang, "board.import.template"))
        + _post("import/links", t(lang, "board.import.links_xlsx"), fields={"format": "xlsx"})
        + _post("import/links", t(lang, "board.import.links_csv"), fields={"format": "csv"})
        + "</div>"
    )
    return (
        f"{nav(lang, 'import', True)}<h1>{_e(t(lang, 'board.import.title'))}</h1>"
        f"{_flash(flash)}<p class='muted small'>{_e(t(lang, 'board.import.columns'))}</p>"
        f"{upload}{exports}<h2>{_e(t(lang, 'board.import.waiting', count=count))}</h2>"
        f"{body}{paging}"
    )


# ---------------------------------------------------------------------------- broadcasts, questions


def broadcast_reports(lang: str, reports: list[tuple[Any, str]], zone: ZoneInfo) -> str:
    rows = "".join(
        f'<li><div class="card"><small>'
        f"{_e(summary.format_local(b.started_at or b.created_at, zone))}</small>\n"
        f"{text}</div></li>"
        for b, text in reports
    )
    body = f'<ul class="list plain">{rows}</ul>' if rows else _none(lang, "broadcast.list.empty")
    return f"{nav(lang, 'broadcasts', True)}<h1>{_e(t(lang, 'board.broadcasts.title'))}</h1>{body}"


def handoff_list(lang: str, items: list[tuple[Any, str]], zone: ZoneInfo, flash: str = "") -> str:
    """items: (handoff, the chat's text of it for admins)."""
    rows = "".join(
        f'<li><div class="card"><small>{_e(summary.format_local(h.created_at, zone))}</small>\n'
        f"{text}</div>"
        f'<form method="post" data-action="questions/{h.id}/answer" class="answer">'
        f'<textarea name="answer" rows="3" maxlength="3000" required '
        f'placeholder="{_e(t(lang, "board.questions.placeholder"))}"></textarea>'
        f'<button type="submit" class="primary">{_e(t(lang, "board.questions.send"))}</button>'
        "</form></li>"
        for h, text in items
    )
    body = f'<ul class="list plain">{rows}</ul>' if rows else _none(lang, "board.questions.none")
    title = _e(t(lang, "board.questions.title", count=len(items)))
    return f"{nav(lang, 'questions', True)}<h1>{title}</h1>{_flash(flash)}{body}"
