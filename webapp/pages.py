"""The board's HTML: the page shell and each view as a fragment, from the catalogs.

Texts shared with the chat (alert cards, timelines, /schedule) are Telegram HTML (<b>, <i>,
<code>, <a>), which is valid HTML; they are shown with white-space: pre-line. Everything
else a person typed is escaped here (services.i18n escapes catalog values)."""

from __future__ import annotations

import html
from datetime import date
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from models import AlertStatus
from services.alerts import policy
from services.board import AlertView, PersonView
from services.health import summary
from services.health.reports import LISTED, AreaPage
from services.i18n import t
from services.people import name_of, posting_text
from services.postings import load_postings

PAGE_SIZE = 50
SEARCH_MAX = 50  # characters of a name searched for
TELEGRAM_SCRIPT = "https://telegram.org/js/telegram-web-app.js"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def shell(lang: str) -> str:
    """The page Telegram opens. The script reads initData (from Telegram.WebApp, or the URL
    fragment tgWebAppData without telegram-web-app.js) and loads the views."""
    return f"""<!doctype html>
<html lang="{_e(lang)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<title>{_e(t(lang, "board.title"))}</title>
<link rel="stylesheet" href="static/board.css">
<script src="{TELEGRAM_SCRIPT}" async></script>
<script src="static/board.js" defer></script>
</head>
<body>
<main id="view" aria-live="polite"><p class="muted">{_e(t(lang, "board.loading"))}</p></main>
</body>
</html>
"""


OFFICER_TABS = (
    ("alerts", "board.tab.alerts"),
    ("today", "board.tab.today"),
    ("care", "board.tab.care"),
    ("oxygen", "board.tab.oxygen"),
)
ADMIN_TABS = (
    ("people", "board.tab.people"),
    ("roster", "board.tab.roster"),
    ("import", "board.tab.import"),
    ("broadcasts", "board.tab.broadcasts"),
    ("questions", "board.tab.questions"),
)


def nav(lang: str, current: str, admin: bool = False) -> str:
    tabs = OFFICER_TABS + (ADMIN_TABS if admin else ())
    links = "".join(
        f'<a href="#" data-view="{view}" class="tab{" on" if view == current else ""}">'
        f"{_e(t(lang, key))}</a>"
        for view, key in tabs
    )
    return f'<nav class="tabs">{links}</nav>'


def pager(lang: str, view: str, page: int, shown: int, total: int, **query: Any) -> str:
    """ "1–50 of 63" with the previous and next pages (page counts from 1)."""
    previous = _query(**query, page=page - 1) if page > 1 else None
    following = _query(**query, page=page + 1) if (page - 1) * PAGE_SIZE + shown < total else None
    return _pager(lang, view, page, shown, total, previous, following)


def keyset_pager(lang: str, view: str, page: int, found: AreaPage, **query: Any) -> str:
    """The same for a list read by id (services.health.reports.area_page): the previous
    page is the one before the first id shown, the next one after the last, so that a
    page far down costs what the first does."""
    people = found.people
    previous = following = None
    if people and found.more_before and page > 1:
        previous = _query(**query, before=people[0].id, page=page - 1)
    if people and found.more_after:
        following = _query(**query, after=people[-1].id, page=page + 1)
    return _pager(lang, view, page, len(people), found.total, previous, following)


def _pager(
    lang: str,
    view: str,
    page: int,
    shown: int,
    total: int,
    previous: str | None,
    following: str | None,
) -> str:
    if not total or not shown:
        return ""
    first = (page - 1) * PAGE_SIZE + 1
    last = min(first + shown - 1, total)
    first = min(first, last)
    links = []
    if previous is not None:
        target = f"{view}?{previous}"
        links.append(f'<a href="#" data-view="{_e(target)}">{_e(t(lang, "board.prev"))}</a>')
    links.append(f"<span>{_e(t(lang, 'board.page', first=first, last=last, total=total))}</span>")
    if following is not None:
        target = f"{view}?{following}"
        links.append(f'<a href="#" data-view="{_e(target)}">{_e(t(lang, "board.next"))}</a>')
    return f'<div class="pager">{"".join(links)}</div>'


def _back(lang: str, view: str) -> str:
    return f'<a href="#" class="back" data-view="{_e(view)}">{_e(t(lang, "board.back"))}</a>'


