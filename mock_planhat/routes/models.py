"""Every model of `models.MODELS`, from one set of handlers: a blueprint built from the table.

For a model at ``/M``: ``POST /M``, ``GET /M`` (``limit``/``offset``/``sort``/``select`` and the
model's filters; an unknown or empty filter is a 400), ``PUT /M`` (bulk upsert, unless the model
has none), ``GET``/``PUT``/``DELETE /M/{key}`` with ``key`` an ``_id``, ``extid-…`` or ``srcid-…``.
Also ``GET /dimensiondata``: what ``POST /dimensiondata/{token}`` stored, with its company.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import MethodNotAllowed

from .. import engine
from ..auth import api_tenant
from ..errors import ApiError, json_response
from ..matching import attempt, find_company
from ..models import EPOCH, MODELS, Model
from .common import (
    bulk_rows,
    check_query,
    checked_body,
    filter_values,
    found,
    outcome_response,
    page,
)

bp = Blueprint("models", __name__)


def _filters(allowed: tuple[str, ...]) -> dict[str, set[str]]:
    """The query's filters (the shared rules: an unknown or empty parameter is a 400)."""
    check_query(allowed)
    return {name: filter_values(name) for name in allowed if name in request.args}


def _record(tenant, model: Model, key: str) -> dict:
    return found(engine.find(tenant, model, key), model.name, key)


def _handlers(model: Model):
    def list_records():
        tenant = api_tenant()
        filters = _filters(model.list_filters)
        with tenant.lock:
            records = engine.select(tenant, model, filters)
        return page(records, model.default_limit, model.max_limit)

    def create():
        tenant = api_tenant()
        row = checked_body(model.checks)
        with tenant.lock:
            outcome = attempt(tenant, lambda: engine.create(tenant, model, row), row,
                              request.path)
        return outcome_response(outcome)

    def bulk():
        tenant = api_tenant()
        rows = bulk_rows()
        with tenant.lock:
            result = engine.bulk_upsert(tenant, model, rows, request.path)
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
                              request.path)
        return outcome_response(outcome)

    def delete(key):
        tenant = api_tenant()
        with tenant.lock:
            engine.delete(tenant, model, _record(tenant, model, key))
        return jsonify({"n": 1, "ok": 1, "deletedCount": 1})

    return list_records, create, bulk, get, update, delete


for _model in MODELS:
    _list, _create, _bulk, _get, _update, _delete = _handlers(_model)
    _base, _name = f"/{_model.path}", _model.path
    bp.add_url_rule(_base, f"{_name}_list", _list, methods=["GET"])
    bp.add_url_rule(_base, f"{_name}_create", _create, methods=["POST"])
    if _model.bulk:
        bp.add_url_rule(_base, f"{_name}_bulk", _bulk, methods=["PUT"])
    _item = f"{_base}/<path:key>"
    bp.add_url_rule(_item, f"{_name}_get", _get, methods=["GET"])
    bp.add_url_rule(_item, f"{_name}_update", _update, methods=["PUT"])
    bp.add_url_rule(_item, f"{_name}_delete", _delete, methods=["DELETE"])


# ----- a company's records: /companies/{key}/<model> (pyplanhat lists by company this way) --
def _company_records(path: str):
    model = next((m for m in MODELS if m.path == path), None)
    default, maximum = (model.default_limit, model.max_limit) if model else (100, 2_000)

    def list_company_records(key):
        tenant = api_tenant()
        check_query(())
        with tenant.lock:
            company = found(find_company(tenant, key), "company", key)
            records = (engine.collection(tenant, model).of_company(company["_id"]) if model
                       else tenant.members(company["_id"]))
        return page(records, default, maximum)
    return list_company_records


GET_ONLY = ["GET", "HEAD", "OPTIONS"]


def _get_only(key):
    """Other methods on a company's list: 405 (else ``PUT /companies/<path:key>`` would take
    them as a company whose key ends in ``/tasks``), and OPTIONS names GET alone (Flask's own
    answer would add the methods of ``/companies/<path:key>``)."""
    if request.method == "OPTIONS":
        return current_app.response_class(status=200, headers={"Allow": ", ".join(GET_ONLY)})
    raise MethodNotAllowed(valid_methods=GET_ONLY)


COMPANY_CHILDREN = ("endusers", *(m.path for m in MODELS if m.company_owned))
for _child in COMPANY_CHILDREN:
    bp.add_url_rule(f"/companies/<key>/{_child}", f"company_{_child}", _company_records(_child),
                    methods=["GET"], provide_automatic_options=False)
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
