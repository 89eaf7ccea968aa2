"""Record → scenario: what a tenant received, written as a scenario file that replays it.

* ``given.snapshot`` — the tenant's state just before the first recorded item — a Segment
  call, or a Planhat request that can change state (so REST-only traffic is a recording too)
  — exact (ids, records, report, settings), inline, in the snapshot format;
* ``clock`` — the tenant's time at that moment;
* ``steps`` — in the order they arrived since: every Segment call that reached ``/v1/*`` or
  ``/dock/segment``, one step each, with the keys the scenario schema knows (``messageId``
  and ``timestamp`` pinned as sent), and every Planhat request another client sent that
  could change state (``POST``/``PUT``/``PATCH``/``DELETE``, REST or tracking) as a
  ``request`` step with the status it got; a call or request the schema cannot hold (no
  userId and no anonymousId, an alias without previousId, a body that is not JSON, nested
  deeper than MAX_STEP_DEPTH or holding a literal ``{saved.…}`` string) is left out and
  counted in ``description``;
* ``_id``s made during the recording: a request whose path segment or body value names one
  that an earlier recorded answer gave gets it as ``{saved.idN}``, and that earlier request
  step ``save``s it from its answer (a replay makes other ids); one no answer gave (a Segment
  call made it) stays as it was and is counted in ``description``;
* ``expect`` — the state now: counts; every end user and pending contact by externalId (else
  email) with its identifying fields, company name, custom fields and activity actions; each
  company with an externalId by name; the report by reason — exact when nothing was left out
  (see ``expectations``).

Not recorded (they change nothing, or cannot be replayed as sent): requests the fake makes
to itself while applying a Segment call, answers of a fault rule or a rate limit, and 401,
403, 408, 413, 415, 429 and 5xx answers.

Volatile values (``_id``, ``createDate``, ``updatedAt``) are not asserted. The text is made
step by step (a generator), so a long recording is never one big string.

Cost: a tenant keeps at most ``Config.recording_bytes`` (``--recording-bytes``) of items; 0
turns recording off (nothing kept, no base dumped). The base is kept as compact JSON bytes
(zlib-compressed), dumped at most once per recording: a write that is refused (401, 403, 408,
413, 415, 429) leaves it in place, the recording "not started" until an item is kept.
"""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from functools import lru_cache

from .report import NO_USER_ANON_ID
from .store import Tenant

IDENTIFYING = ("externalId", "email", "sourceId", "firstName", "lastName", "name", "position",
               "phone")
REQUEST = b"R"  # a kept Planhat request starts with this byte (a Segment call is JSON: "{")
RECORDED_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# refused before any change; a 415 (not JSON) also cannot be replayed: a request step sends JSON
NOT_RECORDED_STATUS = (401, 403, 408, 413, 415, 429)
SEGMENT_PATHS = ("/v1/", "/dock/", "/__admin")
# a request body nested deeper is left out (YAML writes it recursively); not
# errors.MAX_BODY_DEPTH, which bounds what the app accepts: a body it refused (400) is kept too
MAX_STEP_DEPTH = 100
ID_SHAPE = re.compile(r"[0-9a-f]{24}")  # the fake's ids (store.new_id)
_ID_IN_ANSWER = re.compile(rb'"[0-9a-f]{24}"')


class RecordingError(ValueError):
    pass


def _keep(tenant: Tenant, raw: bytes, limit: int) -> None:
    """Keep one recorded item; past ``limit`` bytes items are only counted. The first kept
    item starts the recording: its base's time becomes now. The caller holds the lock."""
    if not tenant.recording_calls and not tenant.recording_dropped:
        tenant.recording_base = (tenant.now_iso(), tenant.recording_base[1])
    if tenant.recording_dropped or tenant.recording_bytes + len(raw) > limit:
        tenant.recording_dropped += 1  # past the bound: later items are only counted
        return
    tenant.recording_calls.append(raw)
    tenant.recording_bytes += len(raw)


