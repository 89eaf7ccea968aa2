"""Record → scenario: what a tenant received, written as a scenario file that replays it.

* ``given.snapshot`` — the tenant's state just before its first Segment call (exact: ids,
  records, report, settings), inline, in the snapshot format;
* ``clock`` — the tenant's time at that moment;
* ``steps`` — in the order they arrived since: every Segment call that reached ``/v1/*`` or
  ``/dock/segment``, one step each, with the keys the scenario schema knows (``messageId``
  and ``timestamp`` pinned as sent), and every Planhat request another client sent that
  could change state (``POST``/``PUT``/``PATCH``/``DELETE``, REST or tracking) as a
  ``request`` step with the status it got; a call or request the schema cannot hold (no
  userId and no anonymousId, an alias without previousId, a body that is not JSON) is left
  out and counted in ``description``;
* ``expect`` — the state now: counts; every end user and pending contact by externalId (else
  email) with its identifying fields, company name, custom fields and activity actions; each
  company with an externalId by name; the report by reason — exact when nothing was left out
  (see ``expectations``).

Not recorded (they change nothing, or cannot be replayed as sent): requests the fake makes
to itself while applying a Segment call, answers of a fault rule or a rate limit, and 401,
403, 408, 413, 429 and 5xx answers.

Volatile values (``_id``, ``createDate``, ``updatedAt``) are not asserted. The text is made
step by step (a generator), so a long recording is never one big string.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator

from .store import RECORDING_BYTES, Tenant

IDENTIFYING = ("externalId", "email", "sourceId", "firstName", "lastName", "name", "position",
               "phone")
REQUEST = b"R"  # a kept Planhat request starts with this byte (a Segment call is JSON: "{")
RECORDED_METHODS = ("POST", "PUT", "PATCH", "DELETE")
NOT_RECORDED_STATUS = (401, 403, 408, 413, 429)
SEGMENT_PATHS = ("/v1/", "/dock/", "/__admin")
NO_USER_ANON_ID = "no_user_anon_id"  # a Segment call without ids: reported, never recorded


class RecordingError(ValueError):
    pass


def _keep(tenant: Tenant, raw: bytes) -> None:
    """Keep one recorded item; past RECORDING_BYTES items are only counted. The caller holds
    the tenant's lock."""
    if tenant.recording_dropped or tenant.recording_bytes + len(raw) > RECORDING_BYTES:
        tenant.recording_dropped += 1  # past the bound: later items are only counted
        return
    tenant.recording_calls.append(raw)
    tenant.recording_bytes += len(raw)


def record_calls(tenant: Tenant, calls: list) -> None:
    """Keep Segment calls for ``GET /__admin/scenario``; the first one also keeps the state
    before it."""
    from .snapshot import dump_tenant

    with tenant.lock:
        if tenant.recording_base is None:
            tenant.recording_base = {"tenant": dump_tenant(tenant), "at": tenant.now_iso()}
        for call in calls:
            if not isinstance(call, dict):
                continue
            if tenant.recording_dropped:
                tenant.recording_dropped += 1
                continue
            _keep(tenant, json.dumps(call, separators=(",", ":")).encode())


def record_request(tenant: Tenant, method: str, path: str, query: str, status: int,
                   body: bytes) -> None:
    """Keep a Planhat request that arrived while the tenant is being recorded (its first
    Segment call came already), if it can change state and be replayed (see the module)."""
    if (method not in RECORDED_METHODS or status in NOT_RECORDED_STATUS or status >= 500
            or path.startswith(SEGMENT_PATHS)):
        return
    head = json.dumps({"method": method, "path": path + (f"?{query}" if query else ""),
                       "status": status}, separators=(",", ":")).encode()
    with tenant.lock:
        if tenant.recording_base is not None:
            _keep(tenant, REQUEST + head + b"\n" + body)


def _call_keys() -> dict[str, tuple[set, list]]:
    from .scenario.load import CALL_TYPES, schema

    steps = schema()["$defs"]["step"]["properties"]
    return {kind: (set(steps[kind]["properties"]), steps[kind].get("required", []))
            for kind in CALL_TYPES}


