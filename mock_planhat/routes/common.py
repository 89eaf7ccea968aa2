"""What every model's handlers share: paging, sorting, selecting, bulk bodies, checked
bodies, 404s, rendering an outcome and recording the decision trace."""

from __future__ import annotations

from flask import current_app, jsonify, request

from ..errors import ApiError, read_json
from ..journal import AFTER_ANSWER, DECISIONS
from ..matching import BULK_LIMIT
from ..records import FieldError, check_row
from ..trace import settle


def _int_arg(name: str, default: int, maximum: int | None = None) -> int:
    raw = single_arg(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_query", f"{name}: {raw!r} is not a whole number",
                       name) from None
    if value < 0:
        raise ApiError(400, "invalid_query", f"{name}: must not be negative", name)
    return min(value, maximum) if maximum is not None else value


PAGING = ("limit", "offset", "sort", "select")


def check_query(filters: tuple[str, ...]) -> None:
    """Refuse a query parameter the list does not know (a typo would otherwise list
    everything), and an empty value of any parameter: ``?email=`` is a mistake of the
    caller's, not a filter that matches everyone or no one."""
    for name in request.args:
        if name not in PAGING and name not in filters:
            known = ", ".join((*PAGING, *filters))
            raise ApiError(400, "invalid_query", f"{name}: not a query parameter of "
                           f"{request.method} {request.path} ({known})", name)
        for raw in request.args.getlist(name):
            if not raw.strip(" ,"):
                raise ApiError(400, "invalid_query", f"{name}: an empty value; leave the "
                               "parameter out, or give it a value", name)


def single_arg(name: str) -> str | None:
    """A parameter that takes one value (``limit``, ``sort``, ...): given twice is a 400."""
    values = request.args.getlist(name)
    if len(values) > 1:
        raise ApiError(400, "invalid_query", f"{name}: given {len(values)} times; give it "
                       "once", name)
    return values[0] if values else None


def _sort_key(field: str):
    def key(record):
        value = record.get(field)
        if value is None:
            return (1, 0, "")
        if isinstance(value, bool):
            return (0, 0, int(value))
        if isinstance(value, (int, float)):
            return (0, 0, value)
        return (0, 1, str(value))
    return key


def page(records: list[dict], default_limit: int, max_limit: int):
    """Apply sort, offset, limit and select from the query string; a bare JSON array."""
    limit = _int_arg("limit", default_limit, max_limit)
    offset = _int_arg("offset", 0)
    sort = single_arg("sort")
    if sort:
        field = sort.lstrip("-")
        if not field:
            raise ApiError(400, "invalid_query", "sort: name a field, '-' for descending", "sort")
        records = sorted(records, key=_sort_key(field), reverse=sort.startswith("-"))
    records = records[offset:offset + limit]
    select = single_arg("select")
    if select:
        fields = {"_id", *(f.strip() for f in select.split(",") if f.strip())}
        records = [{k: v for k, v in r.items() if k in fields} for r in records]
    return jsonify(records)


def bulk_rows() -> list:
    """A bulk upsert's body: an array of at most BULK_LIMIT rows (else a 400 naming it)."""
    rows = read_json(list, "body")
    if len(rows) > BULK_LIMIT:
        raise ApiError(400, "too_many_items", f"body: {len(rows)} items; a bulk upsert takes "
                       f"at most {BULK_LIMIT}", "body")
    return rows


PATH_KEYS = {"extid-": "externalId", "srcid-": "sourceId"}  # the key a path's id names


def trace(tenant, kind: str, outcomes: list, via: str | None = None) -> None:
    """Keep the rows' decisions on this request's journal entry and in the tenant's history
    (one packed group a request, see trace.settle: this is on every write's path). Callers hold
    ``tenant.lock``. Where the server sends the answer first (``journal.AFTER_ANSWER``), the
    decisions are settled then, before the journal entry: the answer does not need them, and
    the outcomes' records are not changed in place by later writes (a write makes new
    ones)."""
    environ = request.environ
    entry_id = current_app.extensions["mock_planhat"].journal.reserve(environ)
    groups = environ.get(DECISIONS)
    if groups is None:
        groups = environ[DECISIONS] = []
    later = environ.get(AFTER_ANSWER)
    if later is None:
        groups.append(settle(kind, outcomes, entry_id, via, tenant.history))
        return
    slot = len(groups)
    groups.append(None)

    def settle_later() -> None:
        with tenant.lock:
            groups[slot] = settle(kind, outcomes, entry_id, via, tenant.history)

    later.append(settle_later)


def filter_values(*names: str) -> set[str] | None:
    """The values a filter allows — a comma list, or the parameter repeated (either of
    ``names``, which are spellings of one filter) — or None when the filter is not given."""
    raw = [v for name in names for v in request.args.getlist(name)]
    if not raw:
        return None
    return {v.strip() for text in raw for v in text.split(",") if v.strip()}


STATUS_BY_REASON = {
    "ambiguous_email": 409, "duplicate_external_id": 409, "duplicate_source_id": 409,
    "unknown_id": 404, "unknown_company": 404, "unknown_user": 404,
    "company_has_records": 409,
}


def outcome_response(outcome):
    """One row's outcome as a response: the record, or a 4xx naming the field."""
    record = outcome.record
    if outcome.status in ("rejected", "discarded"):
        raise ApiError(STATUS_BY_REASON.get(outcome.reason, 400), outcome.reason,
                       outcome.message, outcome.field)
    if outcome.status == "held":
        response = jsonify({**record, "pending": True, "message": outcome.message})
        response.status_code = 202
        return response
    return jsonify(record)


def checked_body(fields: dict) -> dict:
    """The request's JSON object, its known fields type-checked (a 400 names the field)."""
    try:
        return check_row(read_json(dict), fields)
    except FieldError as exc:
        raise ApiError.from_field(exc) from None


def found(record, what: str, key: str) -> dict:
    """The record, or a 404 that names the key that found nothing."""
    if record is None:
        raise ApiError(404, "not_found", f"id: no {what} matches {key!r}", "id")
    return record
