"""Checking an ``expect`` block against the fake's state: a list of readable mismatches."""

from __future__ import annotations

import difflib
import fnmatch
import json
from dataclasses import dataclass, field
from typing import Any

from ..models import MODELS
from ..store import norm_email

MISSING = "<missing>"
MAX_LISTED = 10


@dataclass
class Mismatch:
    what: str
    expected: Any
    found: Any
    key: tuple | None = None  # (externalId | email | id, value): the record it is about
    trace: list = field(default_factory=list)  # the decisions of the rows that touched it
    notes: list = field(default_factory=list)  # more that explains it (a breakdown)

    def render(self, indent: str = "  ") -> str:
        if isinstance(self.expected, (dict, list)) or isinstance(self.found, (dict, list)):
            exp = _pretty(self.expected).splitlines()
            got = _pretty(self.found).splitlines()
            diff = difflib.unified_diff(exp, got, "expected", "found", lineterm="", n=3)
            body = "\n".join(indent * 2 + line for line in diff)
            text = f"{indent}{self.what}:\n{body}"
        else:
            text = (f"{indent}{self.what}:\n{indent * 2}expected: {_short(self.expected)}\n"
                    f"{indent * 2}found:    {_short(self.found)}")
        text += "".join(f"\n{indent * 2}{line}" for line in self.notes)
        if self.trace:
            text += f"\n{indent * 2}decisions (oldest first):" + "".join(
                f"\n{indent * 3}{line}" for line in self.trace)
        return text


