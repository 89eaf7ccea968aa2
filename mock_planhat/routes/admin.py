"""The admin API at /__admin: health, state, tenants, journal, explain, report, funnel,
faults, pending.

No auth; the app answers it for loopback clients (and ``--admin-from`` networks) only. What it
shows comes from :mod:`mock_planhat.read`, the same functions the dashboard renders.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib import resources

from flask import Blueprint, Response, current_app, jsonify, request

from .. import read, snapshot
from ..config import EMAIL_MATCH_POLICIES, UNASSIGNED_POLICIES, check_token
from ..errors import ApiError, read_json
from ..faults import FaultError
from ..matching import Rejected, assign_pending
from ..ratelimit import parse_rate_limit
from ..tenants import TokenConflict
from .common import single_arg, trace

bp = Blueprint("admin", __name__, url_prefix="/__admin")


def _fake():
    return current_app.extensions["mock_planhat"]


def _tenant():
    """The tenant named by ``?tenant=TOKEN`` (either of its tokens), else the default one; an
    unknown (or empty) token is a 404."""
    return _read(read.find_tenant, _fake().registry, request.args.get("tenant"))


@bp.get("/health")
def health():
    return jsonify({"status": "ok"})


_CHUNK = 64 * 1024  # characters a streamed JSON answer sends at a time


def _streamed(doc: dict, depth: int) -> Response:
    """``jsonify(doc)``, byte for byte, sent in chunks: the containers of the first ``depth``
    levels are written piece by piece, each value below them with one ``json.dumps`` — so a
    large state is never one whole text. The values must not change while it is sent: the
    callers hand over copies of the containers, and records are never mutated in place (a
    writer stores a new dict; see store.py), so this runs outside the tenant's lock."""
    provider = current_app.json
    if not provider.compact:  # indented (debug): not worth streaming
        return jsonify(doc)

    def dumps(value) -> str:
        return provider.dumps(value, separators=(",", ":"))

    def pieces(value, level: int):
        if level <= 0 or not isinstance(value, (dict, list)) or not value:
            yield dumps(value)
        elif isinstance(value, dict):
            keys = sorted(value) if provider.sort_keys else list(value)
            for i, key in enumerate(keys):
                yield ("{" if i == 0 else ",") + dumps(key) + ":"
                yield from pieces(value[key], level - 1)
            yield "}"
        else:
            for i, item in enumerate(value):
                yield "[" if i == 0 else ","
                yield from pieces(item, level - 1)
            yield "]"

    def chunks():
        buffer, size = [], 0
        for piece in pieces(doc, depth):
            buffer.append(piece)
            size += len(piece)
            if size >= _CHUNK:
                yield "".join(buffer)
                buffer, size = [], 0
        buffer.append("\n")
        yield "".join(buffer)

    return Response(chunks(), mimetype=provider.mimetype)


@bp.get("/state")
def state():
    tenant = _tenant()
    with tenant.lock:
        snapshot = tenant.snapshot()  # copies of the lists: a consistent view
    return _streamed(snapshot, 2)  # the state, its lists, then one record at a time


@bp.post("/reset")
def reset():
    fake = _fake()
    tenants = [_tenant()] if "tenant" in request.args else fake.registry.all()
    for tenant in tenants:
        with tenant.lock:
            tenant.clear()
        for token in tenant.tokens:
            fake.limiter.forget(token)
    if "tenant" not in request.args:
        fake.registry.unknown_tenant_report.clear()
    return jsonify({"reset": [t.tenant_token for t in tenants]})


