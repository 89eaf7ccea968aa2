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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    import jsonschema  # only calls the fast check declines get here: keep it off start-up

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


_ATOMIC = frozenset({str, int, float, bool, type(None)})


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    """``copy.deepcopy(value, memo)``, short-cut for the JSON types a call is made of.

    Plain dicts, lists and scalars are copied here exactly as deepcopy copies them (memo
    included, so shared and cyclic parts stay so); any other type is left to deepcopy.
    """
    cls = type(value)
    if cls in _ATOMIC:
        return value
    if cls is not dict and cls is not list:
        return copy.deepcopy(value, memo)
    done = memo.get(id(value))
    if done is not None:
        return done
    # Scalars (most keys and values) are kept as they are without a call: a call per scalar
    # was most of the copy's time.
    if cls is dict:
        new_dict: dict[Any, Any] = {}
        memo[id(value)] = new_dict
        for key, item in value.items():
            if type(key) not in _ATOMIC:
                key = _copy(key, memo)
            new_dict[key] = item if type(item) in _ATOMIC else _copy(item, memo)
        return new_dict
    new_list: list[Any] = []
    memo[id(value)] = new_list
    for item in value:
        new_list.append(item if type(item) in _ATOMIC else _copy(item, memo))
    return new_list


def _normalise(call: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v if type(v) in _ATOMIC else _copy(v, {}) for k, v in call.items() if v is not None}
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
_ID = (str, int, float)  # the schema's "string or number"
# field -> the types the schema allows for it besides null (a bool is never one of them)
_TOP_LEVEL = {
    **dict.fromkeys(("messageId", "timestamp", "originalTimestamp", "sentAt", "receivedAt",
                     "channel", "writeKey", "event", "name", "category"), str),
    **dict.fromkeys(("traits", "properties", "context", "integrations"), dict),
    **dict.fromkeys(ID_FIELDS, _ID),
    "version": (str, int),
}
_CONTEXT = {"traits": dict, "library": dict, "page": dict, "personas": dict, "groupId": _ID}
_PERSONAS = dict.fromkeys(("computation_class", "computation_key", "computation_id"), str)
_MAX_MESSAGE_ID = 100


def _fields_fit(obj: dict[str, Any], types: dict[str, Any]) -> bool:
    """Each listed field of ``obj`` is absent, null, or of its allowed types."""
    for key, value in obj.items():  # a call has fewer keys than the table
        allowed = types.get(key)
        if allowed is not None and value is not None and (
            type(value) is bool or not isinstance(value, allowed)
        ):
            return False
    return True


def _is_required_id(value: Any) -> bool:
    return type(value) is not bool and isinstance(value, _ID) and value != ""


def _plainly_valid(call: dict[str, Any]) -> bool:
    """True when ``call`` certainly satisfies ``segment_schema.json``; False: ask jsonschema."""
    kind = call.get("type")
    if type(kind) is not str or kind not in CALL_TYPES or not _fields_fit(call, _TOP_LEVEL):
        return False
    if len(call.get("messageId") or "") > _MAX_MESSAGE_ID:
        return False
    context = call.get("context")
    if context is not None:
        if not _fields_fit(context, _CONTEXT):
            return False
        personas = context.get("personas")
        if personas is not None and not _fields_fit(personas, _PERSONAS):
            return False
    integrations = call.get("integrations")
    if integrations is not None:
        for value in integrations.values():
            if value is not None and not isinstance(value, bool | dict):
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