def _begin(tenant: Tenant) -> None:
    """Dump the base: the state now, as compact JSON, zlib-compressed (fast level: ~6x
    smaller; parsed back only when the scenario is written). Unlike the lists of live records
    a dict tree would hold, it keeps no replaced record alive. The caller holds the lock."""
    from .snapshot import dump_tenant

    text = json.dumps(dump_tenant(tenant), separators=(",", ":"))
    tenant.recording_base = (tenant.now_iso(), zlib.compress(text.encode(), 1))


def started(tenant: Tenant) -> bool:
    """The recording holds an item (a base alone is a recording not started yet)."""
    return bool(tenant.recording_calls or tenant.recording_dropped)


def record_calls(tenant: Tenant, calls: list, limit: int) -> None:
    """Keep Segment calls for ``GET /__admin/scenario`` (``limit``: the bound in bytes, 0 =
    recording off); the first recorded item starts the recording (the state before it is
    kept)."""
    if limit <= 0:
        return
    with tenant.lock:
        if tenant.recording_base is None:
            _begin(tenant)
        for call in calls:
            if not isinstance(call, dict):
                continue
            if tenant.recording_dropped:
                tenant.recording_dropped += 1
                continue
            _keep(tenant, json.dumps(call, separators=(",", ":")).encode(), limit)


def forget(tenant: Tenant) -> None:
    """Drop the tenant's recording: the next recorded item starts a new one from the state
    then (an init file's seed is a recording's given, not its steps)."""
    with tenant.lock:
        tenant.recording_base = None
        tenant.recording_calls = []
        tenant.recording_bytes = 0
        tenant.recording_dropped = 0


def drop_unstarted(tenant: Tenant) -> None:
    """A base dumped for a recording that has not started is dropped (the state may change
    by a way that is not recorded: an admin write, a 5xx); the next item dumps it again."""
    with tenant.lock:
        if tenant.recording_base is not None and not started(tenant):
            tenant.recording_base = None


def may_record(method: str, path: str) -> bool:
    """A Planhat request of this method and path is recorded (if its answer is one to keep)."""
    return method in RECORDED_METHODS and not path.startswith(SEGMENT_PATHS)


def before_request(tenant: Tenant, limit: int) -> None:
    """Before a Planhat request that ``may_record``: when the tenant has no base yet (and
    recording is on), it is dumped here — the state before this request. Dumped at most once
    per recording: a request that is not recorded after all leaves it for the next one."""
    if limit <= 0:
        return
    with tenant.lock:
        if tenant.recording_base is None:
            _begin(tenant)


def record_request(tenant: Tenant, method: str, path: str, query: str, status: int,
                   body: bytes, answer: bytes, limit: int) -> None:
    """Keep a Planhat request that arrived while the tenant is being recorded, if it can
    change state and be replayed (see the module); its answer is kept when it holds ids, so
    later requests naming them can be replayed. ``limit``: the bound in bytes."""
    keep = may_record(method, path) and status not in NOT_RECORDED_STATUS and status < 500
    if keep:
        answer = answer if _ID_IN_ANSWER.search(answer) else b""
        head = json.dumps({"method": method, "path": path + (f"?{query}" if query else ""),
                           "status": status, "answer": len(answer)},
                          separators=(",", ":")).encode()
    with tenant.lock:
        if not keep:
            if status >= 500:  # it may have changed part of the state: the base is stale
                drop_unstarted(tenant)
            return  # refused before any change: the base stays for the next write
        if tenant.recording_base is None:
            return
        if tenant.recording_dropped:
            tenant.recording_dropped += 1
            return
        _keep(tenant, REQUEST + head + b"\n" + body + answer, limit)


def _call_keys() -> dict[str, tuple[set, list]]:
    from .scenario.load import CALL_TYPES, schema

    steps = schema()["$defs"]["step"]["properties"]
    return {kind: (set(steps[kind]["properties"]), steps[kind].get("required", []))
            for kind in CALL_TYPES}


_YAML_BREAKS = ("\x85", "\u2028", "\u2029")  # YAML 1.1 line breaks PyYAML folds when read back