def _pretty(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _short(value) -> str:
    if isinstance(value, str) and value.startswith("<"):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


# ----- matching ----------------------------------------------------------------------------
def count_ok(spec, n: int) -> bool:
    if isinstance(spec, dict):
        return spec.get("min", n) <= n <= spec.get("max", n)
    return n == spec


def _count_text(spec) -> Any:
    if isinstance(spec, dict):
        low, high = spec.get("min"), spec.get("max")
        if low is not None and high is not None:
            return f"<between {low} and {high}>"
        return f"<at least {low}>" if low is not None else f"<at most {high}>"
    return spec


def same(expected, actual) -> bool:
    """Equality that tells booleans from numbers (True is not 1)."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, dict):
        return isinstance(actual, dict) and subset(expected, actual)
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(
            same(e, a) for e, a in zip(expected, actual, strict=True))
    return expected == actual


def subset(expected: dict, actual: dict) -> bool:
    """Every key of ``expected`` has the same value in ``actual`` (None: absent or null)."""
    for key, value in expected.items():
        if value is None:
            if actual.get(key) is not None:
                return False
        elif key not in actual or not same(value, actual[key]):
            return False
    return True


def project(expected, actual):
    """``actual`` cut to the shape of ``expected`` (so a diff shows only what was asked)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {k: (project(v, actual[k]) if k in actual else
                    (None if v is None else MISSING)) for k, v in expected.items()}
    return actual


# ----- the checks --------------------------------------------------------------------------
def _by_email(records, email: str) -> list[dict]:
    wanted = norm_email(email)  # the fake's own rule: trimmed, case-insensitive
    return [r for r in records if norm_email(str(r.get("email") or "")) == wanted]


def _finder_key(finder) -> tuple | None:
    for name in ("externalId", "email"):
        if finder.get(name):
            return name, finder[name]
    return None


def _find_people(records, finder) -> tuple[str, list[dict]]:
    if "externalId" in finder:
        return (f"externalId {finder['externalId']!r}",
                [r for r in records if r.get("externalId") == finder["externalId"]])
    return f"email {finder['email']!r}", _by_email(records, finder["email"])


def _find_companies(records, finder) -> tuple[str, list[dict]]:
    if "externalId" in finder:
        return (f"externalId {finder['externalId']!r}",
                [c for c in records if c.get("externalId") == finder["externalId"]])
    if "name" in finder:
        return f"name {finder['name']!r}", [c for c in records if c.get("name") == finder["name"]]
    domain = finder["domain"].lower()
    return (f"domain {finder['domain']!r}",
            [c for c in records if domain in [d.lower() for d in c.get("domains") or []]])


_ONE = {"endusers": "end user", "pending": "pending contact", "companies": "company",
        **{m.path: m.name for m in MODELS}}


def _find_records(records, finder) -> tuple[str, list[dict]]:
    """A model's records by externalId, sourceId, or ``where`` (fields the record has)."""
    for key in ("externalId", "sourceId"):
        if key in finder:
            return (f"{key} {finder[key]!r}",
                    [r for r in records if r.get(key) == finder[key]])
    where = finder["where"]
    return f"fields {_short(where)}", [r for r in records if subset(where, r)]


def _no_extra(out, what, finder, record) -> None:
    return None


def _check_records(out, kind, finders, records, finder_fn, extra) -> None:
    for index, finder in enumerate(finders):
        label, found = finder_fn(records, finder)
        what = f"{kind}[{index}] ({label})"
        key = _finder_key(finder)
        start = len(out)
        if finder.get("absent"):
            if found:
                out.append(Mismatch(what + " should not exist", MISSING, found[0]))
        elif not found:
            out.append(Mismatch(what, "<a record>", f"<no {_ONE[kind]} with {label}>"))
        elif len(found) > 1:
            out.append(Mismatch(what, "<one record>", f"<{len(found)} records: "
                                f"{', '.join(r['_id'] for r in found)}>"))
        else:
            record = found[0]
            if "is" in finder and not subset(finder["is"], record):
                out.append(Mismatch(what + " fields", finder["is"],
                                    project(finder["is"], record)))
            extra(out, what, finder, record)
        for mismatch in out[start:]:
            mismatch.key = key


def check(expect: dict, state: dict, journal: list[dict] | None = None,
          delivered: dict | None = None, engage: dict | None = None) -> list[Mismatch]:
    out: list[Mismatch] = []
    endusers, pending = state["endusers"], state["pending"]
    companies, activities = state["companies"], state["activities"]
    report_counts = state.get("reportCounts", {})
    sizes = {"endusers": len(endusers), "pending": len(pending), "companies": len(companies),
             "activities": len(activities), "report": sum(report_counts.values())}
    sizes.update({m.path: len(state.get(m.path) or []) for m in MODELS})
    for key, spec in (expect.get("count") or {}).items():
        if not count_ok(spec, sizes[key]):
            found: Any = sizes[key]
            if key == "report" and report_counts:
                found = f"<{sizes[key]}: {_reasons(report_counts)}>"
            out.append(Mismatch(f"count.{key}", _count_text(spec), found))

    def user_extra(out, what, finder, record):
        if "activities" in finder:
            n = sum(1 for a in activities if a.get("enduserId") == record["_id"])
            if not count_ok(finder["activities"], n):
                out.append(Mismatch(what + " activities", _count_text(finder["activities"]), n))
        if "actions" in finder:
            done = [a.get("action") for a in activities if a.get("enduserId") == record["_id"]]
            if done != finder["actions"]:
                out.append(Mismatch(what + " actions", finder["actions"], done))

    def company_extra(out, what, finder, record):
        if "members" in finder:
            n = sum(1 for u in endusers if u.get("companyId") == record["_id"])
            if not count_ok(finder["members"], n):
                out.append(Mismatch(what + " members", _count_text(finder["members"]), n))

    _check_records(out, "endusers", expect.get("endusers") or [], endusers, _find_people,
                   user_extra)
    _check_records(out, "pending", expect.get("pending") or [], pending, _find_people,
                   user_extra)
    _check_records(out, "companies", expect.get("companies") or [], companies,
                   _find_companies, company_extra)
    for model in MODELS:
        _check_records(out, model.path, expect.get(model.path) or [],
                       state.get(model.path) or [], _find_records, _no_extra)
    for reason, spec in (expect.get("report") or {}).items():
        n = report_counts.get(reason, 0)
        if not count_ok(spec, n):
            found = f"<{n}; the report has {_reasons(report_counts)}>" if report_counts else n
            out.append(Mismatch(f"report.{reason}", _count_text(spec), found))
    if "journal" in expect:
        _check_journal(out, expect["journal"], journal or [])
    if "delivered" in expect:
        _check_delivered(out, expect["delivered"], delivered or {})
    for key, wanted in (engage or {}).items():
        _check_engage(out, key, wanted, endusers + pending)
    return out


def _check_journal(out, spec: dict, entries: list[dict]) -> None:
    if "requests" in spec and not count_ok(spec["requests"], len(entries)):
        out.append(Mismatch("journal.requests", _count_text(spec["requests"]), len(entries)))
    for status, want in (spec.get("status") or {}).items():
        n = sum(1 for e in entries if str(e["status"]) == status)
        if not count_ok(want, n):
            out.append(Mismatch(f"journal.status.{status}", _count_text(want), n))
    for pattern, want in (spec.get("paths") or {}).items():
        n = sum(1 for e in entries if fnmatch.fnmatchcase(e["path"], pattern))
        if not count_ok(want, n):
            out.append(Mismatch(f"journal.paths[{pattern!r}]", _count_text(want), n))


def _reasons(counts: dict) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items(),
                                                              key=lambda i: (-i[1], i[0])))


