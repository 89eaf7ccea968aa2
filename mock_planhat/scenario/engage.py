"""Engage audiences and computed traits: keys, membership kept between syncs, the calls.

The first sync of an audience sends ``true`` for every member; each later sync sends only
the changes: ``true`` for users who entered, ``false`` for users who left. A computed trait
is sent for a user only when its value changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ENGAGE_INTEGRATIONS = {"All": False, "Planhat": True}
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def audience_key(name: str) -> str:
    """Segment's key for an audience name: lower case, non-alphanumeric runs → one ``_``."""
    return _NON_ALNUM.sub("_", name.lower()).strip("_")


@dataclass
class Computation:
    """One audience or computed trait and what the destination was last told, per user."""

    key: str
    computation_class: str  # "audience" | "trait"
    computation_id: str
    space_id: str
    sent: dict[str, Any] = field(default_factory=dict)  # userId -> last value sent
    synced: bool = False

    def personas(self) -> dict:
        return {"computation_class": self.computation_class,
                "computation_id": self.computation_id,
                "computation_key": self.key,
                "namespace": self.space_id,
                "space_id": self.space_id}

    def audience_changes(self, members: list[str]) -> list[tuple[str, bool]]:
        """(userId, value) to send for this sync, and remember them."""
        wanted = dict.fromkeys(members)
        changes: list[tuple[str, bool]] = []
        if not self.synced:
            changes = [(user, True) for user in wanted]
        else:
            changes += [(u, True) for u in wanted if self.sent.get(u) is not True]
            changes += [(u, False) for u, v in self.sent.items() if v is True and u not in wanted]
        self.synced = True
        for user, value in changes:
            self.sent[user] = value
        return changes

    def trait_changes(self, values: dict[str, Any]) -> list[tuple[str, Any]]:
        changes = [(u, v) for u, v in values.items()
                   if u not in self.sent or self.sent[u] != v or type(self.sent[u]) is not type(v)]
        self.synced = True
        for user, value in changes:
            self.sent[user] = value
        return changes

    def expected(self) -> dict[str, Any]:
        return dict(self.sent)


def engage_identify(computation: Computation, user_id: str | None, value: Any,
                    email: str | None = None, anonymous_id: str | None = None) -> dict:
    """The identify Engage sends to a user-property destination (defaults filled later).

    Engage sends one per identifier of the profile: with ``email`` (and no ``user_id``) it is
    the email-only identify, carrying an ``anonymousId`` as Segment requires one of the two.
    """
    call: dict[str, Any] = {"type": "identify", "userId": user_id}
    if anonymous_id is not None:
        call["anonymousId"] = anonymous_id
    call.update({
        "traits": {**({"email": email} if email else {}), computation.key: value},
        "context": {"personas": computation.personas()},
        "integrations": dict(ENGAGE_INTEGRATIONS),
    })
    return call
