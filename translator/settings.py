"""Destination settings for the Planhat translator.

``Settings.from_dict`` validates a plain dict (as Segment would store the destination
settings) against a JSON Schema and returns a frozen :class:`Settings`. The seed's settings
(``tenant_token``, ``subdomain``) are enough: they deliver as Segment's cloud does (``dock``).  Any problem raises
:class:`SettingsError` whose message and ``.field`` name the offending setting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema

SUBDOMAINS = ("api", "api-eu", "api-eu2", "api-eu3", "api-us2", "api-us4")
DEFAULT_ANALYTICS_URL = "https://analytics.planhat.com"
DELIVERY_MODES = ("dock", "rest")
DOCK_PATH = "/dock/segment"

SETTINGS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Planhat destination settings",
    "type": "object",
    "properties": {
        "tenant_token": {"type": "string", "minLength": 1, "pattern": r"\S"},
        "subdomain": {"enum": list(SUBDOMAINS)},
        "api_token": {"type": ["string", "null"]},
        "api_url": {"type": ["string", "null"], "pattern": r"^https?://[^/\s]+"},
        "analytics_url": {"type": ["string", "null"], "pattern": r"^https?://[^/\s]+"},
        "delivery": {"enum": [*DELIVERY_MODES, None]},
    },
    "required": ["tenant_token"],
    "additionalProperties": False,
}

_URL = re.compile(SETTINGS_SCHEMA["properties"]["api_url"]["pattern"])
_NON_BLANK = re.compile(SETTINGS_SCHEMA["properties"]["tenant_token"]["pattern"])


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    import jsonschema  # only settings the fast check declines get here: keep it off start-up

    return jsonschema.Draft202012Validator(SETTINGS_SCHEMA)


def _plainly_valid(data: Mapping[str, Any]) -> bool:
    """True when ``data`` certainly satisfies SETTINGS_SCHEMA; False: ask jsonschema.

    The settings are validated every time a Destination is made (the fake's Segment routes
    make one per request); jsonschema is left to word the errors.
    """
    token = data.get("tenant_token")
    if not isinstance(token, str) or not _NON_BLANK.search(token):
        return False
    if not set(data) <= SETTINGS_SCHEMA["properties"].keys():
        return False
    if "subdomain" in data and data["subdomain"] not in SUBDOMAINS:
        return False
    api_token = data.get("api_token")
    if api_token is not None and not isinstance(api_token, str):
        return False
    for key in ("api_url", "analytics_url"):
        url = data.get(key)
        if url is not None and not (isinstance(url, str) and _URL.search(url)):
            return False
    return data.get("delivery") in (None, *DELIVERY_MODES)


class SettingsError(ValueError):
    """Invalid destination settings; ``.field`` is the dotted name (``settings.subdomain``)."""

    def __init__(self, message: str, field: str = "settings") -> None:
        super().__init__(message)
        self.field = field


def _error_field(error: jsonschema.ValidationError) -> tuple[str, str]:
    """Return (field path, message) for one schema error, naming the field precisely."""
    path = ["settings", *(str(p) for p in error.absolute_path)]
    message = error.message
    if error.validator == "required":
        # "'tenant_token' is a required property": the field is the missing one.
        missing = [name for name in error.validator_value if name not in (error.instance or {})]
        if missing:
            path.append(missing[0])
    elif error.validator == "additionalProperties":
        allowed = set(SETTINGS_SCHEMA["properties"])
        extra = sorted(k for k in (error.instance or {}) if k not in allowed)
        if extra:
            path.append(str(extra[0]))
    return ".".join(path), message


@dataclass(frozen=True)
class Settings:
    """Validated settings of the Planhat destination.

    ``api_url`` and ``analytics_url`` hold the resolved base URLs (no trailing slash):
    the overrides when given, else ``https://{subdomain}.planhat.com`` and
    ``https://analytics.planhat.com``.

    ``delivery`` says how calls reach Planhat:

    * ``"dock"`` — as Segment's cloud does: each call is posted, as it is, to
      ``{analytics_url}/dock/segment`` with HTTP Basic ``tenant_token:`` and Planhat applies
      it. Needs only the seed's settings (tenant token, subdomain). The default without an
      ``api_token``.
    * ``"rest"`` — the translator maps each call to Planhat's REST and tracking requests
      (bulk upserts, activities) itself, with the ``api_token``. The default with one.
    """

    tenant_token: str
    subdomain: str = "api"
    api_token: str | None = None
    api_url: str = ""
    analytics_url: str = ""
    delivery: str | None = None

    def __post_init__(self) -> None:
        # Direct construction is allowed too; it goes through the same validation.
        data: dict[str, Any] = {"tenant_token": self.tenant_token, "subdomain": self.subdomain}
        if self.api_token is not None:
            data["api_token"] = self.api_token
        for key in ("api_url", "analytics_url"):
            value = getattr(self, key)
            if value:
                data[key] = value
        if self.delivery is not None:
            data["delivery"] = self.delivery
        validate_settings(data)
        delivery = self.delivery or ("rest" if self.api_token else "dock")
        if delivery == "rest" and not self.api_token:
            raise SettingsError("settings.api_token: delivery 'rest' calls Planhat's REST API "
                                "and needs an API token (or use delivery 'dock', which needs "
                                "only the tenant token)", field="settings.api_token")
        object.__setattr__(self, "delivery", delivery)
        api_url = self.api_url or f"https://{self.subdomain}.planhat.com"
        analytics_url = self.analytics_url or DEFAULT_ANALYTICS_URL
        object.__setattr__(self, "api_url", api_url.rstrip("/"))
        object.__setattr__(self, "analytics_url", analytics_url.rstrip("/"))

    @property
    def dock_url(self) -> str:
        """Where ``dock`` delivery posts each call: ``{analytics_url}/dock/segment``."""
        return self.analytics_url + DOCK_PATH

    @classmethod
    def from_dict(cls, data: Any) -> Settings:
        """Validate ``data`` and build Settings; raises :class:`SettingsError`."""
        validate_settings(data)
        return cls(
            tenant_token=data["tenant_token"],
            subdomain=data.get("subdomain") or "api",
            api_token=data.get("api_token") or None,
            api_url=data.get("api_url") or "",
            analytics_url=data.get("analytics_url") or "",
            delivery=data.get("delivery") or None,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tenant_token": self.tenant_token,
            "subdomain": self.subdomain,
            "api_url": self.api_url,
            "analytics_url": self.analytics_url,
            "delivery": self.delivery,
        }
        if self.api_token is not None:
            out["api_token"] = self.api_token
        return out


def validate_settings(data: Any) -> None:
    """Raise :class:`SettingsError` for the first (most relevant) schema violation."""
    if not isinstance(data, Mapping):
        raise SettingsError(f"settings: {data!r} is not of type 'object'", field="settings")
    if _plainly_valid(data):
        return
    errors = sorted(
        _validator().iter_errors(dict(data)),
        key=lambda e: (list(map(str, e.absolute_path)), e.validator != "required"),
    )
    if errors:
        field, message = _error_field(errors[0])
        raise SettingsError(f"{field}: {message}", field=field)
