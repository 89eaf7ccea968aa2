"""Segment call → Planhat HTTP requests.

:func:`translate` is pure and deterministic: the same call and settings always give the same
requests.  It never raises for a bad call; it returns a :class:`Skip` instead.

Mapping (``{api}`` = ``settings.api_url``, ``{analytics}`` = ``settings.analytics_url``):

* identify → ``PUT {api}/endusers`` with a one-row bulk-upsert array.  Row keys:
  ``externalId`` (``userId``, else a top-level ``user_id``, else ``traits.user_id``, else
  ``traits.id``; numbers are stringified), ``email``, ``name`` (``traits.name``, else
  first + last name), ``firstName``/``lastName`` (camelCase or snake_case traits),
  ``position`` (``traits.title``), ``phone``, ``companyId`` = ``"extid-<id>"`` from
  ``traits.companyId``, ``traits.company_id``, ``traits.company.id`` or ``context.groupId``
  (first present), ``source: "Segment"`` and ``custom`` = every other trait.  The traits
  consumed above are left out of ``custom`` (of ``user_id``/``id`` only the one that became
  the externalId).  ``traits.company`` as a string is ``custom.company``; as an object its
  ``name`` is ``custom.company`` and every other field but ``id`` is ``custom.company<Field>``
  (``plan`` → ``companyPlan``, ``employee_count`` → ``companyEmployeeCount``); a trait sent
  under that name itself wins.  Keys whose value is ``None`` are left out everywhere.
  Engage identifies put ``custom[computation_key]`` (boolean for audiences/journey steps).
* track → ``POST {analytics}/analytics/{tenant_token}`` activity ``{action, externalId, email,
  companyExternalId, date, info, weight: 1, source: "Segment"}`` (``companyExternalId`` from
  ``context.traits``' company id as identify reads it, else ``context.groupId``); ``Audience Entered``/``Exited``
  tracks become an end-user upsert row ``{externalId, email, custom: {<audience_key>: bool},
  source}``.
* page → activity with ``action`` ``"Viewed <name> Page"`` (``"Viewed Page"`` without a name).
* group → ``PUT {api}/companies`` (one row; ``name`` from ``traits.name``; ``website``,
  ``domain`` and ``domains`` traits become ``domains``, host only; ``traits.id`` goes to
  ``custom`` unless it is the ``groupId``) and, with a ``userId``, ``PUT
  {api}/endusers/extid-<userId>`` ``{"companyId": "extid-<groupId>"}`` (kind ``attach``).
  Without ``traits.name`` the company is updated, never renamed: ``PUT
  {api}/companies/extid-<groupId>`` (kind ``company_update``), and only when that answers 404
  its ``fallback``, the bulk upsert that creates it named after its ``groupId``.
* alias → ``PUT {api}/endusers/extid-<previousId>`` ``{"externalId": userId}``.
* screen → Skip ``unsupported_call``.

With ``settings.delivery == "dock"`` (Segment's cloud: no API token) a call that would produce
requests produces one instead: ``POST {analytics}/dock/segment`` with the call as it was given
and HTTP Basic ``tenant_token:`` (kind ``dock``); Planhat applies the mapping itself. The same
checks decide the skips, so Planhat is sent exactly the calls the REST mapping would act on.

Skip reasons: ``invalid_call``, ``filtered``, ``unsupported_call``, ``no_identifier``.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

from . import engage
from .segment import InvalidCall, validate_call
from .settings import DOCK_PATH, Settings

SOURCE = "Segment"
KINDS = ("enduser", "company", "company_update", "activity", "attach", "alias")

INVALID_CALL = "invalid_call"
FILTERED = "filtered"
UNSUPPORTED_CALL = "unsupported_call"
NO_IDENTIFIER = "no_identifier"

# Traits consumed by the standard end-user fields (never copied into ``custom``).
# ``id`` and ``user_id`` are left out only when they became the externalId.
_USER_TRAITS = frozenset(
    {
        "email",
        "name",
        "firstName",
        "lastName",
        "first_name",
        "last_name",
        "title",
        "phone",
        "companyId",
        "company_id",
    }
)
_COMPANY_TRAITS = frozenset({"id", "name"})
_WEB_TRAITS = ("website", "domain", "domains")  # group traits that become company domains
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+\Z")
_WORD_BREAK = re.compile(r"[_\s-]+")


@dataclass(frozen=True)
class PlanhatRequest:
    """One HTTP request to Planhat.

    ``host`` is ``"api"`` (main REST API) or ``"analytics"`` (tracking host); ``kind`` is one of
    ``enduser``, ``company``, ``company_update``, ``activity``, ``attach``, ``alias``;
    ``call_type`` is the Segment call type that produced it; ``fallback``, a request to send
    instead when this one answers 404.
    """

    method: str
    url: str
    path: str
    host: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    kind: str = ""
    call_type: str = ""
    fallback: PlanhatRequest | None = None  # sent instead when this one answers 404

    def body_bytes(self) -> bytes:
        """The body serialised as compact UTF-8 JSON."""
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class Skip:
    """A call that produces no request: ``reason`` is a stable code, ``detail`` a sentence.

    ``reported`` is True when Planhat noted the skip itself in an answer it accepted (a row
    error of a bulk upsert, a ``/dock/segment`` outcome), so it is already in Planhat's
    report; False when the destination decided it (``translate``) or read it from a refused
    request (an alias answered 409 or 404): whoever keeps a report for the calls records it.
    """

    reason: str
    detail: str = ""
    reported: bool = False


# ---------------------------------------------------------------------------- helpers


def _present(value: Any) -> bool:
    return value is not None and value != ""


def str_id(value: Any) -> str | None:
    """An id as Planhat gets it: a string as it is, a number stringified (``12.0`` → ``"12"``);
    None for anything else or a blank string."""
    if value is None or isinstance(value, bool) or isinstance(value, dict | list):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    return text if text.strip() else None


def _first(*values: Any) -> Any:
    for value in values:
        if _present(value):
            return value
    return None


def _clean(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}


@lru_cache(maxsize=4096)  # the tenant token is quoted for every activity
def quote_id(value: str) -> str:
    """URL-quote an id for use as one path segment."""
    return quote(value, safe="")


def is_enabled(integrations: Any) -> bool:
    """Whether the ``integrations`` object lets the call reach Planhat.

    ``{"Planhat": false}`` blocks; ``{"All": false}`` blocks unless ``Planhat`` is truthy; an
    options object (even empty) counts as enabled.  Keys are case-sensitive.
    """
    if not isinstance(integrations, dict):
        return True
    if "Planhat" in integrations:
        value = integrations["Planhat"]
        return isinstance(value, dict) or bool(value)
    all_value = integrations.get("All", True)
    return isinstance(all_value, dict) or all_value is None or bool(all_value)


def _headers(settings: Settings, host: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if host == "api" and settings.api_token:
        headers["Authorization"] = f"Bearer {settings.api_token}"
    return headers


def _request(
    settings: Settings, method: str, host: str, path: str, body: Any, kind: str, call_type: str
) -> PlanhatRequest:
    base = settings.api_url if host == "api" else settings.analytics_url
    return PlanhatRequest(
        method=method,
        url=base + path,
        path=path,
        host=host,
        body=body,
        headers=_headers(settings, host),
        kind=kind,
        call_type=call_type,
    )


def enduser_request(
    settings: Settings, rows: list[dict[str, Any]], call_type: str = ""
) -> PlanhatRequest:
    """A bulk end-user upsert (``PUT /endusers``) carrying ``rows``."""
    return _request(settings, "PUT", "api", "/endusers", rows, "enduser", call_type)


def company_request(
    settings: Settings, rows: list[dict[str, Any]], call_type: str = ""
) -> PlanhatRequest:
    """A bulk company upsert (``PUT /companies``) carrying ``rows``."""
    return _request(settings, "PUT", "api", "/companies", rows, "company", call_type)


def activity_request(
    settings: Settings, activity: dict[str, Any], call_type: str = ""
) -> PlanhatRequest:
    """One activity (``POST /analytics/{tenant_token}``)."""
    path = f"/analytics/{quote_id(settings.tenant_token)}"
    return _request(settings, "POST", "analytics", path, activity, "activity", call_type)


def dock_request(settings: Settings, call: Any) -> PlanhatRequest:
    """One Segment call for Planhat to apply (``POST {analytics}/dock/segment``), with HTTP
    Basic ``tenant_token:`` as Segment's cloud sends it."""
    basic = base64.b64encode(f"{settings.tenant_token}:".encode()).decode("ascii")
    call_type = call.get("type") if isinstance(call, dict) else ""
    return PlanhatRequest(
        method="POST",
        url=settings.dock_url,
        path=DOCK_PATH,
        host="analytics",
        body=call,
        headers={"Content-Type": "application/json", "Authorization": f"Basic {basic}"},
        kind="dock",
        call_type=call_type if isinstance(call_type, str) else "",
    )


