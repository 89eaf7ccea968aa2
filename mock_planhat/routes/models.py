"""Every model of `models.TABLE` — companies and end users too — from one set of handlers: a
blueprint built from the table.

For a model at ``/M``: ``POST /M``, ``GET /M`` (``limit``/``offset``/``sort``/``select`` and the
model's filters; an unknown or empty filter is a 400), ``PUT /M`` (bulk upsert, unless the model
has none), ``GET``/``PUT``/``DELETE /M/{key}`` with ``key`` an ``_id``, ``extid-…`` or ``srcid-…``;
``GET /lean<M>`` for a model with lean fields (``/leancompanies``). A model with a decision-trace
kind (companies, end users) records every write's decision. Also ``GET /dimensiondata``: what
``POST /dimensiondata/{token}`` stored, with its company.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import MethodNotAllowed

from .. import engine
from ..auth import api_tenant
from ..errors import ApiError, json_response
from ..matching import Rejected, attempt, find_company
from ..models import EPOCH, TABLE, Model
from ..records import FieldError
from .common import (
    PATH_KEYS,
    STATUS_BY_REASON,
    bulk_rows,
    check_query,
    checked_body,
    filter_values,
    found,
    outcome_response,
    page,
    single_arg,
    trace,
)

bp = Blueprint("models", __name__)


def _filters(allowed: tuple[str, ...], single: tuple[str, ...] = ()) -> dict:
    """The query's filters (the shared rules: an unknown or empty parameter is a 400): a set of
    values each, or the one value of a filter in ``single``."""
    check_query(allowed)
    return {name: single_arg(name) if name in single else filter_values(name)
            for name in allowed if name in request.args}


def _record(tenant, model: Model, key: str) -> dict:
    return found(engine.find(tenant, model, key), model.name, key)


def _select(tenant, model: Model) -> list[dict]:
    filters = _filters(model.list_filters, model.single_filters)
    with tenant.lock:
        try:
            return engine.select(tenant, model, filters)
        except FieldError as exc:
            raise ApiError.from_field(exc) from None


def _traced(tenant, model: Model, outcomes: list) -> None:
    if model.trace is not None:
        trace(tenant, model.trace, outcomes)


def _handlers(model: Model):
    report = model.report_single

    def list_records():
        return page(_select(api_tenant(), model), model.default_limit, model.max_limit)

    def lean():
        records = [{k: r.get(k) for k in model.lean if k in r}
                   for r in _select(api_tenant(), model)]
        return page(records, model.max_limit, model.max_limit)

    def create():
        tenant = api_tenant()
        row = checked_body(model.checks)
        with tenant.lock:
            outcome = attempt(tenant, lambda: engine.create(tenant, model, row), row,
                              request.path, report=report)
            _traced(tenant, model, [outcome])
        return outcome_response(outcome)

    def bulk():
        tenant = api_tenant()
        rows = bulk_rows()
        with tenant.lock:
            result = engine.bulk_upsert(tenant, model, rows, request.path)
            _traced(tenant, model, getattr(result, "outcomes", ()))
        return json_response(result.as_dict(), result.status)

    def get(key):
        tenant = api_tenant()
        with tenant.lock:
            return jsonify(_record(tenant, model, key))

    def update(key):
        tenant = api_tenant()
        row = checked_body(model.checks)
        with tenant.lock:
            record = _record(tenant, model, key)
            outcome = attempt(tenant, lambda: engine.update(tenant, model, record, row), row,
                              request.path, report=report)
            if model.trace is not None:
                outcome.key = outcome.key or PATH_KEYS.get(key[:6], "_id")
                _traced(tenant, model, [outcome])
        return outcome_response(outcome)

    def delete(key):
        tenant = api_tenant()
        with tenant.lock:
            record = _record(tenant, model, key)
            try:
                extra = engine.delete(tenant, model, record)
            except Rejected as exc:
                raise ApiError(STATUS_BY_REASON.get(exc.reason, 400), exc.reason, exc.message,
                               exc.field) from None
        return jsonify({"n": 1, "ok": 1, "deletedCount": 1, **extra})

    return list_records, lean, create, bulk, get, update, delete


HANDLERS = {}
for _model in TABLE:
    _list, _lean, _create, _bulk, _get, _update, _delete = HANDLERS[_model.path] = \
        _handlers(_model)
    _base, _name = f"/{_model.path}", _model.path
    bp.add_url_rule(_base, f"{_name}_list", _list, methods=["GET"])
    if _model.lean:
        bp.add_url_rule(f"/lean{_model.path}", f"{_name}_lean", _lean, methods=["GET"])
    bp.add_url_rule(_base, f"{_name}_create", _create, methods=["POST"])
    if _model.bulk:
        bp.add_url_rule(_base, f"{_name}_bulk", _bulk, methods=["PUT"])
    _item = f"{_base}/<path:key>"
    bp.add_url_rule(_item, f"{_name}_get", _get, methods=["GET"])
    bp.add_url_rule(_item, f"{_name}_update", _update, methods=["PUT"])
    bp.add_url_rule(_item, f"{_name}_delete", _delete, methods=["DELETE"])


# ----- a company's records: /companies/{key}/<model> (pyplanhat lists by company this way) --
_GET, _UPDATE, _DELETE = 4, 5, 6  # positions in a model's HANDLERS


def _whole_key(key: str, child: str) -> str | None:
    """``key/child`` when that whole text is a company's key (an externalId or sourceId that
    ends in ``/tasks``, ...): such a company is read, updated and deleted at its own path, which
    this list's route would otherwise take."""
    whole = f"{key}/{child}"
    tenant = api_tenant()
    with tenant.lock:
        return whole if find_company(tenant, whole) is not None else None


