"""Field types of Planhat's objects, and the checks a written row must pass.

A check returns a `FieldError` naming the field, or None. Unknown fields are kept as sent
(Planhat stores them too); known fields must have their type.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

MAX_KEY_LENGTH = 1024  # ids, emails, keys
MAX_TEXT_LENGTH = 65_536  # any other string
MAX_DEPTH = 32  # nesting of custom / info objects
HEX_ID = re.compile(r"[0-9a-f]{24}\Z")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

STATUSES = ("prospect", "coming", "customer", "canceled", "lost")
SERVER_FIELDS = frozenset({"createDate", "updatedAt", "companyName"})


@dataclass
class FieldError(Exception):
    field: str
    message: str
    reason: str = "invalid_field"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def as_dict(self) -> dict:
        return {"error": self.reason, "field": self.field, "message": str(self)}


def _key(value, field):
    if not isinstance(value, str):
        raise FieldError(field, f"must be a string, not {_type_name(value)}")
    if not value.strip():
        raise FieldError(field, "must not be empty")
    if len(value) > MAX_KEY_LENGTH:
        raise FieldError(field, f"is {len(value)} characters long; at most {MAX_KEY_LENGTH}")
    if _CONTROL.search(value):
        raise FieldError(field, "must not contain control characters")


def _text(value, field):
    if not isinstance(value, str):
        raise FieldError(field, f"must be a string, not {_type_name(value)}")
    if len(value) > MAX_TEXT_LENGTH:
        raise FieldError(field, f"is {len(value)} characters long; at most {MAX_TEXT_LENGTH}")


def _email(value, field):
    """An email is compared trimmed, so surrounding white space (tabs included) is allowed;
    the length limit counts the text as sent (as the OpenAPI document's maxLength does)."""
    if isinstance(value, str):
        if len(value) > MAX_KEY_LENGTH:
            raise FieldError(field, f"is {len(value)} characters long; at most "
                                    f"{MAX_KEY_LENGTH}")
        value = value.strip()
    _key(value, field)
    if not EMAIL.match(value):
        raise FieldError(field, f"{value!r} is not an email address")


def _object_id(value, field):
    if not isinstance(value, str) or not HEX_ID.match(value):
        raise FieldError(field, "must be a Planhat id (24 hexadecimal characters)")


def _bool(value, field):
    if not isinstance(value, bool):
        raise FieldError(field, f"must be true or false, not {_type_name(value)}")


def _number(value, field):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(field, f"must be a number, not {_type_name(value)}")


def _list_of(check):
    def run(value, field):
        if not isinstance(value, list):
            raise FieldError(field, f"must be an array, not {_type_name(value)}")
        for i, item in enumerate(value):
            check(item, f"{field}[{i}]")
    return run


def _object(value, field):
    if not isinstance(value, dict):
        raise FieldError(field, f"must be an object, not {_type_name(value)}")
    check_depth(value, field)


def _status(value, field):
    if value not in STATUSES:
        raise FieldError(field, f"{value!r} is not one of {', '.join(STATUSES)}")


_NUMBERS = frozenset({int, float, bool, type(None)})


def check_depth(value, field, depth=0):
    if depth > MAX_DEPTH:
        raise FieldError(field, f"is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        items = value.values()
    elif isinstance(value, list):
        items = value
    else:
        if isinstance(value, str) and len(value) > MAX_TEXT_LENGTH:
            raise FieldError(field, f"holds a string over {MAX_TEXT_LENGTH} characters")
        return
    for item in items:
        # Fast path: a number or a short string one level down passes without a call.
        if depth < MAX_DEPTH and (type(item) in _NUMBERS or (
                type(item) is str and len(item) <= MAX_TEXT_LENGTH)):
            continue
        check_depth(item, field, depth + 1)


def _type_name(value) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


ENDUSER_FIELDS = {
    "_id": _object_id, "email": _email, "externalId": _key, "sourceId": _key,
    "firstName": _text, "lastName": _text, "name": _text, "position": _text, "phone": _text,
    "companyId": _key, "companyExternalId": _key, "source": _text,
    "tags": _list_of(_text), "otherEmails": _list_of(_email),
    "featured": _bool, "primary": _bool, "archived": _bool, "custom": _object,
}
COMPANY_FIELDS = {
    "_id": _object_id, "name": _text, "externalId": _key, "sourceId": _key, "owner": _text,
    "phase": _text, "status": _status, "domains": _list_of(_key), "custom": _object,
    "source": _text,
}
DIMENSION_MODELS = ("Company", "EndUser", "Asset", "Project")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})"
                   r"([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?\Z")


def _model(value, field):
    if value not in DIMENSION_MODELS:
        shown = repr(value) if isinstance(value, str) else _type_name(value)
        raise FieldError(field, f"{shown[:80]} is not one of {', '.join(DIMENSION_MODELS)}")


def _date(value, field):
    """An ISO 8601 date or date-time (``2024-06-01``, ``2024-06-01T12:00:00Z``)."""
    match = _DATE.match(value) if isinstance(value, str) else None
    try:
        if match is None:
            raise ValueError
        datetime.date(*(int(match.group(i)) for i in (1, 2, 3)))
    except ValueError:
        shown = repr(value)[:80] if isinstance(value, str) else _type_name(value)
        raise FieldError(field, f"{shown} is not an ISO 8601 date (2024-06-01 or "
                         "2024-06-01T12:00:00Z)") from None


DIMENSION_FIELDS = {
    "dimensionId": _key, "value": _number, "externalId": _key, "model": _model, "date": _date,
}
ACTIVITY_FIELDS = {
    "email": _email, "externalId": _key, "name": _text, "companyExternalId": _key,
    "companyId": _key, "action": _text, "weight": _number, "date": _text, "info": _object,
    "source": _text,
}


def check_row(row, fields: dict, where: str = "") -> dict:
    """Check a written row; returns it with nulls dropped (null = "not sent")."""
    if not isinstance(row, dict):
        raise FieldError(where or "body", f"must be an object, not {_type_name(row)}")
    clean = {}
    for key, value in row.items():
        if value is None:
            continue
        name = f"{where}{key}"
        check = fields.get(key)
        if check is not None:
            check(value, name)
        else:
            check_depth(value, name)
        if key not in SERVER_FIELDS:
            # Only a declared email is known to be a string; an undeclared field is kept as sent.
            clean[key] = value.strip() if check is _email else value
    return clean
