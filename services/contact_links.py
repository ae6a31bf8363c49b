"""A cadre's emergency contacts on the bot: the cadre makes an invitation link (role
*contact*, one use); whoever registers with it is told of that cadre's alerts and of
nothing else. The link is found through ``person.invitation_id``, which registration
records, so registration needs no special step to create it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, select

from models import ContactLink, EmergencyContact, Invitation, Person, Role, Status
from services import audit, clock, people

INVITATION_DAYS = 7
MAX_OPEN_LINKS = 5


class ContactLinkError(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass
class LinkView:
    link: ContactLink
    invitation: Invitation
    contact: Person | None  # None until someone registered with the invitation


def create_invitation(session: Session, cadre: Person) -> Invitation:
    """A one-use contact invitation for `cadre`, valid for a week."""
    assert cadre.id is not None
    open_links = [v for v in links_of(session, cadre.id) if v.contact is None and usable(v)]
    if len(open_links) >= MAX_OPEN_LINKS:
        raise ContactLinkError("sos.contacts.too_many")
    invitation = people.create_invitation(
        session, cadre, Role.CONTACT, timedelta(days=INVITATION_DAYS), 1
    )
    assert invitation.id is not None
    session.add(ContactLink(cadre_person_id=cadre.id, invitation_id=invitation.id))
    session.flush()
    audit.record(
        session,
        "contact.invited",
        actor=cadre.telegram_id,
        target_person_id=cadre.id,
        invitation=invitation.id,
    )
    return invitation


def usable(view: LinkView) -> bool:
    """Whether a link's invitation can still be used (not withdrawn, expired or used)."""
    inv = view.invitation
    if view.link.revoked_at is not None or inv.revoked:
        return False
    if inv.expires_at is not None and inv.expires_at <= clock.now():
        return False
    return inv.max_uses is None or inv.uses < inv.max_uses


def links_of(session: Session, cadre_id: int) -> list[LinkView]:
    """The cadre's contact links (revoked ones left out), with the contact if they joined."""
    query = (
        select(ContactLink, Invitation)
        .join(Invitation, col(Invitation.id) == col(ContactLink.invitation_id))
        .where(ContactLink.cadre_person_id == cadre_id, col(ContactLink.revoked_at).is_(None))
        .order_by(col(ContactLink.id))
    )
    views = []
    for link, invitation in session.exec(query):
        contact = session.exec(
            select(Person).where(Person.invitation_id == invitation.id, Person.role == Role.CONTACT)
        ).first()
        views.append(LinkView(link, invitation, contact))
    return views


def overview(session: Session, cadre_id: int) -> tuple[list[EmergencyContact], list[LinkView]]:
    """What /contacts shows a cadre: the emergency contacts of their profile, and their
    links to the bot (those not withdrawn)."""
    return people.emergency_contacts(session, cadre_id), links_of(session, cadre_id)


def contacts_of(session: Session, cadre_id: int) -> list[Person]:
    """Active contacts who joined the bot through one of the cadre's invitations."""
    query = (
        select(Person)
        .join(ContactLink, col(ContactLink.invitation_id) == col(Person.invitation_id))
        .where(
            ContactLink.cadre_person_id == cadre_id,
            col(ContactLink.revoked_at).is_(None),
            Person.role == Role.CONTACT,
            Person.status == Status.ACTIVE,
        )
        .order_by(col(Person.id))
    )
    return list(session.exec(query))


def cadres_of(session: Session, contact: Person) -> list[int]:
    """The cadres a contact is linked to (by the invitation they registered with)."""
    if contact.role != Role.CONTACT or contact.invitation_id is None:
        return []
    query = select(ContactLink.cadre_person_id).where(
        ContactLink.invitation_id == contact.invitation_id, col(ContactLink.revoked_at).is_(None)
    )
    return list(session.exec(query))


def revoke(session: Session, cadre: Person, link_id: int) -> bool:
    """The cadre removes a contact (or withdraws an unused invitation)."""
    link = session.get(ContactLink, link_id)
    if link is None or link.cadre_person_id != cadre.id or link.revoked_at is not None:
        return False
    link.revoked_at = clock.now()
    session.add(link)
    invitation = session.get(Invitation, link.invitation_id)
    if invitation is not None:
        invitation.revoked = True
        session.add(invitation)
    audit.record(
        session, "contact.removed", actor=cadre.telegram_id, target_person_id=cadre.id, link=link_id
    )
    return True