def notice(text: str, back: str | None = None) -> str:
    link = ""
    if back:
        link = f'<p><a href="#" class="back" data-view="{_e(back)}">◀</a></p>'
    return f'<section class="notice"><p>{_e(text)}</p>{link}</section>'


def no_area(lang: str, current: str, admin: bool = False) -> str:
    """An officer without a duty area yet: the tabs, and who can give them one."""
    return nav(lang, current, admin) + notice(t(lang, "care.area.no_area"))


def alert_list(lang: str, rows: list[tuple[Any, str]], admin: bool = False) -> str:
    items = "".join(
        f'<li class="alert-{_e(alert.status)}"><a href="#" data-view="alert/{alert.id}">'
        f'<span class="card">{line}</span></a></li>'
        for alert, line in rows
    )
    body = (
        f'<ul class="list">{items}</ul>'
        if rows
        else f'<p class="muted">{_e(t(lang, "board.alerts.empty"))}</p>'
    )
    title = _e(t(lang, "board.alerts.title", count=len(rows)))
    return f"{nav(lang, 'alerts', admin)}<h1>{title}</h1>{body}"


def alert(lang: str, view: AlertView, zone: ZoneInfo, flash: str = "") -> str:
    item = view.alert
    parts = [_back(lang, "alerts")]
    if flash:
        parts.append(f'<p class="flash" role="status">{flash}</p>')
    parts.append(f'<div class="card">{view.text}</div>')
    actions = []
    if item.status == AlertStatus.OPEN:
        actions.append(
            f'<form method="post" data-action="alert/{item.id}/ack">'
            f'<button type="submit" class="primary">{_e(t(lang, "sos.btn.ack"))}</button></form>'
        )
    if item.status in alerts_in_progress():
        buttons = "".join(
            f'<button type="submit" name="outcome" value="{o}">'
            f"{_e(t(lang, f'sos.outcome.{o}'))}</button>"
            for o in policy.OUTCOMES
        )
        actions.append(
            f'<form method="post" data-action="alert/{item.id}/resolve" class="outcomes">'
            f"<p>{_e(t(lang, 'sos.btn.resolve'))} · {_e(t(lang, 'board.alert.resolve_as'))}</p>"
            f"{buttons}</form>"
        )
    parts.extend(actions)
    lines = "".join(
        f"<li><time>{_e(summary.format_local(entry.at, zone))}</time> {entry.text}</li>"
        for entry in view.timeline
    )
    parts.append(f'<h2>{t(lang, "sos.tl.header")}</h2><ol class="timeline">{lines}</ol>')
    if view.note:
        parts.append(f'<p class="muted">{_e(t(lang, "board.alert.note", note=view.note))}</p>')
    parts.append(f'<p><a href="#" data-view="person/{item.person_id}">👤 →</a></p>')
    return "".join(parts)


def alerts_in_progress() -> tuple[str, ...]:
    return tuple(str(s) for s in policy.IN_PROGRESS)


