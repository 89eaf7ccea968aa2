"""The tenant registry: both tokens of every tenant → its `Tenant` (one store each)."""

from __future__ import annotations

import secrets
import threading

from .ratelimit import RateLimit, parse_rate_limit
from .report import Report
from .store import Tenant, now_iso


class TokenConflict(ValueError):
    """A token that some tenant holds already, in either role."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class Registry:
    def __init__(self, config) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._by_tenant_token: dict[str, Tenant] = {}
        self._by_api_token: dict[str, Tenant] = {}
        # Requests that named no known tenant: nowhere else to keep them.
        self.unknown_tenant_report = Report(config.report_size, config.report_bytes,
                                            config.payload_bytes)
        self.default_rate_limit = parse_rate_limit(config.rate_limit)
        self.rate_limited = False  # some tenant has a rate limit: requests must be counted
        self.default = self.add(config.tenant_token, config.api_token, config.unassigned,
                                config.email_match)

    def add(self, tenant_token: str, api_token: str, unassigned: str | None = None,
            email_match: str | None = None,
            rate_limit: RateLimit | None | bool = True) -> Tenant:
        """A new tenant; ``rate_limit`` True means the configured default."""
        with self._lock:
            # Every token names one tenant in one role: a tenant token that is someone's API
            # token (or its own) would make a request's tenant depend on which map is asked.
            if tenant_token == api_token:
                raise TokenConflict("apiToken", "must differ from the tenant token")
            for field, token in (("tenantToken", tenant_token), ("apiToken", api_token)):
                holder = self._by_tenant_token.get(token) or self._by_api_token.get(token)
                if holder is not None:
                    role = "tenant" if holder.tenant_token == token else "API"
                    raise TokenConflict(field, f"{token!r} is already the {role} token of "
                                        "a tenant")
            tenant = self.build(tenant_token, api_token, unassigned, email_match)
            tenant.rate_limit = self.default_rate_limit if rate_limit is True else rate_limit
            self.rate_limited = self.rate_limited or tenant.rate_limit is not None
            self._by_tenant_token[tenant_token] = tenant
            self._by_api_token[api_token] = tenant
            return tenant

    def build(self, tenant_token: str, api_token: str, unassigned: str | None = None,
              email_match: str | None = None) -> Tenant:
        """A tenant with this fake's bounds and defaults, not registered (see ``insert``)."""
        return Tenant(tenant_token, api_token, unassigned or self.config.unassigned,
                      self.config.report_size, self.config.report_bytes,
                      self.config.payload_bytes, email_match or self.config.email_match)

    def insert(self, tenant: Tenant, rate_limit: RateLimit | None | bool = True) -> Tenant:
        """Register a tenant built elsewhere (a restored snapshot); ``rate_limit`` True means
        the configured default."""
        with self._lock:
            if (tenant.tenant_token in self._by_tenant_token
                    or tenant.api_token in self._by_api_token):
                raise ValueError("a tenant with that token exists already")
            tenant.rate_limit = self.default_rate_limit if rate_limit is True else rate_limit
            self.rate_limited = self.rate_limited or tenant.rate_limit is not None
            self._by_tenant_token[tenant.tenant_token] = tenant
            self._by_api_token[tenant.api_token] = tenant
            return tenant

    def set_rate_limit(self, tenant: Tenant, rate_limit: RateLimit | None | bool) -> None:
        """Give a registered tenant a rate limit (None: none); True keeps the one it has."""
        if rate_limit is True:
            return
        with self._lock:
            tenant.rate_limit = rate_limit
            self.rate_limited = self.rate_limited or rate_limit is not None

    def create(self, unassigned: str | None = None, tenant_token: str | None = None,
               api_token: str | None = None, email_match: str | None = None,
               rate_limit: RateLimit | None | bool = True) -> Tenant:
        return self.add(tenant_token or "tt-" + secrets.token_hex(12),
                        api_token or "at-" + secrets.token_hex(16), unassigned, email_match,
                        rate_limit)

    def remove(self, tenant: Tenant) -> None:
        """Forget a tenant (both its tokens); the default tenant stays."""
        if tenant is self.default:
            raise ValueError("the default tenant cannot be deleted (POST /__admin/reset?tenant=… "
                             "empties it)")
        with self._lock:
            self._by_tenant_token.pop(tenant.tenant_token, None)
            self._by_api_token.pop(tenant.api_token, None)

    def by_tenant_token(self, token) -> Tenant | None:
        return self._by_tenant_token.get(token)

    def by_api_token(self, token) -> Tenant | None:
        return self._by_api_token.get(token)

    def by_either_token(self, token) -> Tenant | None:
        """The tenant holding ``token`` in either role (a token names one tenant in one role,
        so the order of the look-ups does not matter)."""
        return self._by_tenant_token.get(token) or self._by_api_token.get(token)

    def all(self) -> list[Tenant]:
        with self._lock:
            return list(self._by_tenant_token.values())

    def report_unknown_tenant(self, token: str, payload, source: str,
                              raw: bytes | None = None) -> None:
        """``raw``: the body the payload came from, to bound a large one cheaply."""
        self.unknown_tenant_report.add({
            "reason": "unknown_tenant", "message": f"tenantToken: no tenant has token {token!r}",
            "source": source, "time": now_iso(), "tenant": token}, payload, raw)