def _company_records(model: Model):
    def list_company_records(key):
        whole = _whole_key(key, model.path)
        if whole is not None:
            return HANDLERS["companies"][_GET](whole)
        tenant = api_tenant()
        check_query(())
        with tenant.lock:
            company = found(find_company(tenant, key), "company", key)
            records = engine.collection(tenant, model).of_company(company["_id"])
        return page(records, model.default_limit, model.max_limit)
    return list_company_records


GET_ONLY = ["GET", "HEAD", "OPTIONS"]


def _get_only(key):
    """Other methods on a company's list: 405 (else ``PUT /companies/<path:key>`` would take
    them as a company whose key ends in ``/tasks``), and OPTIONS names GET alone (Flask's own
    answer would add the methods of ``/companies/<path:key>``) — unless such a company exists:
    then PUT and DELETE are its own."""
    child = request.path.rpartition("/")[2]
    whole = _whole_key(key, child) if request.method in ("PUT", "DELETE") else None
    if whole is not None:
        return HANDLERS["companies"][_UPDATE if request.method == "PUT" else _DELETE](whole)
    if request.method == "OPTIONS":
        return current_app.response_class(status=200, headers={"Allow": ", ".join(GET_ONLY)})
    raise MethodNotAllowed(valid_methods=GET_ONLY)


COMPANY_CHILDREN = tuple(m for m in TABLE if m.company_owned)
for _child_model in COMPANY_CHILDREN:
    _child = _child_model.path
    bp.add_url_rule(f"/companies/<key>/{_child}", f"company_{_child}",
                    _company_records(_child_model), methods=["GET"],
                    provide_automatic_options=False)
    bp.add_url_rule(f"/companies/<key>/{_child}", "get_only", _get_only,
                    methods=["PUT", "POST", "DELETE", "PATCH", "OPTIONS"],
                    provide_automatic_options=False)


# ----- dimension data, read back -------------------------------------------------------------
DIMENSION_FILTERS = ("cid", "dimid", "from", "to")
DIMENSION_DEFAULT, DIMENSION_MAX = 100, 10_000


def _day_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, "invalid_query", f"{name}: {raw!r} is not a whole number of days "
                       "since 1970", name) from None


def _day_of(value) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return (datetime.fromisoformat(value.strip().replace("Z", "+00:00")).date()
                - EPOCH).days
    except ValueError:
        return None


def _owner(tenant, row: dict) -> dict | None:
    """The company a data point belongs to: by the row's externalId, read as a company's
    (model ``Company`` or none), an end user's, an asset's or a project's (then its company)."""
    ext = row.get("externalId")
    if not isinstance(ext, str):
        return None
    model = str(row.get("model") or "Company").lower()
    if model in ("user", "enduser", "endusers"):
        owner = tenant.person_by_external_id(ext)
    elif model in ("asset", "project"):
        owner = tenant.collections[model + "s"].by_external_id(ext)
    else:
        return tenant.company_by_external_id(ext)
    return tenant.company(owner.get("companyId")) if owner else None


@bp.get("/dimensiondata")
def dimension_data():
    tenant = api_tenant()
    for name in ("sort", "select"):
        if name in request.args:
            raise ApiError(400, "invalid_query", f"{name}: not a query parameter of GET "
                           f"/dimensiondata (limit, offset, {', '.join(DIMENSION_FILTERS)})",
                           name)
    filters = _filters(DIMENSION_FILTERS)
    low, high = _day_arg("from"), _day_arg("to")
    dimids = filters.get("dimid")
    cid = request.args.get("cid")
    with tenant.lock:
        company = find_company(tenant, cid) if cid else None
        rows = []
        for row in tenant.dimensiondata if company is not None or not cid else ():
            if dimids and row.get("dimensionId") not in dimids:
                continue
            if low is not None or high is not None:
                day = _day_of(row.get("date"))
                if day is None or (low is not None and day < low) or \
                        (high is not None and day > high):
                    continue
            owner = _owner(tenant, row)
            if company is not None and owner is not company:
                continue
            rows.append({**row, "companyId": owner and owner["_id"],
                         "companyName": owner and owner.get("name")})
    return page(rows, DIMENSION_DEFAULT, DIMENSION_MAX)
