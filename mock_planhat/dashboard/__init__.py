"""The dashboard: HTML pages over the same read functions as the JSON admin API.

Served at ``GET /`` and ``GET /__admin/`` (pages under ``/__admin/ui/``), for the admin API's
clients only (loopback, and ``--admin-from`` networks). Server-rendered with Jinja (autoescape
on: every value is escaped), one CSS and one small JavaScript file (live refresh of the
journal), no build step, no CDN; every page works without JavaScript. The one state-changing
action, assigning a pending contact, is a POST with a same-origin check.

This package has no queries of its own: it renders what :mod:`mock_planhat.read` returns.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from .. import read
from ..matching import Rejected, assign_pending
from ..routes.common import trace

bp = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
               static_url_path="/__admin/ui/static")
PAGE = 50
KIND_LABELS = {"endusers": "End users", "companies": "Companies", "pending": "Pending contacts"}


def _fake():
    return current_app.extensions["mock_planhat"]


def _tenant(token: str):
    try:
        return read.find_tenant(_fake().registry, token)
    except read.QueryError:
        abort(404)


@bp.app_template_filter("pretty")
def _pretty(value) -> str:
    """JSON for a <pre>, as text (Jinja escapes it like any other value)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


@bp.app_template_global("query")
def _query(**changes) -> str:
    """The current query string with some parameters changed (None removes one)."""
    args = {k: v for k, v in request.args.items()}
    for key, value in changes.items():
        if value is None or value == "":
            args.pop(key, None)
        else:
            args[key] = value
    return "?" + urlencode(args) if args else "?"


@bp.get("/")
@bp.get("/__admin/")
def index():
    fake = _fake()
    return render_template("tenants.html", tenants=read.tenants(fake.registry),
                           journal_total=fake.journal.total)


@bp.get("/__admin/ui/t/<token>/<kind>")
def records(token: str, kind: str):
    if kind not in read.RECORD_KINDS:
        abort(404)
    tenant = _tenant(token)
    q = request.args.get("q", "")
    sort = request.args.get("sort", "")
    error = None
    try:
        offset = read.whole_number(request.args, "offset", 0)
        limit = read.whole_number(request.args, "limit", PAGE, read.MAX_PAGE) or PAGE
    except read.QueryError as exc:
        error, offset, limit = str(exc), 0, PAGE
    total, page = read.records_page(tenant, kind, q, sort, offset, limit)
    return render_template("records.html", tenant=tenant, kind=kind, label=KIND_LABELS[kind],
                           records=page, total=total, q=q, sort=sort, offset=offset,
                           limit=limit, error=error)


@bp.get("/__admin/ui/t/<token>/person/<pid>")
def person(token: str, pid: str):
    return _person_page(_tenant(token), pid)


def _person_page(tenant, pid: str, error: str | None = None):
    """An end user's or pending contact's page (with the companies to assign a pending one
    to); with ``error``, the assign form's error, answered 400."""
    found = read.person(_fake(), tenant, pid)
    if found is None:
        abort(404)
    companies = []
    if found["pending"]:
        _, companies = read.records_page(tenant, "companies", limit=200)
    page = render_template("person.html", tenant=tenant, companies=companies, error=error,
                           **found)
    return (page, 400) if error else page


@bp.get("/__admin/ui/t/<token>/company/<cid>")
def company(token: str, cid: str):
    tenant = _tenant(token)
    story = read.explain(_fake(), tenant, "id", cid)
    record = next((f["record"] for f in story["found"] if f["kind"] == "company"), None)
    if record is None:
        abort(404)
    with tenant.lock:
        members = tenant.members(cid)[:200]
    return render_template("company.html", tenant=tenant, record=record, members=members,
                           history=story["history"])


@bp.get("/__admin/ui/explain")
def explain():
    tenant = _tenant(request.args.get("tenant"))
    args = {k: v for k, v in request.args.items() if v}
    try:
        by, value = read.explain_args(args)
    except read.QueryError as exc:
        return render_template("explain.html", tenant=tenant, error=str(exc), story=None), 400
    story = read.explain(_fake(), tenant, by, value)
    return render_template("explain.html", tenant=tenant, error=None, story=story)


@bp.get("/__admin/ui/journal")
def journal():
    args = {k: v for k, v in request.args.items() if v != "" and k != "live"}
    error = None
    try:
        result = read.journal_query(_fake(), args, default_limit=PAGE, newest_first=True)
    except read.QueryError as exc:
        error = str(exc)
        result = read.journal_query(_fake(), {}, default_limit=PAGE, newest_first=True)
    return render_template("journal.html", result=result, args=request.args, error=error,
                           tenants=read.tenants(_fake().registry)), 400 if error else 200


@bp.get("/__admin/ui/t/<token>/funnel")
def funnel(token: str):
    tenant = _tenant(token)
    return render_template("funnel.html", tenant=tenant, funnel=read.funnel(_fake(), tenant))


@bp.get("/__admin/ui/faults")
def faults():
    return render_template("faults.html", rules=_fake().faults.rules())


@bp.post("/__admin/ui/t/<token>/pending/<pid>/assign")
def assign(token: str, pid: str):
    _same_origin()
    tenant = _tenant(token)
    key = (request.form.get("companyId") or "").strip()
    with tenant.lock:
        try:
            if not key:
                raise Rejected("invalid_field", "companyId: choose a company")
            outcome = assign_pending(tenant, pid, key)
        except Rejected as exc:
            error = exc.message
        else:
            error = None
            outcome.key, outcome.row = "_id", {"_id": pid, "companyId": key}
            trace(tenant, "enduser", [outcome], via=f"dashboard: assign {pid} to {key}")
    if error:
        return _person_page(tenant, pid, error)
    return redirect(url_for("dashboard.person", token=tenant.tenant_token, pid=pid), 303)


def _same_origin() -> None:
    """A state-changing POST must come from a page of this server: its Origin (or, without
    one, its Referer) must be this host. Cross-site forms are refused with 403."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        referer = request.headers.get("Referer")
        if referer:
            parts = urlsplit(referer)
            origin = f"{parts.scheme}://{parts.netloc}"
    if origin != request.host_url.rstrip("/"):
        abort(403, "the dashboard takes POSTs from its own pages only (Origin must be "
                   f"{request.host_url.rstrip('/')})")
