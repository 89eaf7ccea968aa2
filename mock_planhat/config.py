"""Defaults, command-line flags and environment variables, in one place."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .ratelimit import parse_rate_limit
from .report import DEFAULT_PAYLOAD_BYTES, DEFAULT_REPORT_BYTES, DEFAULT_REPORT_SIZE

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_TENANT_TOKEN = "mock-tenant-token"
DEFAULT_API_TOKEN = "mock-api-token"
DEFAULT_JOURNAL_SIZE = 10_000
DEFAULT_JOURNAL_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_BODY = 32 * 1024 * 1024  # Planhat's documented 32 MB per body
DEFAULT_RECORDING_BYTES = 64 * 1024 * 1024  # a tenant's recording (GET /__admin/scenario)
DEFAULT_READ_TIMEOUT = 30.0  # seconds a connection may send nothing (the server's flag)
# microseconds the CLI's server keeps polling without sleeping after reading a request
# (--busy-poll)
BUSY_POLL_US = 300
MAX_BUSY_POLL_US = 100_000
UNASSIGNED_POLICIES = ("hold", "discard")
SERVERS = ("waitress", "werkzeug")  # --server; the first is the default
EMAIL_MATCH_POLICIES = ("attach", "strict")

# A token travels in a URL path (the tenant token) and in an Authorization header (both, as
# Bearer or as the HTTP Basic user name), so it is held to characters that need no escaping
# in either: no spaces, no control characters, no ':' or '/'.
TOKEN_RE = re.compile(r"[A-Za-z0-9._~-]{1,200}")
TOKEN_RULE = "1 to 200 characters from A-Z a-z 0-9 . _ ~ -"

ENV_TENANT_TOKEN = "MOCK_PLANHAT_TENANT_TOKEN"
ENV_API_TOKEN = "MOCK_PLANHAT_API_TOKEN"
ENV_UNASSIGNED = "MOCK_PLANHAT_UNASSIGNED"
ENV_EMAIL_MATCH = "MOCK_PLANHAT_EMAIL_MATCH"
ENV_PORT = "MOCK_PLANHAT_PORT"
ENV_STATE = "MOCK_PLANHAT_STATE"
ENV_AUTOSAVE = "MOCK_PLANHAT_AUTOSAVE"
ENV_RATE_LIMIT = "MOCK_PLANHAT_RATE_LIMIT"
ENV_INIT = "MOCK_PLANHAT_INIT"
ENV_SERVER = "MOCK_PLANHAT_SERVER"

# The server flags an environment variable can set: the flag's argparse ``dest`` → the variable.
# The CLI checks a value from the environment with the flag's own type and choices, so a bad
# value gets the flag's clean error (naming the variable); a flag given on the command line wins.
# A new flag with a variable needs only a line here. A repeatable flag (``--init``) takes
# several values from its variable, separated by ``os.pathsep`` (':' on POSIX, ';' on Windows).
ENV_FLAGS = {
    "port": ENV_PORT,
    "tenant_token": ENV_TENANT_TOKEN,
    "api_token": ENV_API_TOKEN,
    "unassigned": ENV_UNASSIGNED,
    "email_match": ENV_EMAIL_MATCH,
    "state": ENV_STATE,
    "autosave": ENV_AUTOSAVE,
    "rate_limit": ENV_RATE_LIMIT,
    "init": ENV_INIT,
    "server": ENV_SERVER,
}


def check_cidr(text) -> str:
    """A network such as ``172.17.0.0/16`` (or one address); ValueError names the flag."""
    import ipaddress

    try:
        ipaddress.ip_network(text, strict=False)
    except (ValueError, TypeError):
        raise ValueError(f"admin-from: {text!r} is not a network (CIDR such as "
                         "172.17.0.0/16) or an address") from None
    return text


@dataclass
class Config:
    """Everything the app factory needs; `from_env()` reads the environment variables."""

    tenant_token: str = DEFAULT_TENANT_TOKEN
    api_token: str = DEFAULT_API_TOKEN
    unassigned: str = "hold"
    email_match: str = "attach"
    journal_size: int = DEFAULT_JOURNAL_SIZE
    journal_bytes: int = DEFAULT_JOURNAL_BYTES
    report_size: int = DEFAULT_REPORT_SIZE
    report_bytes: int = DEFAULT_REPORT_BYTES
    payload_bytes: int = DEFAULT_PAYLOAD_BYTES
    max_body: int = DEFAULT_MAX_BODY
    recording_bytes: int = DEFAULT_RECORDING_BYTES  # per tenant; 0 = recording off
    admin_from: list = field(default_factory=list)  # CIDRs besides loopback (--admin-from)
    rate_limit: str | None = None  # every tenant's default: planhat, N/s, N/min, off
    clock: Callable[[], float] = time.monotonic  # monotonic seconds, for the rate limits

    def __post_init__(self) -> None:
        if self.unassigned not in UNASSIGNED_POLICIES:
            raise ValueError(
                f"unassigned: {self.unassigned!r} is not one of {', '.join(UNASSIGNED_POLICIES)}"
            )
        check_token("tenant_token", self.tenant_token)
        check_token("api_token", self.api_token)
        if self.tenant_token == self.api_token:
            raise ValueError("api_token: must differ from the tenant token")
        if self.email_match not in EMAIL_MATCH_POLICIES:
            raise ValueError(
                f"email_match: {self.email_match!r} is not one of "
                f"{', '.join(EMAIL_MATCH_POLICIES)}"
            )
        if self.journal_size < 0 or self.max_body < 1:
            raise ValueError("journal_size must be >= 0 and max_body >= 1")
        for name in ("journal_bytes", "report_size", "report_bytes", "payload_bytes",
                     "recording_bytes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for cidr in self.admin_from:
            check_cidr(cidr)
        try:
            parse_rate_limit(self.rate_limit)
        except ValueError as exc:
            raise ValueError(f"rate_limit: {exc}") from None

    @classmethod
    def from_env(cls, env: dict | None = None, **overrides) -> Config:
        """A config from the environment variables of ``ENV_FLAGS`` that set one of its
        fields (the others — port, state file, autosave, init files — are the server's, read
        by the CLI), then ``overrides`` (None: not given)."""
        env = os.environ if env is None else env
        values = {}
        for name, variable in ENV_FLAGS.items():
            text = env.get(variable)
            if text and name in cls.__dataclass_fields__:
                default = cls.__dataclass_fields__[name].default
                try:
                    values[name] = int(text) if isinstance(default, int) else text
                except ValueError:
                    raise ValueError(f"{variable}={text!r}: not a whole number") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def check_token(name: str, value) -> str:
    """``value`` if it is a usable token, else a ValueError naming ``name``."""
    if not isinstance(value, str) or not TOKEN_RE.fullmatch(value):
        raise ValueError(f"{name}: {value!r} is not a valid token ({TOKEN_RULE})")
    return value
