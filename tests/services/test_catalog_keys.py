"""Every catalog key the code can build at run time exists in both languages with the same
placeholders. The code is scanned for keys built with an f-string (``f"sos.tl.{kind}"``);
each such template must be listed below with the values it can take (taken from the enums
and tuples the code builds it from), so that a new template fails here until its values are
enumerated, and a value without a text fails here rather than in front of a cadre."""

from __future__ import annotations

import re
import string
from pathlib import Path

from handlers import checkin, form, menus
from handlers.care import policy as care_handlers
from models import AlertStatus, Role, Status
from models.broadcasts import BroadcastStatus
from models.care import OxygenUrgency, OxygenWhat
from models.health import RED_FLAGS, Feeling, Tier
from models.knowledge import DocumentOrigin
from models.outbox import UNREACHABLE_CODES
from services import oxygen, roster
from services.alerts import policy, raising, respond
from services.care_policy import EXAM_CONTENTS, Band
from services.duty_channels import checks, groups
from services.health import reports
from services.i18n import LANGUAGES, catalog
from services.permissions import Denial
from webapp import admin_pages

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for d in ("handlers", "services", "bot", "webapp") for p in (ROOT / d).rglob("*.py")]
TEMPLATE = re.compile(r"""f(["'])((?:[a-z_]+\.)+[a-z_0-9]*\{.*?)\1""")

# Templates that are audit actions or other names, not catalog keys.
NOT_CATALOG = {
    "denied.{action}",
    "denied.{Action.HANDLE_OXYGEN}",
    "denied.{Action.REQUEST_OXYGEN}",
    "person.{status}",
    "knowledge.document.{origin}",
    "directory.{field}",
    "aiohttp.{exc.__class__.__name__}: {exc}",
    "demo.persona.{p.key}",  # the demo's personas: checked by tests/e2e/test_demo.py
}


def _keys(prefix: str, values, suffix: str = "") -> list[str]:
    return [f"{prefix}{v}{suffix}" for v in values]