def _query(**values: Any) -> str:
    return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def today(
    lang: str,
    day: date,
    found: AreaPage,
    *,
    area: list[str] | None,
    state: str,
    prefecture: str | None,
    county: str | None,
    name: str | None,
    page: int,
    admin: bool = False,
) -> str:
    """Today's check-ins of the viewer's area: a chip per state of /today with its count
    (RED, AMBER, not yet, paused, checked in, not due today), the filters (prefecture,
    county, a part of a name), how many repeat identical readings day after day (❓, as
    /today says) and one page of the chosen state."""
    postings = load_postings()
    codes = area if area is not None else [p.code for p in postings.prefectures()]
    all_ = _e(t(lang, "board.filter.all"))
    prefecture_options = "".join(
        f'<option value="{_e(code)}"{" selected" if code == prefecture else ""}>'
        f"{_e(postings.name(code, lang, short=True))}</option>"
        for code in codes
    )
    counties = postings.counties(prefecture) if prefecture else []
    county_options = "".join(
        f'<option value="{_e(c.code)}"{" selected" if c.code == county else ""}>'
        f"{_e(postings.name(c.code, lang))}</option>"
        for c in counties
    )
    form = (
        '<form class="filters" data-view-form="today">'
        f'<input type="hidden" name="state" value="{_e(state)}">'
        f"<label>{_e(t(lang, 'board.filter.prefecture'))}"
        f'<select name="prefecture" data-autosubmit><option value="">{all_}</option>'
        f"{prefecture_options}</select></label>"
        f"<label>{_e(t(lang, 'board.filter.county'))}"
        f'<select name="county" data-autosubmit{"" if counties else " disabled"}>'
        f'<option value="">{all_}</option>{county_options}</select></label>'
        f'<label class="wide">{_e(t(lang, "board.filter.name"))}'
        f'<input type="search" name="q" value="{_e(name or "")}" maxlength="{SEARCH_MAX}" '
        f'autocomplete="off" enterkeyhint="search"></label>'
        f'<button type="submit">{_e(t(lang, "board.filter.apply"))}</button></form>'
    )
    chips = "".join(
        f'<a href="#" class="chip chip-{s}{" on" if s == state else ""}" '
        f'data-view="today?{_query(state=s, prefecture=prefecture, county=county, q=name)}">'
        f"{_e(t(lang, f'health.today.state.{s}'))} <b>{found.counts.get(s, 0)}</b></a>"
        for s in LISTED
    )
    rows = "".join(
        f'<li><a href="#" data-view="person/{p.id}">{_e(name_of(p))}'
        f"{' ❓' if p.id in found.flagged else ''}"
        f"<small>{_e(posting_text(p, lang))}</small></a></li>"
        for p in found.people
    )
    suspicious = (
        f'<p class="flash warn">{_e(t(lang, "board.today.suspicious", count=found.suspicious))}</p>'
        if found.suspicious
        else ""
    )
    paging = keyset_pager(
        lang, "today", page, found, state=state, prefecture=prefecture, county=county, q=name
    )
    body = (
        f'<ul class="list people">{rows}</ul>'
        if rows
        else f'<p class="muted">{_e(t(lang, "board.today.none"))}</p>'
    )
    title = _e(t(lang, "board.today.title", date=day.isoformat()))
    return (
        f'{nav(lang, "today", admin)}<h1>{title}</h1>{form}<div class="chips">{chips}</div>'
        f'{suspicious}{body}{paging}<p class="muted small">{t(lang, "health.disclaimer")}</p>'
    )


def person(lang: str, view: PersonView, schedule: Any, zone: ZoneInfo) -> str:
    from handlers.care.schedule import schedule_text

    who = view.person
    readings = "".join(
        f"<li><time>{_e(summary.format_local(c.at, zone))}</time> "
        f"{_e(t(lang, f'health.tier.{c.tier}') if _has(f'health.tier.{c.tier}') else c.tier)}"
        f" {summary.vitals_line(lang, c)}</li>"
        for c in view.readings
    )
    none = f'<p class="muted">{_e(t(lang, "board.person.none"))}</p>'
    found_alerts = "".join(
        f'<li><a href="#" data-view="alert/{a.id}">#{a.id} '
        f"{_e(summary.format_local(a.created_at, zone))} "
        f"{_e(t(lang, f'sos.status.{a.status}'))}</a></li>"
        for a in view.alerts
    )
    care = f'<div class="card">{schedule_text(lang, schedule, of_someone=True)}</div>'
    return (
        f"{_back(lang, 'today')}<h1>{_e(name_of(who))}</h1>"
        f'<p class="muted">{_e(posting_text(who, lang))}<br>'
        f"{_e(t(lang, 'board.person.phone', phone=who.phone or '-'))}</p>"
        f"<h2>{_e(t(lang, 'board.person.chart'))}</h2>"
        f'<img class="chart" alt="" data-chart="person/{who.id}/chart.png" '
        'width="390" height="260">'
        f"<h2>{_e(t(lang, 'board.person.readings'))}</h2>"
        f"{f'<ol class=timeline>{readings}</ol>' if readings else none}"
        f"<h2>{_e(t(lang, 'board.person.care'))}</h2>{care}"
        f"<h2>{_e(t(lang, 'board.person.alerts'))}</h2>"
        f"{f'<ul class=list>{found_alerts}</ul>' if found_alerts else none}"
    )


def _has(key: str) -> bool:
    from services.i18n import has_key

    return has_key(key)