@lru_cache(maxsize=1)
def _dumper():
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper, data: str):  # double quotes escape them; the other styles write them
        style = '"' if any(c in data for c in _YAML_BREAKS) else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Dumper.add_representer(str, text)
    return Dumper


def _dump(value) -> str:
    import yaml

    return yaml.dump(value, Dumper=_dumper(), sort_keys=False, allow_unicode=True, width=100)


def _indent(text: str, prefix: str) -> str:
    lines = text.splitlines()
    return "\n".join([prefix + "- " + lines[0]] + [prefix + "  " + line for line in lines[1:]])


def scenario_lines(tenant: Tenant) -> Iterator[str]:
    """The scenario file, in pieces; raises RecordingError (before the first piece) when
    there is nothing to record or the recording lost calls."""
    from .snapshot import FORMAT, FORMAT_VERSION, dump_tenant

    with tenant.lock:
        if not started(tenant):
            raise RecordingError("the tenant has received no Segment call (/v1/*, "
                                 "/dock/segment) and no Planhat request that could change it "
                                 "(POST, PUT, PATCH, DELETE) since it was created, reset or "
                                 "restored: nothing to record")
        if tenant.recording_dropped:
            raise RecordingError(f"the recording is incomplete: {tenant.recording_dropped} "
                                 "call(s) over its bound were not kept; reset the tenant and "
                                 "record less traffic")
        base = tenant.recording_base
        calls = list(tenant.recording_calls)
        now = dump_tenant(tenant)
        now["reportDropped"] = dict(tenant.report.dropped)
    at, data = base
    base = {"at": at, "tenant": json.loads(zlib.decompress(data))}
    return _lines(tenant, base, calls, now, FORMAT, FORMAT_VERSION)


def _lines(tenant, base, calls, now, fmt, version) -> Iterator[str]:
    keys = _call_keys()
    token = tenant.tenant_token
    base_ids = _ids(base["tenant"])
    saves, names, flagged = _id_plan(calls, token, base_ids, _ids(now) - base_ids)

    def steps():  # parsed again on each pass: the recording is never held as dicts
        for index, raw in enumerate(calls):
            if raw.startswith(REQUEST):
                step, _ = _request_step(raw, token)
                if step is not None:
                    _use_saved(step["request"], names, index)
                    if saves.get(index):
                        step["request"]["save"] = saves[index]
                yield step
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
    requests = sum(1 for raw in calls if raw.startswith(REQUEST))
    description = (f"Recorded by mock-planhat from tenant {token}: "
                   f"{len(calls) - requests} Segment call(s) and {requests} Planhat "
                   "request(s)")
    if left_out:
        description += f"; {left_out} the scenario schema cannot hold were left out"
    if names:
        description += (f"; {len(names)} _id(s) made during the recording are saved from "
                        "the answer that gave them ({saved.idN})")
    if flagged:
        description += (f"; {flagged} request(s) name an _id made during the recording that "
                        "no recorded answer gave, which differs on replay")
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


def _split_request(raw: bytes) -> tuple[dict, bytes, bytes]:
    """A kept request's (head, body, answer)."""
    head, _, rest = raw[len(REQUEST):].partition(b"\n")
    step = json.loads(head)
    size = step.pop("answer", 0)
    return step, rest[:len(rest) - size], rest[len(rest) - size:]


def _request_step(raw: bytes, token: str) -> tuple[dict | None, bytes]:
    """A kept request as a ``request`` step (the tenant token in its path as
    ``{tenantToken}``, braces %-escaped), and its answer; the step is None when its body
    cannot be one (see the module)."""
    from .scenario.load import SAVED_REF, TENANT_TOKEN

    step, body, answer = _split_request(raw)
    route, mark, query = step["path"].partition("?")
    route, query = (_no_braces(part) for part in (route, query))
    step["path"] = "/".join(TENANT_TOKEN if part == token else part
                            for part in route.split("/")) + mark + query
    if body.strip():
        try:
            step["body"] = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None, answer
        for _, value in _leaves(step["body"]):
            if value is _TOO_DEEP or isinstance(value, str) and SAVED_REF.fullmatch(value):
                return None, answer
    status = step.pop("status")
    return {"request": {**step, "status": status}}, answer


