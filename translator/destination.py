"""The Planhat destination: translate Segment calls and deliver the requests.

:meth:`Destination.send` delivers one call's requests one by one, exactly as
:func:`~translator.mapping.translate` produced them.  :meth:`Destination.send_many` batches.

Batching and ordering (``send_many``)
-------------------------------------
The calls are walked in order, each translated when reached, accumulating three
pending batches: end-user rows (sent as bulk ``PUT /endusers``), company rows (bulk
``PUT /companies``) and activities (``POST /analytics/bulk/{tenant_token}``, a JSON array).
Rows keep call order; each request carries at most ``batch_size`` (≤ 5,000) rows.
``attach`` requests (a group's user joining the company) are sent one by one but queued, so
they do not break the batches: a flush sends companies, then end users, then the queued
attaches, then activities — an attach always follows the upserts of earlier calls. An
end-user row for a user with a queued attach flushes first, so it cannot overtake that
attach. An ``alias`` flushes everything, then is sent alone. At the end everything is flushed
in that same order.

Dock delivery
-------------
With ``settings.delivery == "dock"`` every call that is not skipped is one ``POST
{analytics}/dock/segment`` (the call as given, HTTP Basic ``tenant_token:``), sent in call order
on the transport's keep-alive session: Planhat documents no batch form of that endpoint. A 2xx
answer counts the call as sent, unless its JSON says ``"outcome": "skipped"`` (a skip with its
``reason``, already in Planhat's report) or ``"outcome": "failed"``.

Retries
-------
429 (honouring a ``Retry-After`` given in seconds, capped at ``backoff_max``), any 5xx and
connection errors (``OSError``, which includes :class:`~translator.transport.TransportError`)
are retried at most ``max_retries`` times with bounded exponential backoff and full jitter:
``sleep(uniform(0, min(backoff_max, backoff_base * 2**attempt)))``.  Other 4xx are never
retried.

Outcomes
--------
Each call ends in exactly one of: ``sent`` (all its requests succeeded), ``skipped[reason]``
or failed.  Skips come from :func:`translate`, from bulk-upsert row errors (status 206 or any
2xx whose ``createdErrors``/``updatedErrors`` name the row by ``index``; reason = the error's
``reason``, e.g. ``no_company``), from an alias answered 409 (``alias_conflict``) or 404
(``unknown_user``) — the skip's detail is the answer's one-line ``message`` —, from a group's
``attach`` answered 404 (``unknown_user``: no such end user yet — the company was written, the
user was not attached to it), and from a ``/dock/segment`` outcome.
A failed request adds one entry to ``SendResult.failed``; once one of a call's requests has
failed, its later ``attach``/``alias`` requests are not sent.
"""

from __future__ import annotations

import json
import random as _random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .mapping import (
    PlanhatRequest,
    Skip,
    bulk_activity_request,
    company_request,
    enduser_request,
    quote_id,
    translate,
)
from .settings import Settings
from .transport import HttpTransport, Response

MAX_BULK = 5000
ALIAS_CONFLICT = "alias_conflict"
UNKNOWN_USER = "unknown_user"
ROW_ERROR = "row_error"
_FLUSH_ORDER = ("company", "company_update", "enduser", "attach", "activity")
_SINGLE = ("company_update", "attach")  # queued, then sent one by one when flushed


