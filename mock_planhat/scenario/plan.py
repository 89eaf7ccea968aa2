"""From a scenario to a plan: the exact Segment calls, faults and expectations, in order.

Planning needs no fake: calls, generated users and Engage deltas depend only on the file,
its seed and a fixed clock, so the same file always yields byte-identical calls.
"""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from translator.mapping import str_id

from .engage import Computation, audience_key, engage_identify
from .load import CALL_TYPES, REF, Scenario

DEFAULT_CLOCK = "2024-01-01T00:00:00Z"
LIBRARY = {"name": "analytics-python", "version": "2.3.3"}
ENGAGE_LIBRARY = {"name": "unknown", "version": "unknown"}


@dataclass
class Action:
    kind: str  # "send" | "fault" | "clock" | "request" | "expect"
    path: tuple  # where in the document
    label: str
    calls: list[dict] = field(default_factory=list)
    fault: dict = field(default_factory=dict)
    expect: dict = field(default_factory=dict)
    engage: dict = field(default_factory=dict)  # expected custom values: key -> {userId: v}
    now: str = ""  # kind "clock": the tenant clock's new time
    request: dict = field(default_factory=dict)  # kind "request": method, path, body, status


class Clock:
    def __init__(self, start: str):
        self.now = datetime.strptime(start.replace("Z", "").split(".")[0], "%Y-%m-%dT%H:%M:%S")
        self.now = self.now.replace(tzinfo=timezone.utc)

    def text(self, when: datetime | None = None) -> str:
        return (when or self.now).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def tick(self) -> str:
        stamp = self.text()
        self.now += timedelta(seconds=1)
        return stamp


def _keep_newest(active: dict[str, datetime], user_id, when: datetime) -> None:
    """Remember ``when`` as the user's latest activity unless a later one is known."""
    if when > active.get(user_id, when - timedelta(1)):
        active[user_id] = when


def duration(value) -> timedelta:
    """A schema-checked duration (``P7D``, ``PT1H`` or seconds) as a timedelta."""
    from ..snapshot import parse_duration

    return timedelta(milliseconds=parse_duration(value, "duration"))


def _keep(value):
    return value


