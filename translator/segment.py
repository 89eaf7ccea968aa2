"""Validation and normalisation of Segment spec calls.

The JSON Schema lives in ``segment_schema.json`` (shipped as package data).  It accepts what
real SDKs send: ``null`` for absent optional fields, ``version`` as ``2`` or ``"1.1"``, unknown
top-level keys, any trait/property names.  :func:`validate_call` returns a normalised copy or
raises :class:`InvalidCall`; it never lets another exception escape.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema

CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")
ID_FIELDS = ("userId", "anonymousId", "groupId", "previousId")
_MAX_MESSAGE = 300


class InvalidCall(ValueError):
    """A call that is not a valid Segment call.

    ``.field`` is the dotted path of the offending field (``call.event``), ``.call`` the input
    exactly as given.
    """

    def __init__(self, message: str, field: str = "call", call: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.call = call


@lru_cache(maxsize=1)
def segment_schema() -> dict[str, Any]:
    """The JSON Schema of Segment calls (a fresh parse is cached; do not mutate it)."""
    text = resources.files("translator").joinpath("segment_schema.json").read_text("utf-8")
    return json.loads(text)


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    """Replace local ``{"$ref": "#/$defs/x"}`` nodes by their target (validation is faster)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and len(node) == 1:
            return _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    schema = segment_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(_inline_refs(schema, schema.get("$defs", {})))


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _describe(error: jsonschema.ValidationError) -> tuple[str, str]:
    path = ["call", *(str(p) for p in error.absolute_path)]
    if error.validator == "required" and isinstance(error.instance, Mapping):
        missing = [k for k in error.validator_value if k not in error.instance]
        if missing:
            path.append(str(missing[0]))
    return ".".join(path), _short(error.message)


def _rank(error: jsonschema.ValidationError) -> tuple[int, int, str]:
    # Prefer a wrong/missing `type` first, then the deepest path, then a stable order.
    is_type = (
        0
        if list(error.absolute_path) == ["type"]
        or (error.validator == "required" and "type" in error.validator_value)
        else 1
    )
    return (is_type, -len(error.absolute_path), ".".join(map(str, error.absolute_path)))


def _normalise(call: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: copy.deepcopy(v) for k, v in call.items() if v is not None}
    for key in ID_FIELDS:
        value = out.get(key)
        if isinstance(value, float) and value.is_integer():
            out[key] = str(int(value))
        elif isinstance(value, int | float):
            out[key] = str(value)
    context = out.get("context")
    if isinstance(context, dict):
        for key in [k for k, v in context.items() if v is None]:
            del context[key]
        gid = context.get("groupId")
        if isinstance(gid, int | float) and not isinstance(gid, bool):
            context["groupId"] = str(int(gid)) if float(gid).is_integer() else str(gid)
    return out


def validate_call(call: Any) -> dict[str, Any]:
    """Validate one Segment call and return a normalised deep copy.

    Normalisation: top-level keys whose value is ``None`` are dropped, as are ``None`` values
    inside ``context``; numeric ids (``userId``, ``anonymousId``, ``groupId``, ``previousId``,
    ``context.groupId``) become strings.  Raises :class:`InvalidCall` naming the field path.
    """
    if not isinstance(call, Mapping):
        raise InvalidCall(
            f"call: {_short(repr(call))} is not of type 'object'", field="call", call=call
        )
    try:
        errors = list(_validator().iter_errors(dict(call)))
    except Exception as exc:  # pragma: no cover - defensive (e.g. exotic objects)
        raise InvalidCall(f"call: cannot be validated ({exc})", call=call) from None
    if errors:
        field, message = _describe(min(errors, key=_rank))
        raise InvalidCall(f"{field}: {message}", field=field, call=call)
    try:
        return _normalise(call)
    except Exception as exc:  # pragma: no cover - deepcopy of exotic values
        raise InvalidCall(f"call: cannot be copied ({exc})", call=call) from None
