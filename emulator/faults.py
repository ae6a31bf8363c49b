"""Fault injection: make chosen requests fail the ways Telegram (or the network) fails.

Rules match by method (or all methods) and fire with a probability drawn from a seeded RNG
and/or for the next N matching calls::

    emu.faults.add(Fault.server_error(), methods="sendMessage", times=2)    # next 2 calls
    emu.faults.add(Fault.lost_reply(), probability=0.2)                    # 20% of calls
    emu.faults.add(Fault.retry_after(3), methods=["sendMessage", "sendPhoto"], times=1)
    emu.faults.add(Fault.server_error(503), methods="editMessageText", chats=42, times=1)

Rules without ``methods`` skip ``getUpdates`` (faulting the long poll is opt-in:
pass ``methods="getUpdates"``). ``emu.faults.injected`` lists ``(method, kind)`` served.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class FaultKind(StrEnum):
    SERVER_ERROR = "server_error"  # 5xx, request not performed
    RETRY_AFTER = "retry_after"  # 429 with retry_after, request not performed
    SLOW = "slow"  # reply delayed by ``delay`` seconds (client read timeout)
    DROP = "drop"  # connection closed without a reply, request not performed
    LOST_REPLY = "lost_reply"  # request performed, then connection closed without a reply


NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class Fault:
    """What to do to a request. ``seconds`` is the retry_after (RETRY_AFTER) or the delay
    (SLOW); ``performed`` (SLOW only) performs the request before the delay instead of after.
    """

    kind: FaultKind
    status: int = 502
    seconds: float = 1
    performed: bool = False

    @classmethod
    def server_error(cls, status: int = 502) -> Fault:
        """An nginx-style 5xx page (not JSON), like Telegram's front end serves."""
        return cls(FaultKind.SERVER_ERROR, status=status)

    @classmethod
    def retry_after(cls, seconds: int = 1) -> Fault:
        return cls(FaultKind.RETRY_AFTER, status=429, seconds=seconds)

    @classmethod
    def slow(cls, delay: float = 10.0, *, performed: bool = False) -> Fault:
        return cls(FaultKind.SLOW, seconds=delay, performed=performed)

    @classmethod
    def drop(cls) -> Fault:
        return cls(FaultKind.DROP)

    @classmethod
    def lost_reply(cls) -> Fault:
        return cls(FaultKind.LOST_REPLY)


@dataclass
class FaultRule:
    fault: Fault
    methods: frozenset[str] | None  # lower-case names; None = all but getUpdates
    probability: float = 1.0
    remaining: int | None = None  # None = unlimited
    hits: int = 0
    chats: frozenset[int] | None = None  # only requests to these chat_ids; None = any

    def matches(self, method: str, chat_id: int | None = None) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.chats is not None and chat_id not in self.chats:
            return False
        if self.methods is None:
            return method != "getupdates"
        return method in self.methods


@dataclass
class FaultInjector:
    seed: int = 0
    rules: list[FaultRule] = field(default_factory=list)
    injected: list[tuple[str, FaultKind]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def add(
        self,
        fault: Fault,
        *,
        methods: str | Iterable[str] | None = None,
        probability: float = 1.0,
        times: int | None = None,
        chats: int | Iterable[int] | None = None,
    ) -> FaultRule:
        """Add a rule; ``times=None`` keeps it active until :meth:`clear`. ``chats``: only
        requests whose ``chat_id`` is one of these (e.g. one person's replies, while a
        broadcast goes on to everybody else)."""
        names = None
        if methods is not None:
            names = frozenset(
                [methods.lower()] if isinstance(methods, str) else (m.lower() for m in methods)
            )
        targets = None
        if chats is not None:
            targets = frozenset([chats] if isinstance(chats, int) else chats)
        rule = FaultRule(fault, names, probability, times, chats=targets)
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def count(self, kind: FaultKind | str | None = None, method: str | None = None) -> int:
        return sum(
            1
            for m, k in self.injected
            if (kind is None or k == kind) and (method is None or m.lower() == method.lower())
        )

    def pick(self, method: str, chat_id: object = None) -> Fault | None:
        """The fault to apply to this call of ``method`` (canonical name) to ``chat_id``
        (as sent: a number or a string), if any."""
        lowered = method.lower()
        try:
            chat = int(chat_id) if chat_id is not None else None  # type: ignore[call-overload]
        except (TypeError, ValueError):
            chat = None
        for rule in self.rules:
            if not rule.matches(lowered, chat):
                continue
            if rule.probability < 1.0 and self.rng.random() >= rule.probability:
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
            rule.hits += 1
            self.injected.append((method, rule.fault.kind))
            return rule.fault
        return None
