"""Care schedules (low-altitude rest, physical examinations, oxygen): Care schedules issue.

Contract used by other features (implemented by the Care schedules work):
    last_rest_return(session, person_id) -> date | None
The day the person last came back up from a completed low-altitude rest, so that health
monitoring can restart closer checks (re-entry risk) for the days after it.
"""

from __future__ import annotations

from datetime import date

from sqlmodel import Session


def last_rest_return(session: Session, person_id: int) -> date | None:
    return None
