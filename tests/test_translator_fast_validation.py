"""The translator's hand-written fast check never accepts a call jsonschema would reject."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from translator.segment import CALL_TYPES, _plainly_valid, _validator, validate_call

_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False),
    st.sampled_from(["", "x", "a" * 101, "1.1"]),
)
_VALUES = st.one_of(_SCALARS, st.dictionaries(st.sampled_from(["a", "id"]), _SCALARS, max_size=2),
                    st.lists(_SCALARS, max_size=2))
_KEYS = ("type", "messageId", "timestamp", "userId", "anonymousId", "groupId", "previousId",
         "event", "name", "category", "version", "traits", "properties", "integrations",
         "channel", "writeKey", "sentAt", "extra")


def _context():
    inner = st.fixed_dictionaries({}, optional={
        "traits": _VALUES, "library": _VALUES, "page": _VALUES, "groupId": _VALUES,
        "personas": st.one_of(_VALUES, st.fixed_dictionaries({}, optional={
            "computation_class": _VALUES, "computation_key": _VALUES,
            "computation_id": _VALUES})),
        "ip": _VALUES,
    })
    return st.one_of(_VALUES, inner)


_CALLS = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(CALL_TYPES), _SCALARS)},
    optional={**{k: _VALUES for k in _KEYS if k != "type"}, "context": _context(),
              "integrations": st.one_of(_VALUES, st.dictionaries(
                  st.sampled_from(["All", "Planhat"]), _VALUES, max_size=2))},
)


@settings(max_examples=300, deadline=None)
@given(_CALLS)
def test_fast_check_accepts_only_what_the_schema_accepts(call):
    if _plainly_valid(call):
        assert list(_validator().iter_errors(call)) == []


def test_fast_check_accepts_the_common_shapes():
    context = {"library": {"name": "analytics-python"}, "groupId": "g", "ip": "1.2.3.4",
               "personas": {"computation_class": "audience", "computation_key": "k"}}
    calls = [
        {"type": "identify", "userId": "u", "traits": {"email": "a@b.c"}, "context": context},
        {"type": "track", "userId": 7, "event": "E", "properties": {}, "messageId": "m",
         "version": 2, "integrations": {"All": True, "Planhat": {}}},
        {"type": "page", "anonymousId": "a", "name": "Home", "timestamp": None},
        {"type": "group", "groupId": 12.5, "traits": {"name": "Acme"}},
        {"type": "alias", "previousId": "p", "userId": "u"},
        {"type": "screen", "userId": "u", "version": "1.1"},
    ]
    for call in calls:
        assert _plainly_valid(call), call
        assert validate_call(call)["type"] == call["type"]


def test_calls_the_fast_check_declines_still_get_jsonschema_messages():
    assert not _plainly_valid({"type": "track", "userId": "u", "event": ""})
    assert not _plainly_valid({"type": "group", "groupId": True})
    assert not _plainly_valid({"type": "identify", "messageId": "m" * 101})


def test_normalised_copy_is_deep_like_deepcopy():
    import copy
    from decimal import Decimal

    from translator.segment import _copy

    shared = {"a": [1, 2]}
    cyclic: dict = {"n": 1}
    cyclic["self"] = cyclic
    value = {"x": shared, "y": shared, "z": cyclic, "d": Decimal("1.5"), "t": (1, [2])}
    copied = _copy(value, {})
    expected = copy.deepcopy(value)
    assert copied["x"] is copied["y"] and copied["x"] is not shared
    assert copied["z"]["self"] is copied["z"] and copied["z"] is not cyclic
    assert copied["d"] == expected["d"] and copied["t"] == expected["t"]
    assert copied["t"][1] is not value["t"][1]
