"""Fault rules: make the next N requests that match answer an error and/or wait."""

from __future__ import annotations

import fnmatch
import itertools
import threading

FAULT_STATUSES = (408, 429, 500, 502, 503, 504)


class FaultError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[dict] = []
        self._ids = itertools.count(1)

    def add(self, spec) -> dict:
        rule = parse_rule(spec)
        with self._lock:
            rule["id"] = next(self._ids)
            self._rules.append(rule)
        return dict(rule)

    def rules(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._rules]

    def delays(self) -> bool:
        """Whether a rule waits before it answers."""
        with self._lock:
            return any(rule["delay"] for rule in self._rules)

    def clear(self, tenants: frozenset[str] | None = None) -> None:
        """Drop every rule, or those scoped to one of ``tenants`` (a tenant's tokens)."""
        with self._lock:
            self._rules = [r for r in self._rules if tenants and r["tenant"] not in tenants]

    def take(self, method: str, path: str, tenants: frozenset[str],
             scoped_only: bool = False) -> dict | None:
        """The first rule matching this request, with one use spent, or None. ``tenants``:
        the request's tenant's tokens (a rule may name either)."""
        with self._lock:
            for rule in self._rules:
                if (rule["method"] in ("*", method) and fnmatch.fnmatchcase(path, rule["path"])
                        and (rule["tenant"] in tenants
                             or (rule["tenant"] is None and not scoped_only))):
                    rule["remaining"] -= 1
                    hit = dict(rule)
                    if rule["remaining"] <= 0:
                        self._rules.remove(rule)
                    return hit
        return None


def parse_rule(spec) -> dict:
    if not isinstance(spec, dict):
        raise FaultError("body", "must be an object")
    unknown = set(spec) - {"method", "path", "status", "retryAfter", "delay", "count", "tenant"}
    if unknown:
        raise FaultError(sorted(unknown)[0], "is not a fault-rule field (method, path, status, "
                         "retryAfter, delay, count, tenant)")
    method = spec.get("method", "*")
    path = spec.get("path", "*")
    status = spec.get("status")
    delay = spec.get("delay", 0)
    count = spec.get("count", 1)
    retry_after = spec.get("retryAfter")
    tenant = spec.get("tenant")
    if not isinstance(method, str) or not method:
        raise FaultError("method", "must be an HTTP method or '*'")
    if not isinstance(path, str) or not path.startswith(("/", "*")):
        raise FaultError("path", "must be a path pattern such as '/endusers*' or '*'")
    status, count = _whole(status), _whole(count)  # 429.0 is the JSON number 429
    if status is not None and (type(status) is not int or status not in FAULT_STATUSES):
        raise FaultError("status", f"must be one of {', '.join(map(str, FAULT_STATUSES))}")
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 30:
        raise FaultError("delay", "must be a number of seconds from 0 to 30")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1_000_000:
        raise FaultError("count", "must be a whole number from 1 to 1000000")
    if retry_after is not None and (isinstance(retry_after, bool)
                                    or not isinstance(retry_after, (int, float))
                                    or not 0 <= retry_after <= 3600):
        raise FaultError("retryAfter", "must be a number of seconds from 0 to 3600")
    if tenant is not None and not isinstance(tenant, str):
        raise FaultError("tenant", "must be a tenant token")
    if status is None and not delay:
        raise FaultError("status", "a rule needs a status, a delay, or both")
    return {"method": method.upper(), "path": path, "status": status, "retryAfter": retry_after,
            "delay": delay, "remaining": count, "tenant": tenant}


def _whole(value):
    """A float with no fraction as the int it equals; anything else unchanged."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
