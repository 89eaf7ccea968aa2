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


# ----- the fast path: the shapes SDKs send, checked by hand --------------------------------
# jsonschema costs ~0.1 ms a call. Well-formed calls are checked below against the same rules
# as segment_schema.json; a call the check does not plainly accept goes to jsonschema, which
# alone decides it and words the error. The check only ever says "valid" or "ask jsonschema".
_STRING_FIELDS = ("timestamp", "originalTimestamp", "sentAt", "receivedAt", "channel",
                  "writeKey", "event", "name", "category")
_OBJECT_FIELDS = ("traits", "properties")
_CONTEXT_OBJECT_FIELDS = ("traits", "library", "page")
_PERSONAS_FIELDS = ("computation_class", "computation_key", "computation_id")
_MAX_MESSAGE_ID = 100


def _is_id(value: Any) -> bool:
    """The schema's ``"type": ["string", "number"]`` (a bool is not a number)."""
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _is_required_id(value: Any) -> bool:
    return _is_id(value) and value != ""


def _optional(value: Any, check) -> bool:
    return value is None or check(value)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_dict(value: Any) -> bool:
    return isinstance(value, dict)


def _context_ok(context: Any) -> bool:
    if context is None:
        return True
    if not isinstance(context, dict):
        return False
    if not all(_optional(context.get(k), _is_dict) for k in _CONTEXT_OBJECT_FIELDS):
        return False
    if not _optional(context.get("groupId"), _is_id):
        return False
    personas = context.get("personas")
    if personas is None:
        return True
    return isinstance(personas, dict) and all(
        _optional(personas.get(k), _is_str) for k in _PERSONAS_FIELDS
    )


def _integrations_ok(integrations: Any) -> bool:
    if integrations is None:
        return True
    return isinstance(integrations, dict) and all(
        v is None or isinstance(v, bool | dict) for v in integrations.values()
    )


def _plainly_valid(call: dict[str, Any]) -> bool:
    """True when ``call`` certainly satisfies ``segment_schema.json``; False: ask jsonschema."""
    kind = call.get("type")
    if not isinstance(kind, str) or kind not in CALL_TYPES:
        return False
    message_id = call.get("messageId")
    if message_id is not None and not (
        isinstance(message_id, str) and len(message_id) <= _MAX_MESSAGE_ID
    ):
        return False
    version = call.get("version")
    if version is not None and not (
        isinstance(version, str | int) and not isinstance(version, bool)
    ):
        return False
    if not (
        all(_optional(call.get(k), _is_str) for k in _STRING_FIELDS)
        and all(_optional(call.get(k), _is_dict) for k in _OBJECT_FIELDS)
        and all(_optional(call.get(k), _is_id) for k in ID_FIELDS)
        and _context_ok(call.get("context"))
        and _integrations_ok(call.get("integrations"))
    ):
        return False
    if kind == "track":
        return bool(call.get("event"))  # required, a non-empty string
    if kind == "group":
        return _is_required_id(call.get("groupId"))
    if kind == "alias":
        return _is_required_id(call.get("previousId")) and _is_required_id(call.get("userId"))
    return True


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
        data = dict(call)
        errors = [] if _plainly_valid(data) else list(_validator().iter_errors(data))
    except Exception as exc:  # pragma: no cover - defensive (e.g. exotic objects)
        raise InvalidCall(f"call: cannot be validated ({exc})", call=call) from None
    if errors:
        field, message = _describe(min(errors, key=_rank))
        raise InvalidCall(f"{field}: {message}", field=field, call=call)
    try:
        return _normalise(call)
    except Exception as exc:  # pragma: no cover - deepcopy of exotic values
        raise InvalidCall(f"call: cannot be copied ({exc})", call=call) from None