class Planner:
    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.rng = random.Random(scenario.seed)
        self.clock = Clock(scenario.data.get("clock", DEFAULT_CLOCK))
        self.users: dict[str, list] = {}  # generate name -> [User]
        self.emails: dict[str, str] = {}  # userId of a generated user -> its email
        self.active: dict[str, dict[str, datetime]] = {}  # generate name -> userId -> latest
        self.computations: dict[str, Computation] = {}  # key -> Computation
        self.names: dict[str, str] = {}  # audience name or key -> key
        self.space_id = "spa_" + self._hex(22)

    def _hex(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    # ----- calls ---------------------------------------------------------------------------
    def complete(self, call: dict, library: dict = LIBRARY, at: datetime | None = None,
                 fresh: bool = False) -> dict:
        """Fill a call's defaults the way Segment's libraries do. The call's values are
        copied, unless ``fresh`` says nothing else holds them (a generated call: copying each
        of 500,000 was ~8 % of a 100,000-user run)."""
        clone = _keep if fresh else copy.deepcopy
        out: dict[str, Any] = {"type": call["type"]}
        for key, value in call.items():
            if key not in ("type", "context"):
                out[key] = clone(value)
        out.setdefault("anonymousId", None)
        out["context"] = {"library": dict(library), **clone(call.get("context") or {})}
        out.setdefault("integrations", {})
        out.setdefault("messageId", str(uuid.UUID(int=self.rng.getrandbits(128), version=4)))
        out.setdefault("timestamp", self.clock.tick() if at is None else self.clock.text(at))
        return out

    def note_active(self, user_id, when: datetime) -> None:
        """A track or page by a generated user: ``activeWithin`` selectors count it."""
        for name, users in self.users.items():
            active = self.active.setdefault(name, {})
            if user_id in active or any(u.userId == user_id for u in users):
                _keep_newest(active, user_id, when)
                return

    def user_id(self, value):
        """A userId, or the userId a reference ('@users[3]') names."""
        user = self.ref_user(value)
        return user.userId if user is not None else value

    def ref_user(self, value):
        if not isinstance(value, str) or not value.startswith("@"):
            return None
        match = REF.match(value)
        return self.users[match.group(1)][int(match.group(2))]

    def members(self, spec) -> list[str]:
        items = spec if isinstance(spec, list) else [spec]
        out: list[str] = []
        for item in items:
            if isinstance(item, str):
                match = REF.match(item) if item.startswith("@") else None
                if match and match.group(3):
                    start = int(match.group(2)) if match.group(2) else None
                    stop = int(match.group(4)) if match.group(4) else None
                    out += [u.userId for u in self.users[match.group(1)][start:stop]]
                else:
                    out.append(self.user_id(item))
            else:
                users = self.users[item["from"]]
                if "slice" in item:
                    start, stop = item["slice"]
                    chosen = users[start:stop]
                elif "indexes" in item:
                    chosen = [users[i] for i in item["indexes"]]
                elif "activeWithin" in item:
                    since = self.clock.now - duration(item["activeWithin"])
                    active = self.active.get(item["from"], {})
                    chosen = [u for u in users
                              if since <= active.get(u.userId, since - timedelta(1))
                              <= self.clock.now]
                elif "fraction" in item:
                    picked = self.rng.sample(range(len(users)),
                                             round(item["fraction"] * len(users)))
                    chosen = [users[i] for i in sorted(picked)]
                else:
                    chosen = users
                out += [u.userId for u in chosen]
        return list(dict.fromkeys(out))

    # ----- steps ---------------------------------------------------------------------------
    def actions(self) -> Iterator[Action]:
        """The actions, planned one at a time. A generate step's ``calls`` is an iterator
        that uses the seeded random source: consume it before asking for the next action
        (``plan()`` does), so the same file always gives the same calls."""
        for index, step in enumerate(self.scenario.data.get("steps") or []):
            kind = next(k for k in step if k != "note")
            body = step[kind]
            path = ("steps", index, kind)
            label = f"steps[{index}] {kind}" + (f" ({step['note']})" if "note" in step else "")
            yield self.step(kind, body, path, label)
        if "expect" in self.scenario.data:
            yield self.expect(self.scenario.data["expect"], ("expect",), "expect")

    def plan(self) -> list[Action]:
        actions = []
        for action in self.actions():
            action.calls = list(action.calls)
            actions.append(action)
        return actions

    def step(self, kind: str, body: dict, path: tuple, label: str) -> Action:
        if kind in CALL_TYPES:
            call = {"type": kind, **body}
            for key in ("userId", "previousId"):
                if key in call:
                    call[key] = self.user_id(call[key])
            done = self.complete(call)
            if kind in ("track", "page"):
                self.note_active(call.get("userId"), self.clock.now - timedelta(seconds=1))
            return Action("send", path, label, calls=[done])
        if kind == "generate":
            from .generate import generate, user_calls

            users, _ = generate(body, self.rng)
            name = body.get("name", "users")
            self.users[name] = users
            self.emails.update((u.userId, u.email) for u in users)
            active = self.active.setdefault(name, {})
            spread = duration(body["spread"]) if "spread" in body else None

            def calls():  # made as they are sent: the runner never holds them all
                for index, user in enumerate(users):
                    users[index] = user.member()  # its calls are made here; keep its ids
                    for call in user_calls(user, body, self.rng):
                        at = None
                        if spread is not None and call["type"] in ("track", "page"):
                            at = self.clock.now - spread * self.rng.random()
                            at -= timedelta(microseconds=at.microsecond % 1000)
                        yield self.complete(call, at=at, fresh=True)
                        if call["type"] in ("track", "page"):
                            _keep_newest(active, user.userId,
                                         at or self.clock.now - timedelta(seconds=1))

            return Action("send", path, label + f": {len(users)} users", calls=calls())
        if kind == "audience":
            key = body.get("key") or audience_key(body["name"])
            comp = self.computations.get(key)
            if comp is None:
                comp = Computation(key, "audience", body.get("id") or "aud_" + self._hex(22),
                                   self.space_id)
                self.computations[key] = comp
            self.names[body["name"]] = self.names[key] = key
            changes = comp.audience_changes(self.members(body["members"]))
            identifiers = body.get("identifiers") or ["userId"]
            calls = []
            for user, value in changes:  # one identify per identifier, as Engage sends
                if "userId" in identifiers:
                    calls.append(self.complete(engage_identify(comp, user, value),
                                               ENGAGE_LIBRARY))
                if "email" in identifiers and user in self.emails:
                    anonymous = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
                    calls.append(self.complete(engage_identify(
                        comp, None, value, email=self.emails[user], anonymous_id=anonymous),
                        ENGAGE_LIBRARY))
            return Action("send", path, label + f" {key!r}: {len(calls)} changes", calls=calls)
        if kind == "computed_trait":
            key = body["key"]
            comp = self.computations.get(key)
            if comp is None:
                comp = Computation(key, "trait", body.get("id") or "tra_" + self._hex(22),
                                   self.space_id)
                self.computations[key] = comp
            self.names[key] = key
            values = {self.user_id(u): v for u, v in body["values"].items()}
            calls = [self.complete(engage_identify(comp, u, v), ENGAGE_LIBRARY)
                     for u, v in comp.trait_changes(values)]
            return Action("send", path, label + f" {key!r}: {len(calls)} changes", calls=calls)
        if kind == "clock":
            if "now" in body:
                self.clock = Clock(body["now"])
            else:
                self.clock.now += duration(body["advance"])
            return Action("clock", path, label, now=self.clock.text())
        if kind == "request":
            return Action("request", path, f"{label} {body['method']} {body['path'][:80]}",
                          request=body)
        if kind == "fault":
            rule = {"method": body.get("method", "*"), "path": body.get("path", "*"),
                    "status": body["status"], "count": body.get("count", 1)}
            if "retryAfter" in body:
                rule["retryAfter"] = body["retryAfter"]
            return Action("fault", path, label, fault=rule)
        return self.expect(body, path, label)

    def expect(self, body: dict, path: tuple, label: str) -> Action:
        resolved = copy.deepcopy(body)
        for finder in resolved.get("companies") or []:
            if "externalId" in finder:
                finder["externalId"] = str_id(finder["externalId"])
        for kind in ("endusers", "pending"):
            for finder in resolved.get(kind) or []:
                if "externalId" in finder:  # a number is stringified, as the destination does
                    finder["externalId"] = str_id(self.user_id(finder["externalId"]))
                if "email" in finder:
                    user = self.ref_user(finder["email"])
                    finder["email"] = user.email if user is not None else finder["email"]
        engage = {}
        for name in list(resolved.get("audiences") or []) + list(resolved.get("traits") or []):
            key = self.names[name]
            engage[key] = self.computations[key].expected()
        return Action("expect", path, label, expect=resolved, engage=engage)


def plan(scenario: Scenario) -> list[Action]:
    return Planner(scenario).plan()


def iter_plan(scenario: Scenario) -> Iterator[Action]:
    """The plan one action at a time (see ``Planner.actions``): what the runner uses, so a
    generate step of 100,000 users is never held whole."""
    return Planner(scenario).actions()


def iter_calls(scenario: Scenario) -> Iterator[dict]:
    """Every Segment call the scenario sends, in order, one at a time."""
    for action in iter_plan(scenario):
        yield from action.calls


def planned_calls(scenario: Scenario) -> list[dict]:
    """Every Segment call the scenario sends, in order."""
    return list(iter_calls(scenario))
