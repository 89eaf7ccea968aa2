"""Planhat's rate limits, on request: token buckets per token, read from an injectable clock.

A limit is off unless asked for (``--rate-limit``, the tenant option ``rateLimit``, a scenario's
``tenant: {rateLimit: …}``). Its forms:

* ``planhat`` — Planhat's documented quotas: 150 requests/s with bursts of 50 (a bucket of 50
  tokens refilled at 150 a second) and the soft quota of 200 calls a minute (a bucket of 200
  refilled at 200 a minute);
* ``N/s`` or ``N/min`` — one bucket of N refilled at N per second or minute; several may be
  joined with commas (``20/s,600/min``);
* ``off`` — no limit.

A request passes when every bucket holds a token, and takes one from each. Otherwise it is
answered 429 with ``Retry-After`` = the whole seconds until every bucket holds one again
(at least 1). Limits count per token: the API token on REST paths, the tenant token on
``/dock/segment``. Tracking paths, Segment's ``/v1`` API and the admin API are exempt, and so
are the requests the fake makes to itself when it applies a Segment call.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

PLANHAT = "planhat"
OFF = "off"
# The requests the fake makes to itself (the Segment routes applying a call) carry this key in
# their WSGI environ: no limit counts them.
EXEMPT = "mock_planhat.rate_limit_exempt"
_PERIODS = {"s": 1.0, "min": 60.0}
_PART = "[1-9][0-9]{0,6}/(?:s|min)"
# The whole grammar, as a pattern the OpenAPI document and the scenario schema share.
PATTERN = f"^(?:{PLANHAT}|{OFF}|{_PART}(?:,{_PART})*)$"
_FORM = re.compile(PATTERN.replace("$", r"\Z"))


@dataclass(frozen=True)
class Bucket:
    capacity: int  # tokens when full: the burst
    per_second: float  # refill rate


@dataclass(frozen=True)
class RateLimit:
    text: str  # as given, normalised ("planhat", "20/s")
    buckets: tuple[Bucket, ...]


PLANHAT_LIMIT = RateLimit(PLANHAT, (Bucket(50, 150.0), Bucket(200, 200 / 60)))


def parse_rate_limit(value) -> RateLimit | None:
    """``planhat``, ``N/s``, ``N/min`` (comma-joined), ``off``/None → the limit, or ValueError."""
    if value is None:
        return None
    if not isinstance(value, str) or not _FORM.match(value):
        raise ValueError(f"{value!r} is not a rate limit ('planhat', 'off', or N/s or N/min "
                         "such as 20/s, joined by commas)")
    if value == OFF:
        return None
    if value == PLANHAT:
        return PLANHAT_LIMIT
    buckets = []
    for part in value.split(","):
        count, _, period = part.partition("/")
        buckets.append(Bucket(int(count), int(count) / _PERIODS[period]))
    return RateLimit(value, tuple(buckets))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int  # X-Rate-Limit-Limit: the capacity of the tightest bucket
    remaining: int  # X-Rate-Limit-Remaining: its whole tokens left
    retry_after: int  # whole seconds; 0 when allowed

    def headers(self) -> dict[str, str]:
        out = {"X-Rate-Limit-Limit": str(self.limit),
               "X-Rate-Limit-Remaining": str(self.remaining)}
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


class RateLimiter:
    """Token buckets per token; ``clock`` gives monotonic seconds (tests inject their own)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._levels: dict[str, tuple[RateLimit, list[float], float]] = {}

    def take(self, key: str, limit: RateLimit, clock: Callable[[], float] | None = None
             ) -> Decision:
        """Count one request of ``key`` against ``limit``, at ``clock()`` (default: this
        limiter's clock; a tenant whose test clock is set passes that one)."""
        now = (clock or self.clock)()
        with self._lock:
            known = self._levels.get(key)
            if known is None or known[0] is not limit:
                levels = [float(b.capacity) for b in limit.buckets]
            else:
                elapsed = max(0.0, now - known[2])
                levels = [min(b.capacity, level + elapsed * b.per_second)
                          for b, level in zip(limit.buckets, known[1], strict=True)]
            allowed = all(level >= 1 for level in levels)
            if allowed:
                levels = [level - 1 for level in levels]
            self._levels[key] = (limit, levels, now)
        tight = min(range(len(levels)), key=lambda i: levels[i] / limit.buckets[i].capacity)
        wait = 0
        if not allowed:
            seconds = max((1 - level) / b.per_second
                          for b, level in zip(limit.buckets, levels, strict=True) if level < 1)
            wait = max(1, math.ceil(seconds - 1e-9))
        return Decision(allowed, limit.buckets[tight].capacity,
                        max(0, math.floor(levels[tight])), wait)

    def forget(self, key: str) -> None:
        """Full buckets again for this token (the tenant was reset)."""
        with self._lock:
            self._levels.pop(key, None)


class ManualClock:
    """A clock that moves only when told: ``advance(seconds)`` (``Config(clock=ManualClock())``
    in tests). A tenant's own test clock (``POST /__admin/clock``) plays the same part per
    tenant: the scenario runner's back-off advances it instead of sleeping."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, float(seconds))