def bulk_activity_request(settings: Settings, activities: list[dict[str, Any]]) -> PlanhatRequest:
    """Many activities (``POST /analytics/bulk/{tenant_token}``, a JSON array)."""
    path = f"/analytics/bulk/{quote_id(settings.tenant_token)}"
    return _request(settings, "POST", "analytics", path, activities, "activity", "batch")


# ---------------------------------------------------------------------------- per call type


def _user_id(call: dict[str, Any], traits: dict[str, Any]) -> tuple[str | None, str | None]:
    """(externalId, the trait it came from): ``userId``, a top-level ``user_id``,
    ``traits.user_id``, ``traits.id`` — the first present one, stringified."""
    for value, trait in (
        (call.get("userId"), None),
        (call.get("user_id"), None),
        (traits.get("user_id"), "user_id"),
        (traits.get("id"), "id"),
    ):
        text = str_id(value) if _present(value) else None
        if text is not None:
            return text, trait
    return None, None


def _company_ref_of(traits: dict[str, Any], group_id: Any = None) -> str | None:
    company = traits.get("company")
    company_id = company.get("id") if isinstance(company, dict) else None
    return str_id(
        _first(traits.get("companyId"), traits.get("company_id"), company_id, group_id)
    )


def _company_ref(call: dict[str, Any]) -> str | None:
    traits = call.get("traits") or {}
    context = call.get("context") or {}
    return _company_ref_of(traits, context.get("groupId"))