@dataclass
class SendResult:
    """What happened to a batch of calls.

    ``calls`` = calls given; ``requests`` = HTTP requests made (retries included); ``sent`` =
    calls whose requests all succeeded; ``skipped`` = reason → count, with the details in
    ``skips`` as ``(call, Skip)``; ``failed`` = one dict per failed request with keys ``call``
    (the call when the request carried exactly one, else None), ``calls``, ``rows`` (bulk
    bodies, else None), ``request`` (:class:`PlanhatRequest`), ``status`` (None after a
    connection error), ``body`` (response text), ``error`` (connection error text or None);
    ``failed_calls`` = number of calls with a failed request; ``responses`` = ``(request,
    response or None)`` for every request's final attempt.
    """

    calls: int = 0
    requests: int = 0
    sent: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    skips: list[tuple[Any, Skip]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    failed_calls: int = 0
    responses: list[tuple[PlanhatRequest, Response | None]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no request failed."""
        return not self.failed


class _Run:
    """Book-keeping for one send/send_many: per-call outcome and the result."""

    def __init__(self, calls: list[Any]) -> None:
        self.calls = calls
        self.failed = [False] * len(calls)
        self.skip: list[Skip | None] = [None] * len(calls)
        self.result = SendResult(calls=len(calls))

    def mark_skip(self, index: int, skip: Skip) -> None:
        if self.skip[index] is None:
            self.skip[index] = skip

    def mark_failed(
        self,
        indexes: list[int],
        request: PlanhatRequest,
        rows: Any,
        response: Response | None,
        error: str | None,
    ) -> None:
        unique = list(dict.fromkeys(indexes))
        for index in unique:
            self.failed[index] = True
        self.result.failed.append(
            {
                "call": self.calls[unique[0]] if len(unique) == 1 else None,
                "calls": [self.calls[i] for i in unique],
                "rows": rows,
                "request": request,
                "status": response.status if response is not None else None,
                "body": response.text if response is not None else "",
                "error": error,
            }
        )

    def finish(self) -> SendResult:
        result = self.result
        for index, call in enumerate(self.calls):
            if self.failed[index]:
                result.failed_calls += 1
            elif self.skip[index] is not None:
                skip = self.skip[index]
                result.skipped[skip.reason] = result.skipped.get(skip.reason, 0) + 1
                result.skips.append((call, skip))
            else:
                result.sent += 1
        return result


def _queued_path(kind: str, row: Any) -> str | None:
    """The path a queued single request about this row's record would have: an attach of an
    end-user row's user, an update of a company row's company."""
    external_id = row.get("externalId") if isinstance(row, dict) else None
    root = "endusers" if kind == "enduser" else "companies"
    return f"/{root}/extid-{quote_id(external_id)}" if isinstance(external_id, str) else None


def _answer_message(response: Response) -> str:
    """The one-line ``message`` of a JSON error answer, else its text's first line."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        text = payload["message"]
    else:
        text = response.text
    return " ".join(text.split())[:500]


def _alias_detail(request: PlanhatRequest, response: Response) -> str:
    """One line saying why an alias was not applied."""
    body = request.body if isinstance(request.body, dict) else {}
    new_id = body.get("externalId")
    old_key = unquote(request.path.rpartition("/")[2])
    if response.status == 409:
        what = f"alias: {new_id!r} belongs to another end user; {old_key} keeps its externalId"
    else:
        what = f"alias: no end user has {old_key}, so none was renamed to {new_id!r}"
    return f"{what} (Planhat answered {response.status}: {_answer_message(response)})"


def _retry_after(response: Response) -> float | None:
    value = response.header("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP date: fall back to the computed backoff
    return seconds if seconds >= 0 else None


class Destination:
    """Send Segment calls to Planhat (see the module docstring for batching and retries)."""

    def __init__(
        self,
        settings: Settings | Mapping[str, Any],
        transport: Any = None,
        max_retries: int = 5,
        backoff_base: float = 0.2,
        backoff_max: float = 10.0,
        sleep: Callable[[float], Any] = time.sleep,
        random: _random.Random | None = None,
        batch_size: int = MAX_BULK,
    ) -> None:
        self.settings = settings if isinstance(settings, Settings) else Settings.from_dict(settings)
        self._owns_transport = transport is None
        self.transport = transport if transport is not None else HttpTransport()
        self.max_retries = max(0, int(max_retries))
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.sleep = sleep
        self.random = random if random is not None else _random.Random()
        self.batch_size = max(1, min(int(batch_size), MAX_BULK))

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the transport if this Destination created it."""
        if self._owns_transport:
            self.transport.close()

    def __repr__(self) -> str:
        return (f"<Destination {self.settings.api_url} tenant_token="
                f"{self.settings.tenant_token!r}>")

    def __enter__(self) -> Destination:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ public API

    def send(self, call: Any) -> SendResult:
        """Translate one call and send its requests one by one (no batching)."""
        run = _Run([call])
        translated = translate(call, self.settings)
        if isinstance(translated, Skip):
            run.mark_skip(0, translated)
            return run.finish()
        for request in translated:
            if run.failed[0]:
                break
            if request.kind in ("enduser", "company"):
                self._send_rows(run, request, [(0, row) for row in request.body])
            else:
                self._send_single(run, 0, request)
        return run.finish()

    def send_many(self, calls: Iterable[Any]) -> SendResult:
        """Translate the calls and send them in dependency-preserving bulk chunks."""
        run = _Run(list(calls))
        if self.settings.delivery == "dock":
            for index, call in enumerate(run.calls):
                requests = translate(call, self.settings)
                if isinstance(requests, Skip):
                    run.mark_skip(index, requests)
                else:
                    for request in requests:
                        self._send_single(run, index, request)
            return run.finish()
        pending: dict[str, list[tuple[int, Any]]] = {kind: [] for kind in _FLUSH_ORDER}
        attaching: set[str] = set()  # users with a queued attach
        updating: set[str] = set()  # companies with a queued update (a group without name)
        # Each call is translated as the walk reaches it, so its requests die young: holding
        # all translations until the walk (230,000 objects for 70,000 calls) made the garbage
        # collector's full passes a third of send_many's time.
        for index, call in enumerate(run.calls):
            requests = translate(call, self.settings)
            if isinstance(requests, Skip):
                run.mark_skip(index, requests)
                continue
            for request in requests:
                if request.kind == "activity":
                    pending["activity"].append((index, request.body))
                elif request.kind in _SINGLE:
                    pending[request.kind].append((index, request))
                    (attaching if request.kind == "attach" else updating).add(request.path)
                elif request.kind in ("enduser", "company"):
                    queued = attaching if request.kind == "enduser" else updating
                    if queued and any(_queued_path(request.kind, row) in queued
                                      for row in request.body):
                        self._flush(run, pending)  # keep the calls' order for one record
                        attaching.clear()
                        updating.clear()
                    pending[request.kind].extend((index, row) for row in request.body)
                else:
                    self._flush(run, pending)
                    attaching.clear()
                    updating.clear()
                    if not run.failed[index]:
                        self._send_single(run, index, request)
        self._flush(run, pending)
        return run.finish()

    # ------------------------------------------------------------------ internals

    def _flush(self, run: _Run, pending: dict[str, list[tuple[int, Any]]]) -> None:
        for kind in _FLUSH_ORDER:
            items = pending[kind]
            pending[kind] = []
            if kind in _SINGLE:
                for index, request in items:
                    if not run.failed[index]:
                        self._send_single(run, index, request)
                continue
            for start in range(0, len(items), self.batch_size):
                chunk = items[start : start + self.batch_size]
                rows = [row for _, row in chunk]
                if kind == "company":
                    request = company_request(self.settings, rows, "batch")
                elif kind == "enduser":
                    request = enduser_request(self.settings, rows, "batch")
                else:
                    request = bulk_activity_request(self.settings, rows)
                if kind == "activity":
                    self._send_activities(run, request, chunk)
                else:
                    self._send_rows(run, request, chunk)

    def _send_activities(
        self, run: _Run, request: PlanhatRequest, chunk: list[tuple[int, Any]]
    ) -> None:
        response, error = self._execute(run, request)
        if response is None or not 200 <= response.status < 300:
            run.mark_failed([i for i, _ in chunk], request, request.body, response, error)

    def _send_rows(self, run: _Run, request: PlanhatRequest, chunk: list[tuple[int, Any]]) -> None:
        """Send a bulk upsert; map row errors of a 2xx answer back to their calls as skips."""
        response, error = self._execute(run, request)
        if response is None or not 200 <= response.status < 300:
            run.mark_failed([i for i, _ in chunk], request, request.body, response, error)
            return
        try:
            payload = response.json()
        except ValueError:
            return
        if not isinstance(payload, dict):
            return
        for key in ("createdErrors", "updatedErrors"):
            errors = payload.get(key)
            if not isinstance(errors, list):
                continue
            for entry in errors:
                if not isinstance(entry, dict):
                    continue
                row = entry.get("index")
                if isinstance(row, bool) or not isinstance(row, int):
                    continue
                if not 0 <= row < len(chunk):
                    continue
                reason = entry.get("reason") if isinstance(entry.get("reason"), str) else None
                detail = json.dumps(entry, sort_keys=True, default=str)
                run.mark_skip(chunk[row][0], Skip(reason or ROW_ERROR, detail, reported=True))

    def _send_single(self, run: _Run, index: int, request: PlanhatRequest) -> None:
        response, error = self._execute(run, request)
        status = response.status if response is not None else None
        if status is not None and 200 <= status < 300:
            if request.kind == "dock":
                self._dock_outcome(run, index, request, response)
            return
        if request.fallback is not None and status == 404:
            fallback = request.fallback  # a nameless group's company is new: create it
            self._send_rows(run, fallback, [(index, row) for row in fallback.body])
            return
        if request.kind == "attach" and status == 404:
            company = request.body.get("companyId") if isinstance(request.body, dict) else None
            run.mark_skip(index, Skip(UNKNOWN_USER, (
                f"group: {request.method} {request.path} answered 404: no such end user yet, "
                f"so it was not attached to the company ({company}); the company was written. "
                "Identify the user before the group call.")))
            return
        if request.kind == "alias" and status == 409:
            run.mark_skip(index, Skip(ALIAS_CONFLICT, _alias_detail(request, response)))
            return
        if request.kind == "alias" and status == 404:
            run.mark_skip(index, Skip(UNKNOWN_USER, _alias_detail(request, response)))
            return
        run.mark_failed([index], request, None, response, error)

    @staticmethod
    def _dock_outcome(run: _Run, index: int, request: PlanhatRequest, response: Response) -> None:
        """Read a 2xx ``/dock/segment`` answer: sent unless it says skipped or failed."""
        try:
            payload = response.json()
        except ValueError:
            return  # Planhat answered without an outcome: the call was accepted
        if not isinstance(payload, dict):
            return
        outcome = payload.get("outcome")
        if outcome == "skipped":
            reason = payload.get("reason")
            message = payload.get("message")
            run.mark_skip(index, Skip(reason if isinstance(reason, str) and reason else ROW_ERROR,
                                      message if isinstance(message, str) else "",
                                      reported=True))
        elif outcome == "failed":
            run.mark_failed([index], request, None, response, None)

    def _delay(self, attempt: int, response: Response | None) -> float:
        if response is not None:
            retry_after = _retry_after(response)
            if retry_after is not None:
                return min(retry_after, self.backoff_max)
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        return self.random.uniform(0, ceiling)

    def _execute(self, run: _Run, request: PlanhatRequest) -> tuple[Response | None, str | None]:
        """Send with retries; return the final response (None after connection errors)."""
        body = request.body_bytes()
        attempt = 0
        while True:
            run.result.requests += 1
            response: Response | None = None
            error: str | None = None
            try:
                response = self.transport.request(
                    request.method, request.url, body, request.headers
                )
            except OSError as exc:
                error = f"{type(exc).__name__}: {exc}"
            retryable = response is None or response.status == 429 or response.status >= 500
            if not retryable or attempt >= self.max_retries:
                run.result.responses.append((request, response))
                return response, error
            self.sleep(self._delay(attempt, response))
            attempt += 1