def _breakdown(delivered: dict) -> str:
    """What was delivered since the previous expect, by call type and result."""
    types = delivered.get("types") or {}
    parts = [f"calls since the previous expect: {delivered.get('calls', 0)}"
             + (f" ({_reasons(types)})" if types else ""),
             f"sent {delivered.get('sent', 0)}", f"failed {delivered.get('failed', 0)}"]
    if delivered.get("skipped"):
        parts.append(f"skipped {_reasons(delivered['skipped'])}")
    return "; ".join(parts)


def _check_delivered(out, spec: dict, delivered: dict) -> None:
    start = len(out)
    for key in ("calls", "sent", "failed"):
        if key in spec and not count_ok(spec[key], delivered.get(key, 0)):
            out.append(Mismatch(f"delivered.{key}", _count_text(spec[key]),
                                delivered.get(key, 0)))
    skipped = delivered.get("skipped", {})
    for reason, want in (spec.get("skipped") or {}).items():
        if not count_ok(want, skipped.get(reason, 0)):
            out.append(Mismatch(f"delivered.skipped.{reason}", _count_text(want),
                                skipped.get(reason, 0)))
    if len(out) > start:
        out[start].notes = [_breakdown(delivered)]


def _check_engage(out, key: str, wanted: dict[str, Any], people: list[dict]) -> None:
    """Every user's ``custom[key]`` equals the last value sent; nobody else has the key."""
    by_ext = {p.get("externalId"): p for p in people if p.get("externalId")}
    expected, found = {}, {}
    for user, value in wanted.items():
        record = by_ext.get(user)
        actual = (record.get("custom") or {}).get(key, MISSING) if record else "<no end user>"
        if not (actual is not MISSING and same(value, actual)):
            expected[user], found[user] = value, actual
    for person in people:
        custom = person.get("custom") or {}
        if key in custom and person.get("externalId") not in wanted:
            expected[person.get("externalId") or person["_id"]] = MISSING
            found[person.get("externalId") or person["_id"]] = custom[key]
    if expected:
        listed = sorted(expected)[:MAX_LISTED]
        more = f", first {MAX_LISTED} shown" if len(expected) > MAX_LISTED else ""
        out.append(Mismatch(f"custom.{key}: {len(expected)} of {len(wanted)} users differ{more}",
                            {u: expected[u] for u in listed}, {u: found[u] for u in listed}))
