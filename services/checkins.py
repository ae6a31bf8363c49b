"""The check-in facts other features show (a thin re-export from services.health).

Contract used by the Emergency channel:
    last_checkin_line(session, person_id, lang, *, vitals=True) -> str | None
One line for an alert message: when the person last checked in, the result and the few
readings a responder needs (SpO2, heart rate, temperature, Lake Louise score). None when
they never checked in. Pass vitals=False for emergency contacts: they see only the time.

    attach_alert_chart(session, alert_id, cadre_id, responder, *, after) -> bool
Queue the cadre's 30-day chart right after the alert message `after` to a responder whose
area covers the cadre (the alert of a RED check-in; never to emergency contacts).
"""

from __future__ import annotations

from services.health.checkins import attach_alert_chart, last_checkin_line, latest

__all__ = ["attach_alert_chart", "last_checkin_line", "latest"]