def _company_custom(company: Any) -> dict[str, Any]:
    """``traits.company`` kept in ``custom``: a string as ``company``; an object's ``name``
    as ``company`` and its other fields (``id`` aside) as ``company<Field>``."""
    if not isinstance(company, dict):
        return {"company": company}
    out: dict[str, Any] = {}
    for key, value in company.items():
        if key == "id" or value is None:
            continue
        if key == "name":
            out["company"] = value
        else:
            words = [w for w in _WORD_BREAK.split(str(key)) if w]
            out["company" + "".join(w[:1].upper() + w[1:] for w in words)] = value
    return out


def _host(value: Any) -> str | None:
    """The host of a web address, without ``www.``: ``https://www.globex.com/`` → ``globex.com``."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().lower()
    try:
        host = urlsplit(text if "://" in text else "//" + text).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.removeprefix("www.")
    return host if _HOST.match(host) else None


def _domains(traits: dict[str, Any]) -> tuple[list[str], set[str]]:
    """(company domains from the web-address traits, the traits wholly turned into them).

    A trait with a value that is no web address stays in ``custom``: nothing is dropped."""
    domains: list[str] = []
    used: set[str] = set()
    for key in _WEB_TRAITS:
        value = traits.get(key)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        hosts = [_host(v) for v in values]
        domains += [h for h in hosts if h is not None and h not in domains]
        if values and all(h is not None for h in hosts):
            used.add(key)
    return domains, used


def _identify(call: dict[str, Any], settings: Settings) -> list[PlanhatRequest] | Skip:
    traits: dict[str, Any] = call.get("traits") or {}
    external_id, id_trait = _user_id(call, traits)
    email = traits.get("email") if _present(traits.get("email")) else None
    if external_id is None and email is None:
        return Skip(
            NO_IDENTIFIER, "identify has no userId, user_id, traits.user_id, traits.id nor "
            "traits.email"
        )
    first = _first(traits.get("firstName"), traits.get("first_name"))
    last = _first(traits.get("lastName"), traits.get("last_name"))
    name = traits.get("name") if _present(traits.get("name")) else None
    if name is None and (first is not None or last is not None):
        name = " ".join(str(p) for p in (first, last) if p is not None)
    company = _company_ref(call)
    custom = _company_custom(traits["company"]) if traits.get("company") is not None else {}
    custom.update(
        (k, v)
        for k, v in traits.items()
        if k not in _USER_TRAITS and k != id_trait and k != "company" and v is not None
    )
    value = engage.identify_value(call)
    if value is not None:
        custom[value.key] = value.value
    row = _clean(
        {
            "externalId": external_id,
            "email": email,
            "name": name,
            "firstName": first,
            "lastName": last,
            "position": _first(traits.get("title")),
            "phone": _first(traits.get("phone")),
            "companyId": f"extid-{company}" if company is not None else None,
            "custom": custom or None,
            "source": SOURCE,
        }
    )
    return [enduser_request(settings, [row], "identify")]


def _track_email(call: dict[str, Any]) -> Any:
    context_traits = (call.get("context") or {}).get("traits") or {}
    top_traits = call.get("traits") if isinstance(call.get("traits"), dict) else {}
    return _first(context_traits.get("email"), top_traits.get("email"))


def _activity(
    call: dict[str, Any], settings: Settings, action: str, info: dict[str, Any]
) -> list[PlanhatRequest] | Skip:
    context = call.get("context") or {}
    context_traits = context.get("traits") or {}
    external_id, _ = _user_id(call, context_traits)
    email = _track_email(call)
    if external_id is None and email is None:
        return Skip(NO_IDENTIFIER, f"{call['type']} has no userId nor email")
    activity = _clean(
        {
            "action": action,
            "externalId": external_id,
            "email": email,
            "companyExternalId": _company_ref_of(context_traits, context.get("groupId")),
            "date": _first(call.get("timestamp"), call.get("originalTimestamp")),
            "info": info or None,
            "weight": 1,
            "source": SOURCE,
        }
    )
    return [activity_request(settings, activity, call["type"])]


def _track(call: dict[str, Any], settings: Settings) -> list[PlanhatRequest] | Skip:
    membership = engage.audience_track_value(call)
    if membership is None:
        return _activity(call, settings, call["event"], call.get("properties") or {})
    external_id, _ = _user_id(call, (call.get("context") or {}).get("traits") or {})
    email = _track_email(call)
    if external_id is None and email is None:
        return Skip(NO_IDENTIFIER, f"{call['event']} track has no userId nor email")
    row = _clean(
        {
            "externalId": external_id,
            "email": email,
            "custom": {membership.key: membership.value},
            "source": SOURCE,
        }
    )
    return [enduser_request(settings, [row], "track")]


def _page(call: dict[str, Any], settings: Settings) -> list[PlanhatRequest] | Skip:
    props: dict[str, Any] = dict(call.get("properties") or {})
    name = _first(call.get("name"), props.get("name"), props.get("title"), props.get("path"))
    action = f"Viewed {name} Page" if name is not None else "Viewed Page"
    category = _first(call.get("category"), props.get("category"))
    if category is not None:
        props["category"] = category
    return _activity(call, settings, action, props)


def _group(call: dict[str, Any], settings: Settings) -> list[PlanhatRequest] | Skip:
    group_id = str_id(call.get("groupId"))
    if group_id is None:  # pragma: no cover - the schema requires it
        return Skip(NO_IDENTIFIER, "group has no groupId")
    traits: dict[str, Any] = call.get("traits") or {}
    domains, used = _domains(traits) if any(k in traits for k in _WEB_TRAITS) else ([], set())
    custom = {
        k: v
        for k, v in traits.items()
        if k not in _COMPANY_TRAITS and k not in used and v is not None
    }
    if traits.get("id") is not None and str_id(traits["id"]) != group_id:
        custom["id"] = traits["id"]  # the group's id in the sender's database: kept
    name = _first(traits.get("name"))
    row = _clean(
        {
            "externalId": group_id,
            "name": name,
            "domains": domains or None,
            "custom": custom or None,
            "source": SOURCE,
        }
    )
    if name is not None:
        requests = [company_request(settings, [row], "group")]
    else:  # update without renaming; a new company is named after its groupId
        update = {k: v for k, v in row.items() if k != "externalId"}
        path = f"/companies/extid-{quote_id(group_id)}"
        create = company_request(settings, [{**row, "name": group_id}], "group")
        requests = [replace(_request(settings, "PUT", "api", path, update, "company_update",
                                     "group"), fallback=create)]
    user_id = str_id(_first(call.get("userId"), call.get("user_id")))
    if user_id is not None:
        path = f"/endusers/extid-{quote_id(user_id)}"
        body = {"companyId": f"extid-{group_id}"}
        requests.append(_request(settings, "PUT", "api", path, body, "attach", "group"))
    return requests


def _alias(call: dict[str, Any], settings: Settings) -> list[PlanhatRequest] | Skip:
    previous_id = str_id(call.get("previousId"))
    user_id = str_id(call.get("userId"))
    if previous_id is None or user_id is None:
        return Skip(NO_IDENTIFIER, "alias needs previousId and userId")
    path = f"/endusers/extid-{quote_id(previous_id)}"
    return [_request(settings, "PUT", "api", path, {"externalId": user_id}, "alias", "alias")]


_HANDLERS = {
    "identify": _identify,
    "track": _track,
    "page": _page,
    "group": _group,
    "alias": _alias,
}


def translate(call: Any, settings: Settings) -> list[PlanhatRequest] | Skip:
    """Translate one Segment call into Planhat requests, or a :class:`Skip` saying why not.

    Checks in order: invalid call → ``invalid_call`` (detail = the validation message);
    integrations excluding Planhat → ``filtered``; screen → ``unsupported_call``; no usable
    identifier → ``no_identifier``.
    """
    try:
        normalised = validate_call(call)
    except InvalidCall as exc:
        return Skip(INVALID_CALL, str(exc))
    if not is_enabled(normalised.get("integrations")):
        return Skip(FILTERED, "integrations object excludes Planhat")
    handler = _HANDLERS.get(normalised["type"])
    if handler is None:
        return Skip(UNSUPPORTED_CALL, f"{normalised['type']} calls are not sent to Planhat")
    requests = handler(normalised, settings)
    if settings.delivery == "dock" and not isinstance(requests, Skip):
        return [dock_request(settings, call)]
    return requests