STATUSES = [s.value for s in Status]
ROLES = [r.value for r in Role]
# template as written in the code -> every key it can produce
DYNAMIC: dict[str, list[str]] = {
    "deny.{denial}": _keys("deny.", [d.value for d in Denial]),
    "deny.{person.status}": _keys("deny.", [s for s in STATUSES if s != Status.ACTIVE]),
    "deny.role.{role}": _keys("deny.role.", (Role.CADRE, Role.DUTY_OFFICER, Role.ADMIN)),
    "help.role.{person.role}": _keys("help.role.", ROLES),
    "help.task.{task}": _keys("help.task.", [*menus.HELP_TASKS, "terms"]),
    "role.{actor.role}": _keys("role.", ROLES),
    "role.{person.role}": _keys("role.", ROLES),
    "role.{role}": _keys("role.", ROLES),
    "role.{value}": _keys("role.", ROLES),
    "cmd.{name}": _keys(
        "cmd.",
        set(menus.GUEST_COMMANDS) | {c for cs in menus.ROLE_COMMANDS.values() for c in cs},
    ),
    # form.ask() is also called for the confirmation step, which shows the summary instead
    "form.ask.{field}": _keys("form.ask.", form.REGISTER_FIELDS),
    "form.end.{years}y": _keys("form.end.", (1, 2, 3), "y"),
    "me.edit.{a}": _keys("me.edit.", form.EDIT_GROUPS),
    "me.edit.{b}": _keys("me.edit.", form.EDIT_GROUPS),
    "people.alt_source.{person.altitude_source}": _keys("people.alt_source.", ("county", "self")),
    "people.done.{outcome}": _keys("people.done.", ("suspended", "reinstated")),
    "people.told.{outcome}": _keys("people.told.", ("suspended", "reinstated")),
    "people.status.{person.status}": _keys("people.status.", STATUSES),
    "people.filter.{status}": _keys("people.filter.", ("pending", "active", "suspended", "all")),
    "people.filter.{code}": _keys("people.filter.", admin_pages.PEOPLE_FILTERS),
    "invite.days.{days}": _keys("invite.days.", (1, 7, 30, 0)),
    "invite.uses.{uses}": _keys("invite.uses.", (1, 5, 20, 0)),
    "health.feel.{f}": _keys("health.feel.", [f.value for f in Feeling]),
    "health.flag.{flag}": _keys("health.flag.", RED_FLAGS),
    "health.functional.{level}": _keys("health.functional.", range(4)),
    "health.lls.{step}.{level}": [
        f"health.lls.{item}.{level}" for item in checkin.LLS_ITEMS for level in range(4)
    ],
    "health.ask.{step}": _keys("health.ask.", checkin.STEPS),
    "health.tier.{tier}": _keys("health.tier.", [t.value for t in Tier]),
    "sos.category.{category}": _keys("sos.category.", policy.CATEGORIES),
    "sos.category.{alert.category}": _keys("sos.category.", policy.CATEGORIES),
    "sos.category.{detail.get('category', 'other')}": _keys("sos.category.", policy.CATEGORIES),
    "sos.cause.{detail.get('cause', 'sos')}": _keys("sos.cause.", policy.CAUSES),
    "sos.outcome.{o}": _keys("sos.outcome.", policy.OUTCOMES),
    "sos.outcome.{alert.outcome}": _keys("sos.outcome.", policy.OUTCOMES),
    "sos.outcome.{alert.outcome or 'on_site'}": _keys("sos.outcome.", policy.OUTCOMES),
    "sos.outcome.{detail.get('outcome', 'on_site')}": _keys("sos.outcome.", policy.OUTCOMES),
    "sos.tl.{event.kind}": _keys("sos.tl.", policy.EVENT_KINDS),
    "sos.alert.caller.{status}": _keys("sos.alert.caller.", raising.CALLER_STATUSES),
    "sos.alert.step.{cause}": _keys("sos.alert.step.", policy.CAUSES),
    "sos.relay.{cause}_added": _keys("sos.relay.", policy.CAUSES, "_added"),
    "sos.status.{alert.status}": _keys("sos.status.", [s.value for s in AlertStatus]),
    "sos.denied.{refusal}": _keys("sos.denied.", [r.value for r in respond.Refusal]),
    "sos.cadre.{what}": _keys("sos.cadre.", ("acknowledged", "resolved")),
    "sos.contact.{what}": _keys("sos.contact.", ("acknowledged", "resolved")),
    "channels.update.{what}": _keys("channels.update.", ("acknowledged", "resolved")),
    "channels.what.{alert.category}": _keys("channels.what.", policy.CATEGORIES),
    "sos.day.{d}": _keys("sos.day.", range(7)),
    "sos.day.{shift.weekday}": _keys("sos.day.", range(7)),
    "sos.block.{code}": _keys("sos.block.", roster.SHIFT_BLOCKS),
    "sos.dir.ask_{field}": _keys("sos.dir.ask_", ("name", "phone", "address")),
    "care.band.{band}": _keys("care.band.", [b.value for b in Band]),
    "care.band.{schedule.band}": _keys("care.band.", [b.value for b in Band]),
    "care.btn.policy.{code}": _keys("care.btn.policy.", care_handlers.POLICY_FIELDS),
    "care.btn.policy.{parts[3]}": _keys("care.btn.policy.", care_handlers.POLICY_FIELDS),
    "care.policy.{kind}.confirmed": [
        "care.policy.state.confirmed",
        "care.policy.state_short.confirmed",
    ],
    "care.policy.{kind}.setting": ["care.policy.state.setting", "care.policy.state_short.setting"],
    "care.policy.{kind}.proposed": [
        "care.policy.state.proposed",
        "care.policy.state_short.proposed",
    ],
    "kb.docs.origin.{version.origin}": _keys("kb.docs.origin.", [o.value for o in DocumentOrigin]),
    "import.reason.{reason}": _keys(  # services/roster_import.py: refuse("<reason>", ...)
        "import.reason.",
        re.findall(
            r'refuse\("([a-z_]+)"',
            (ROOT / "services" / "roster_import.py").read_text(encoding="utf-8"),
        ),
    ),
    "kb.docs.status.{status}": _keys("kb.docs.status.", ("current", "superseded")),
    "channels.why.{key}": _keys("channels.why.", [key for key, _ in checks._WHY]),
    "sos.{command}_usage": _keys("sos.", ("ack", "resolve"), "_usage"),
    "care.ox.place.{choice}": _keys("care.ox.place.", oxygen.PLACE_CHOICES),
    **{
        f"health.today.state.{{{name}}}": _keys("health.today.state.", reports.LISTED)
        for name in ("state", "page.state", "s")
    },
}
HEALTH_REASONS = [  # services/health/assessment.py: add("<key>", ...) and red_<flag>
    *re.findall(
        r'add\("([a-z_0-9]+)"',
        (ROOT / "services" / "health" / "assessment.py").read_text(encoding="utf-8"),
    ),
    *(f"red_{flag}" for flag in RED_FLAGS),
]
DYNAMIC.update(
    {  # the board (webapp/)
        "health.tier.{c.tier}": _keys("health.tier.", [t.value for t in Tier]),
        "people.status.{p.status}": _keys("people.status.", STATUSES),
        "role.{p.role}": _keys("role.", ROLES),
        "sos.block.{c}": _keys("sos.block.", roster.SHIFT_BLOCKS),
        "sos.day.{day}": _keys("sos.day.", range(7)),
        "sos.denied.{result.refusal}": _keys("sos.denied.", [r.value for r in respond.Refusal]),
        "sos.status.{a.status}": _keys("sos.status.", [s.value for s in AlertStatus]),
    }
)
DYNAMIC.update(
    {
        "broadcast.status.{broadcast.status}": _keys(
            "broadcast.status.", [s.value for s in BroadcastStatus]
        ),
        "care.ask.done_date.{form['kind']}": _keys("care.ask.done_date.", ("rest", "exam")),
        "care.content.{code}": _keys("care.content.", EXAM_CONTENTS),
        "care.content.{c}": _keys("care.content.", EXAM_CONTENTS),
        "care.ox.urgency.{urgency}": _keys("care.ox.urgency.", [u.value for u in OxygenUrgency]),
        "care.ox.what.{what}": _keys("care.ox.what.", [w.value for w in OxygenWhat]),
        "channels.label.{group.channel}": _keys(
            "channels.label.", [c.value for c in groups.GROUP_CHANNELS]
        ),
        "channels.set.bad_url_{request.channel}": _keys(
            "channels.set.bad_url_", [c.value for c in groups.GROUP_CHANNELS]
        ),
        "delivery.reason.{p.unreachable_reason or 'forbidden'}": _keys(
            "delivery.reason.", [c.value for c in UNREACHABLE_CODES]
        ),
        "health.officer.amber_{why}": _keys("health.officer.amber_", ("worse", "persist")),
        "health.reason.{key}": _keys("health.reason.", HEALTH_REASONS),
        "health.reason.{self.key}": _keys("health.reason.", HEALTH_REASONS),
        "kb.docs.state.{version.state}": _keys(
            "kb.docs.state.", ("current", "replaced", "retired")
        ),
    }
)


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def templates_in_code() -> set[str]:
    found = set()
    for path in SOURCES:
        for match in TEMPLATE.finditer(path.read_text(encoding="utf-8")):
            found.add(match.group(2))
    return found


def test_every_key_template_in_the_code_is_enumerated() -> None:
    known = set(DYNAMIC) | NOT_CATALOG
    unknown = sorted(t for t in templates_in_code() if t not in known)
    assert unknown == []


def test_every_key_a_template_can_produce_exists_in_both_languages() -> None:
    missing = sorted(
        f"{lang}: {key}"
        for keys in DYNAMIC.values()
        for key in keys
        for lang in LANGUAGES
        if key not in catalog(lang)
    )
    assert missing == []


def test_built_keys_have_the_same_placeholders_in_both_languages() -> None:
    zh, en = catalog("zh-Hans"), catalog("en")
    different = sorted(
        key
        for keys in DYNAMIC.values()
        for key in keys
        if key in zh and key in en and _placeholders(zh[key]) != _placeholders(en[key])
    )
    assert different == []