def _dump(value) -> str:
    import yaml

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
    token = tenant.tenant_token

    def steps():  # parsed again on each pass: the recording is never held as dicts
        for raw in calls:
            if raw.startswith(REQUEST):
                yield _request_step(raw, token)
                continue
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
    made = _made_ids(base["tenant"], now)
    naming = sum(1 for step in steps() if step is not None and "request" in step
                 and _names_any(step["request"], made))
    requests = sum(1 for raw in calls if raw.startswith(REQUEST))
    description = (f"Recorded by mock-planhat from tenant {token}: "
                   f"{len(calls) - requests} Segment call(s) and {requests} Planhat "
                   "request(s)")
    if left_out:
        description += f"; {left_out} the scenario schema cannot hold were left out"
    if naming:
        description += (f"; {naming} request(s) name an _id made during the recording, "
                        "which differs on replay")
    base_doc = {"format": fmt, "formatVersion": version, "tenants": [base["tenant"]]}
    yield _dump({"name": f"recorded from tenant {token}",
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
    yield _dump({"expect": expectations(now, base["tenant"] if not left_out else None)})


def _request_step(raw: bytes, token: str) -> dict | None:
    """A kept request as a ``request`` step (the tenant token in its path as
    ``{tenantToken}``), or None when its body is not JSON."""
    from .scenario.load import TENANT_TOKEN

    head, _, body = raw[len(REQUEST):].partition(b"\n")
    step = json.loads(head)
    route, mark, query = step["path"].partition("?")
    step["path"] = "/".join(TENANT_TOKEN if part == token else part
                            for part in route.split("/")) + mark + query
    if body.strip():
        try:
            step["body"] = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
    status = step.pop("status")
    return {"request": {**step, "status": status}}


def _ids(state: dict) -> set:
    return {record["_id"] for value in state.values() if isinstance(value, list)
            for record in value if isinstance(record, dict) and "_id" in record}


def _made_ids(base: dict, now: dict) -> set:
    """The ``_id``s of records made since the recording began: a replay makes others."""
    return _ids(now) - _ids(base)


def _names_any(request: dict, ids: set) -> bool:
    if not ids:
        return False
    if any(part in ids for part in request["path"].split("?")[0].split("/")):
        return True
    stack = [request.get("body")]
    while stack:
        value = stack.pop()
        if isinstance(value, str) and value in ids:
            return True
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def expectations(state: dict, base: dict | None = None) -> dict:
    """What the recorded tenant looks like now, as a scenario ``expect``. With ``base`` (the
    state the recording began from; given when every call and request is in the steps),
    the report counts are exact; without, lower bounds (see ``_report``)."""
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
    report = _report(state) if base is None else _exact_report(state, base)
    if report:
        expect["report"] = report
        if base is not None:
            expect["count"]["report"] = sum(report.values())
    return expect


def _exact_report(state: dict, base: dict) -> dict:
    """The report by reason, exactly: a replay restores the base's entries and makes the
    same ones again (the runner writes the destination's skips as the Segment routes do),
    except ``no_user_anon_id``: calls without ids are reported, never recorded."""
    counts = dict(state.get("reportCounts") or {})
    base_counts = base.get("reportCounts") or {}
    if NO_USER_ANON_ID in counts:
        counts[NO_USER_ANON_ID] = base_counts.get(NO_USER_ANON_ID, 0)
    return {reason: n for reason, n in counts.items() if n}


def _report(state: dict) -> dict:
    """Lower bounds, when calls were left out of the steps: entries the Segment routes add
    (translator skips) are not asserted, since the left-out calls made some; the rest is
    asserted as ``{min: N}``."""
    segment = Counter(e["reason"] for e in state["report"]
                      if str(e.get("source") or "").startswith(("/v1/", "/dock/")))
    dropped = state.get("reportDropped") or {}
    report = {}
    for reason, count in (state.get("reportCounts") or {}).items():
        if dropped.get(reason):
            continue  # entries past the report's bound: their sources are unknown
        if count - segment[reason] > 0:
            report[reason] = {"min": count - segment[reason]}
    return report


def _finder(record: dict) -> dict | None:
    if record.get("externalId"):
        return {"externalId": record["externalId"]}
    if record.get("email"):
        return {"email": record["email"]}
    return None