@bp.post("/tenants")
def create_tenant():
    body = read_json(dict) if request.get_data() else {}
    options = {"unassigned": UNASSIGNED_POLICIES, "emailMatch": EMAIL_MATCH_POLICIES}
    unknown = set(body) - {*options, "tenantToken", "apiToken", "rateLimit"}
    if unknown:
        field = sorted(unknown)[0]
        raise ApiError(400, "invalid_field", f"{field}: not a tenant option (unassigned, "
                       "emailMatch, tenantToken, apiToken, rateLimit)", field)
    for key, allowed in options.items():
        value = body.get(key)
        if value is not None and value not in allowed:
            raise ApiError(400, "invalid_field", f"{key}: must be one of {', '.join(allowed)}",
                           key)
    try:
        rate_limit = parse_rate_limit(body["rateLimit"]) if "rateLimit" in body else True
    except ValueError as exc:
        raise ApiError(400, "invalid_field", f"rateLimit: {exc}", "rateLimit") from None
    for key in ("tenantToken", "apiToken"):
        if body.get(key) is not None:
            try:
                check_token(key, body[key])
            except ValueError as exc:
                raise ApiError(400, "invalid_field", str(exc), key) from None
    try:
        tenant = _fake().registry.create(body.get("unassigned"), body.get("tenantToken"),
                                         body.get("apiToken"), body.get("emailMatch"),
                                         rate_limit)
    except TokenConflict as exc:
        raise ApiError(409, "token_conflict", str(exc), exc.field) from None
    response = jsonify(_tenant_info(tenant))
    response.status_code = 201
    return response


def _tenant_info(tenant) -> dict:
    return {"tenantToken": tenant.tenant_token, "apiToken": tenant.api_token,
            "unassigned": tenant.unassigned, "emailMatch": tenant.email_match,
            "rateLimit": tenant.rate_limit.text if tenant.rate_limit else None}


@bp.get("/tenants")
def list_tenants():
    return jsonify(read.tenants(_fake().registry))


def _read(fn, *args, **kwargs):
    """A read function's result; its QueryError becomes a 400 (404 for an unknown tenant)."""
    try:
        return fn(*args, **kwargs)
    except read.QueryError as exc:
        if exc.field == "tenant":
            raise ApiError(404, "unknown_tenant", str(exc), "tenant") from None
        raise ApiError(400, "invalid_query", str(exc), exc.field) from None


@bp.delete("/tenants/<token>")
def delete_tenant(token):
    """Delete a tenant named by either of its tokens: its data, and its fault rules."""
    registry = _fake().registry
    tenant = registry.by_either_token(token)
    if tenant is None:
        raise ApiError(404, "unknown_tenant", f"tenant: no tenant has token {token!r}", "token")
    try:
        registry.remove(tenant)
    except ValueError as exc:
        raise ApiError(409, "default_tenant", f"token: {exc}", "token") from None
    with tenant.lock:
        tenant.clear()
    _fake().faults.clear(frozenset(tenant.tokens))
    for key in tenant.tokens:
        _fake().limiter.forget(key)
    return jsonify({"deleted": tenant.tenant_token})


def _paging() -> tuple[int, int | None]:
    """``offset`` and ``limit`` of an admin list (no limit: every kept entry — the byte bounds
    keep that finite)."""
    values = []
    for name in ("offset", "limit"):
        raw = single_arg(name)
        if raw is None:
            values.append(None)
            continue
        if not raw.isascii() or not raw.isdigit():  # an empty value too, as on the lists
            raise ApiError(400, "invalid_query", f"{name}: {raw[:40]!r} is not a whole number "
                           ">= 0", name)
        values.append(int(raw))
    return values[0] or 0, values[1]


def _page(items: list, offset: int, limit: int | None) -> list:
    return items[offset:] if limit is None else items[offset:offset + limit]


@bp.get("/requests")
def journal():
    _paging()  # offset and limit: whole numbers, each given once (checked as on the lists)
    return jsonify(_read(read.journal_query, _fake(), request.args))


@bp.get("/explain")
def explain():
    by, value = _read(read.explain_args, request.args)
    return jsonify(read.explain(_fake(), _tenant(), by, value))


@bp.get("/funnel")
def funnel():
    return jsonify(read.funnel(_fake(), _tenant()))


@bp.delete("/requests")
def clear_journal():
    token = _tenant().tenant_token if "tenant" in request.args else None
    _fake().journal.clear(token)
    return jsonify({"cleared": True})