def _no_braces(text: str) -> str:
    """``{`` and ``}`` %-escaped: in a request step's path they mark placeholders."""
    return text.replace("{", "%7B").replace("}", "%7D")


_TOO_DEEP = object()


def _leaves(value, depth: int = MAX_STEP_DEPTH) -> Iterator[tuple[tuple, object]]:
    """(path, value) of every leaf of a JSON value, walked without recursion; a value nested
    deeper than ``depth`` yields ``_TOO_DEEP`` once."""
    stack = [((), value)]
    while stack:
        path, item = stack.pop()
        if len(path) > depth:
            yield path, _TOO_DEEP
            return
        if isinstance(item, dict):
            stack.extend((path + (k,), v) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((path + (i,), v) for i, v in reversed(list(enumerate(item))))
        else:
            yield path, item


def _answer_ids(answer: bytes) -> Iterator[tuple[str, str]]:
    """(dotted path, value) of the id-shaped strings in a kept answer, in document order."""
    if not answer:
        return
    try:
        doc = json.loads(answer)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return
    for path, value in _leaves(doc):
        if isinstance(value, str) and ID_SHAPE.fullmatch(value) \
                and not any("." in str(part) for part in path):
            yield ".".join(map(str, path)), value


def _named_ids(request: dict) -> Iterator[str]:
    """The id-shaped path segments and body strings of a request step."""
    for part in request["path"].partition("?")[0].split("/"):
        if ID_SHAPE.fullmatch(part):
            yield part
    for _, value in _leaves(request.get("body")):
        if isinstance(value, str) and ID_SHAPE.fullmatch(value):
            yield value


def _id_plan(calls: list, token: str, base_ids: set, made: set) -> tuple[dict, dict, int]:
    """Which answers' ids later requests name: ({item index: {name: answer path}} to save,
    {id: (name, index of the item that gave it)}, how many requests name an id made during
    the recording that no earlier answer gave)."""
    origin: dict[str, tuple[int, str]] = {}  # id -> (item index, answer path), first answer
    used: set[str] = set()
    flagged = 0
    for index, raw in enumerate(calls):
        if not raw.startswith(REQUEST):
            continue
        step, answer = _request_step(raw, token)
        if step is not None:
            unknown = False
            for value in _named_ids(step["request"]):
                if value in origin:
                    used.add(value)
                elif value in made:
                    unknown = True
            flagged += unknown
        for path, value in _answer_ids(answer):
            if value not in base_ids and value not in origin:
                origin[value] = (index, path)
    names: dict[str, tuple[str, int]] = {}
    saves: dict[int, dict] = defaultdict(dict)
    for value, (given, path) in origin.items():  # numbered in the order the answers came
        if value in used:
            names[value] = (f"id{len(names) + 1}", given)
            saves[given][names[value][0]] = path
    return saves, names, flagged


def _use_saved(request: dict, names: dict, index: int) -> None:
    """Write the ids an earlier answer gave as ``{saved.name}`` (path segments, and body
    strings that are one)."""
    def ref(value):
        if isinstance(value, str) and value in names and names[value][1] < index:
            return f"{{saved.{names[value][0]}}}"
        return value

    if not names:
        return
    route, mark, query = request["path"].partition("?")
    request["path"] = "/".join(ref(part) for part in route.split("/")) + mark + query
    body = request.get("body")
    if isinstance(body, (dict, list)):
        for path, value in _leaves(body):
            if ref(value) is not value:
                holder = body
                for part in path[:-1]:
                    holder = holder[part]
                holder[path[-1]] = ref(value)
    elif body is not None:
        request["body"] = ref(body)


def _ids(state: dict) -> set:
    return {record["_id"] for value in state.values() if isinstance(value, list)
            for record in value if isinstance(record, dict) and "_id" in record}


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


