"""Record → scenario: what a tenant received, written as a scenario file that replays it.

* ``given.snapshot`` — the tenant's state just before its first Segment call (exact: ids,
  records, report), inline, in the snapshot format;
* ``clock`` — the tenant's time at that moment;
* ``steps`` — every Segment call that reached ``/v1/*`` or ``/dock/segment`` since, one step
  each, with the keys the scenario schema knows (``messageId`` and ``timestamp`` pinned as
  sent); a call the schema cannot hold (no userId and no anonymousId, an alias without
  previousId) is left out and counted in ``description``;
* ``expect`` — the state now: counts; every end user and pending contact by externalId (else
  email) with its identifying fields, company name, custom fields and activity actions; each
  company with an externalId by name; the report by reason.

Volatile values (``_id``, ``createDate``, ``updatedAt``) are not asserted. The text is made
step by step (a generator), so a long recording is never one big string.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator

import yaml

from .store import Tenant

IDENTIFYING = ("externalId", "email", "sourceId", "firstName", "lastName", "name", "position",
               "phone")


class RecordingError(ValueError):
    pass


def _call_keys() -> dict[str, tuple[set, list]]:
    from .scenario.load import CALL_TYPES, schema

    steps = schema()["$defs"]["step"]["properties"]
    return {kind: (set(steps[kind]["properties"]), steps[kind].get("required", []))
            for kind in CALL_TYPES}


def _dump(value) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=100)


def _indent(text: str, prefix: str) -> str:
    lines = text.splitlines()
    return "\n".join([prefix + "- " + lines[0]] + [prefix + "  " + line for line in lines[1:]])


def scenario_lines(tenant: Tenant) -> Iterator[str]:
    """The scenario file, in pieces; raises RecordingError (before the first piece) when
    there is nothing to record or the recording lost calls."""
    with tenant.lock:
        base = tenant.recording_base
        calls = list(tenant.recording_calls)
        dropped = tenant.recording_dropped
        from .snapshot import FORMAT, FORMAT_VERSION, dump_tenant
        now = dump_tenant(tenant)
        now["reportDropped"] = dict(tenant.report.dropped)
    if base is None:
        raise RecordingError("the tenant has received no Segment call (/v1/*, /dock/segment) "
                             "since it was created, reset or restored: nothing to record")
    if dropped:
        raise RecordingError(f"the recording is incomplete: {dropped} call(s) over its bound "
                             "were not kept; reset the tenant and record less traffic")
    return _lines(tenant, base, calls, now, FORMAT, FORMAT_VERSION)


def _lines(tenant, base, calls, now, fmt, version) -> Iterator[str]:
    keys = _call_keys()

    def steps():  # parsed again on each pass: the recording is never held as dicts
        for raw in calls:
            call = json.loads(raw)
            kind = call.get("type")
            if kind not in keys:
                yield None
                continue
            allowed, required = keys[kind]
            body = {k: v for k, v in call.items() if k in allowed and v is not None}
            if any(k not in body for k in required) or (
                    kind != "alias" and "userId" not in body and "anonymousId" not in body):
                yield None
                continue
            yield {kind: body}

    left_out = sum(1 for step in steps() if step is None)
    description = (f"Recorded by mock-planhat from tenant {tenant.tenant_token}: "
                   f"{len(calls) - left_out} Segment call(s)")
    if left_out:
        description += f"; {left_out} call(s) the scenario schema cannot hold were left out"
    base_doc = {"format": fmt, "formatVersion": version, "tenants": [base["tenant"]]}
    yield _dump({"name": f"recorded from tenant {tenant.tenant_token}",
                 "description": description, "clock": base["at"]})
    yield _dump({"tenant": {"unassigned": tenant.unassigned}})
    yield _dump({"given": {"snapshot": base_doc}})
    if left_out == len(calls):
        yield "steps: []\n"
    else:
        yield "steps:\n"
        for step in steps():
            if step is not None:
                yield _indent(_dump(step), "  ") + "\n"
    yield _dump({"expect": expectations(now)})


def expectations(state: dict) -> dict:
    """What the recorded tenant looks like now, as a scenario ``expect``."""
    actions = defaultdict(list)
    for activity in state["activities"]:
        actions[activity.get("enduserId")].append(activity.get("action"))
    companies = {c["_id"]: c for c in state["companies"]}
    expect: dict = {"count": {"companies": len(state["companies"]),
                              "endusers": len(state["endusers"]),
                              "pending": len(state["pending"]),
                              "activities": len(state["activities"])}}
    for kind in ("endusers", "pending"):
        finders = []
        for record in state[kind]:
            finder = _finder(record)
            if finder is None:
                continue
            fields = {k: record[k] for k in IDENTIFYING if record.get(k) is not None}
            company = companies.get(record.get("companyId"))
            if kind == "endusers" and company is not None:
                fields["companyName"] = company.get("name")
            if record.get("custom"):
                fields["custom"] = record["custom"]
            finder["is"] = fields
            finder["actions"] = [a for a in actions.get(record["_id"], []) if a is not None]
            finders.append(finder)
        if finders:
            expect[kind] = finders
    named = [{"externalId": c["externalId"], "is": {"name": c.get("name")}}
             for c in state["companies"] if c.get("externalId") and c.get("name")]
    if named:
        expect["companies"] = named
    # Entries the Segment routes report themselves (translator skips, calls without ids) are
    # not asserted: a replay sends through the runner's destination, whose skips may not reach
    # the report. The rest is asserted as a lower bound.
    segment = Counter(e["reason"] for e in state["report"]
                      if str(e.get("source") or "").startswith(("/v1/", "/dock/")))
    dropped = state.get("reportDropped") or {}
    report = {}
    for reason, count in (state.get("reportCounts") or {}).items():
        if dropped.get(reason):
            continue  # entries past the report's bound: their sources are unknown
        if count - segment[reason] > 0:
            report[reason] = {"min": count - segment[reason]}
    if report:
        expect["report"] = report
    return expect


def _finder(record: dict) -> dict | None:
    if record.get("externalId"):
        return {"externalId": record["externalId"]}
    if record.get("email"):
        return {"email": record["email"]}
    return None