@bp.get("/report")
def report():
    """One tenant's report; without ``tenant``, the default tenant's and the unknown-tenant
    one's together. ``counts`` and ``dropped`` cover the same entries as ``entries`` (the same
    reports, the same ``reason``): ``counts[r]`` = kept entries of ``r`` + ``dropped[r]``."""
    tenant = _tenant()
    offset, limit = _paging()
    reason = request.args.get("reason") or None
    reports = [tenant.report]
    if "tenant" not in request.args:
        reports.append(_fake().registry.unknown_tenant_report)
    counts, dropped, texts = Counter(), Counter(), []
    for one in reports:
        more_counts, more_dropped = one.tallies(reason)
        counts.update(more_counts)
        dropped.update(more_dropped)
        texts += one.texts(reason)
    head = json.dumps({"tenant": tenant.tenant_token, "counts": dict(counts),
                       "dropped": dict(dropped), "total": sum(counts.values()),
                       "kept": len(texts), "offset": offset, "limit": limit},
                      separators=(",", ":"))
    # The entries are kept as JSON text: spliced in, not parsed and written again.
    body = f'{head[:-1]},"entries":[{",".join(_page(texts, offset, limit))}]}}\n'
    return Response(body, mimetype="application/json")


REPORT_REASON = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")  # the pattern, without $ before a "\n"
MAX_REPORT_ENTRIES = 5_000
MAX_REPORT_TEXT = 2_000


@bp.post("/report")
def add_report():
    """Entries for the tenant's report from a client that keeps it for its calls (the scenario
    runner and the pytest fixtures write the destination's own skips here, as the fake's
    Segment routes do): ``{"entries": [{"reason", "message"?, "payload"?, "source"?}]}``."""
    tenant = _tenant()
    body = read_json(dict)
    entries = body.get("entries")
    unknown = set(body) - {"entries"}
    if unknown:
        field = sorted(unknown)[0]
        raise ApiError(400, "invalid_field", f"{field}: not a report field (entries)", field)
    if not isinstance(entries, list) or not entries or len(entries) > MAX_REPORT_ENTRIES:
        raise ApiError(400, "invalid_field", f"entries: must be an array of 1 to "
                       f"{MAX_REPORT_ENTRIES} report entries", "entries")
    checked = [_report_entry(index, entry) for index, entry in enumerate(entries)]
    with tenant.lock:
        for entry in checked:
            tenant.add_report(entry["reason"], entry["message"], entry["payload"],
                              entry["source"])
    response = jsonify({"tenant": tenant.tenant_token, "added": len(checked)})
    response.status_code = 201
    return response


def _report_entry(index: int, entry) -> dict:
    where = f"entries[{index}]"
    if not isinstance(entry, dict):
        raise ApiError(400, "invalid_field", f"{where}: must be an object", where)
    unknown = set(entry) - {"reason", "message", "payload", "source"}
    if unknown:
        field = f"{where}.{sorted(unknown)[0]}"
        raise ApiError(400, "invalid_field", f"{field}: not a report-entry field (reason, "
                       "message, payload, source)", field)
    reason = entry.get("reason")
    if not isinstance(reason, str) or not REPORT_REASON.match(reason):
        raise ApiError(400, "invalid_field", f"{where}.reason: must be a code of lower-case "
                       "letters, digits and '_' (at most 64)", f"{where}.reason")
    out = {"reason": reason, "payload": entry.get("payload")}
    for key in ("message", "source"):
        value = entry.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_REPORT_TEXT):
            raise ApiError(400, "invalid_field", f"{where}.{key}: must be a string of at most "
                           f"{MAX_REPORT_TEXT} characters", f"{where}.{key}")
        out[key] = value
    out["message"] = out["message"] or reason
    return out


@bp.post("/faults")
def add_fault():
    try:
        rule = _fake().faults.add(read_json(dict))
    except FaultError as exc:
        raise ApiError(400, "invalid_field", str(exc), exc.field) from None
    response = jsonify(rule)
    response.status_code = 201
    return response


@bp.get("/faults")
def list_faults():
    return jsonify(_fake().faults.rules())


