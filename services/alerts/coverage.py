"""Alerts: coverage warnings. The admins are told (once per gap) when a prefecture with
active cadres has nobody on duty who can be reached, and (once per blocking) when a duty
officer blocked the bot.
"""

from __future__ import annotations

from sqlmodel import Session

from models import Priority
from services import clock, outbox, people, roster, state
from services.alerts.policy import Policy, is_unreachable
from services.i18n import t
from services.people import name_of
from services.postings import load_postings

# ---------------------------------------------------------------------------- coverage warnings

_COVERAGE = "sos_coverage"


def _area_name(prefecture: str, lang: str) -> str:
    postings = load_postings()
    return (
        postings.name(prefecture, lang, short=True)
        if postings.prefecture(prefecture)
        else prefecture
    )


def coverage_warnings(session: Session, policy: Policy) -> int:
    """Tell the admins (once per gap) when a prefecture with active cadres has nobody on
    duty who can be reached, and (once per blocking) when a duty officer blocked the bot.
    Returns how many warnings were queued."""
    now = clock.now()
    admins = [a for a in people.admins(session) if not is_unreachable(a)]
    gaps = state.load_all(session, _COVERAGE)
    queued = 0
    seen: set[str] = set()
    for cover in roster.coverage(session, now, policy.zone):
        seen.add(cover.prefecture)
        reachable = [p for p in cover.on_duty if not is_unreachable(p)]
        if reachable:
            if cover.prefecture in gaps:
                state.drop(session, _COVERAGE, cover.prefecture)
        elif cover.prefecture not in gaps:
            since = now.isoformat()
            state.put(session, _COVERAGE, cover.prefecture, {"since": since})
            for admin in admins:
                lang = admin.language
                outbox.enqueue_to(
                    session,
                    admin,
                    priority=Priority.URGENT,
                    idempotency_key=f"sos:gap:{cover.prefecture}:{since}:{admin.id}",
                    text=t(
                        lang,
                        "sos.coverage.gap",
                        prefecture=_area_name(cover.prefecture, lang),
                        cadres=t(lang, "sos.coverage.cadres", count=cover.cadres),
                        officers=t(lang, "sos.coverage.officers", count=len(cover.officers)),
                    ),
                    source="sos:coverage",
                )
                queued += 1
        for officer in cover.officers:
            since_blocked = getattr(officer, "unreachable_since", None)
            if since_blocked is None:
                continue
            for admin in admins:
                key = f"sos:blocked:{officer.id}:{since_blocked.isoformat()}:{admin.id}"[:120]
                if outbox.find(session, key) is not None:
                    continue
                lang = admin.language
                outbox.enqueue_to(
                    session,
                    admin,
                    priority=Priority.URGENT,
                    idempotency_key=key,
                    text=t(
                        lang,
                        "sos.coverage.blocked",
                        name=name_of(officer),
                        phone=officer.phone or "-",
                        prefecture=_area_name(cover.prefecture, lang),
                    ),
                    source="sos:coverage",
                )
                queued += 1
    for prefecture in set(gaps) - seen:  # no more cadres there: forget the gap
        state.drop(session, _COVERAGE, prefecture)
    return queued
