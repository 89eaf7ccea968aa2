"""Detection of Segment Engage (Personas) payloads.

Engage reaches a user-property destination such as Planhat in two shapes:

* an ``identify`` whose ``context.personas`` names the computation: ``computation_class``
  (``audience``, ``journey_step``, ``trait``, ``computed_trait``) and ``computation_key`` (the
  trait that carries the value; read it through the key, never re-derive it from a name);
* a ``track`` named ``Audience Entered`` / ``Audience Exited`` with
  ``properties.audience_key`` and ``properties[<audience_key>]`` as a boolean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MEMBERSHIP_CLASSES = frozenset({"audience", "journey_step"})
TRAIT_CLASSES = frozenset({"trait", "computed_trait"})
AUDIENCE_EVENTS = {"Audience Entered": True, "Audience Exited": False}


@dataclass(frozen=True)
class EngageValue:
    """One Engage-computed value destined for the end user's ``custom`` fields."""

    key: str
    value: Any
    computation_class: str


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


def identify_value(call: dict[str, Any]) -> EngageValue | None:
    """The Engage value carried by an identify, or None when it is not an Engage identify.

    Audiences and journey steps yield a boolean (``"true"``/``"false"`` strings are read as
    booleans); computed traits yield the trait's value unchanged.  An Engage identify whose
    traits lack ``computation_key`` yields None (nothing to set).
    """
    personas = (call.get("context") or {}).get("personas")
    if not isinstance(personas, dict):
        return None
    cls = personas.get("computation_class")
    key = personas.get("computation_key")
    if not isinstance(cls, str) or not isinstance(key, str) or not key:
        return None
    traits = call.get("traits") or {}
    if key not in traits:
        return None
    if cls in MEMBERSHIP_CLASSES:
        return EngageValue(key, _truthy(traits[key]), cls)
    if cls in TRAIT_CLASSES:
        return EngageValue(key, traits[key], cls)
    return None


def audience_track_value(call: dict[str, Any]) -> EngageValue | None:
    """The membership carried by an ``Audience Entered``/``Exited`` track, else None.

    The value is ``properties[audience_key]`` when it is a boolean, else implied by the event
    name (Entered → True, Exited → False).  Without a usable ``audience_key`` → None.
    """
    event = call.get("event")
    if call.get("type") != "track" or event not in AUDIENCE_EVENTS:
        return None
    props = call.get("properties") or {}
    key = props.get("audience_key")
    if not isinstance(key, str) or not key:
        return None
    value = props.get(key)
    if not isinstance(value, bool):
        value = AUDIENCE_EVENTS[event]
    return EngageValue(key, value, "audience")