@bp.delete("/faults")
def clear_faults():
    token = request.args.get("tenant")
    tenant = None if token is None else _fake().registry.by_either_token(token)
    _fake().faults.clear(None if token is None else frozenset(
        tenant.tokens if tenant else (token,)))
    return jsonify({"cleared": True})


@bp.get("/pending")
def pending():
    tenant = _tenant()
    with tenant.lock:
        return jsonify(list(tenant.pending.values()))


@bp.post("/pending/<pid>/assign")
def assign(pid):
    tenant = _tenant()
    body = read_json(dict)
    key = body.get("companyId")
    if not isinstance(key, str) or not key:
        raise ApiError(400, "invalid_field", "companyId: name the company (an _id, extid-… or "
                       "srcid-…)", "companyId")
    with tenant.lock:
        try:
            outcome = assign_pending(tenant, pid, key)
        except Rejected as exc:
            raise ApiError(404, exc.reason, exc.message, exc.field) from None
        outcome.key, outcome.row = "_id", {"_id": pid, "companyId": key}
        trace(tenant, "enduser", [outcome], via=f"POST /__admin/pending/{pid}/assign")
    return jsonify(outcome.record)


@bp.get("/snapshot")
def get_snapshot():
    """One tenant (``?tenant=``) or every tenant, as a version-tagged snapshot document."""
    # the document, its tenants, each tenant, its lists, then one record at a time
    if "tenant" in request.args:
        return _streamed(snapshot.dump([_tenant()]), 4)
    return _streamed(snapshot.dump_all(_fake().registry), 4)


@bp.put("/snapshot")
def put_snapshot():
    """Restore a snapshot, all or nothing (400 naming the field; nothing changes)."""
    tenant = _tenant() if "tenant" in request.args else None
    doc = read_json(dict)
    fake = _fake()
    before = fake.registry.all()
    try:
        restored = snapshot.restore(fake.registry, doc, tenant)
    except snapshot.SnapshotError as exc:
        raise ApiError(400, "invalid_snapshot", str(exc), exc.field) from None
    gone = [t for t in before if fake.registry.by_tenant_token(t.tenant_token) is not t]
    if gone:  # a whole-server restore deleted them: their fault rules go too
        fake.faults.clear(frozenset(tok for t in gone for tok in t.tokens))
    return jsonify({"restored": [t.tenant_token for t in restored]})


@bp.get("/clock")
def get_clock():
    tenant = _tenant()
    with tenant.lock:
        return jsonify(tenant.clock_state())


@bp.post("/clock")
def post_clock():
    """Set the tenant's test clock: ``{"now": ISO}``, ``{"advance": "P30D" | seconds}`` or
    ``{"real": true}``."""
    tenant = _tenant()
    body = read_json(dict)
    with tenant.lock:
        try:
            snapshot.set_clock(tenant, body)
        except snapshot.SnapshotError as exc:
            raise ApiError(400, "invalid_field", str(exc), exc.field) from None
        return jsonify(tenant.clock_state())


@bp.get("/scenario")
def recorded_scenario():
    """The scenario file that replays what the tenant received (YAML)."""
    from ..recording import RecordingError, scenario_lines

    tenant = _tenant()
    if _fake().config.recording_bytes <= 0:
        raise ApiError(409, "recording_off", "tenant: recording is off (the server was started "
                       "with --recording-bytes 0); start it with --recording-bytes BYTES "
                       "(default 64 MB) to record", "tenant")
    try:
        lines = scenario_lines(tenant)
    except RecordingError as exc:
        raise ApiError(409, "nothing_to_record", f"tenant: {exc}", "tenant") from None
    return Response(lines, mimetype="application/yaml")


@bp.get("/openapi.json")
def openapi():
    text = resources.files("mock_planhat").joinpath("openapi.json").read_text("utf-8")
    return Response(text, mimetype="application/json")


def openapi_document() -> dict:
    return json.loads(resources.files("mock_planhat").joinpath("openapi.json").read_text("utf-8"))
