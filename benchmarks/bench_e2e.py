"""Figure 1: Segment calls through the translator into the fake, in process (WSGI, no socket).

Batched: one ``Destination.send_many`` per round over the whole scenario, a fresh fake each
round. One request per call: ``Destination.send`` for every call, the scenario cut into
consecutive slices of users, one slice per round. The peer is the same Destination and calls
against a WSGI app that reads the body and answers a canned 200 ``{}``: what the translator,
the Destination and the transport cost alone, measured alternately with the fake.
"""

from __future__ import annotations

import statistics
import time

from mock_planhat import Config, create_app
from mock_planhat.app import fake_of
from translator import Destination, Settings, WsgiTransport

from .common import API_TOKEN, IN_PROCESS, TENANT_TOKEN, Figure, fmt
from .traffic import Traffic

SETTINGS = Settings(tenant_token=TENANT_TOKEN, api_token=API_TOKEN, api_url=IN_PROCESS,
                    analytics_url=IN_PROCESS)


def canned_app(environ, start_response):
    """A WSGI app that does no work: reads the body, answers 200 ``{}``."""
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]


def _destination(app) -> Destination:
    return Destination(SETTINGS, WsgiTransport(app), max_retries=0)


def _check_state(app, users: int, traffic: Traffic) -> None:
    """The run did the real work: every user created under a company, every event stored."""
    tenant = fake_of(app).registry.default
    events = sum(len(calls) - 2 for calls in traffic.users[:users])
    problems = []
    if len(tenant.endusers) != users or tenant.pending:
        problems.append(f"{len(tenant.endusers)} end users, {len(tenant.pending)} pending")
    if len(tenant.activities) != events:
        problems.append(f"{len(tenant.activities)} activities, expected {events}")
    if tenant.report_counts:
        problems.append(f"report: {dict(tenant.report_counts)}")
    audience = sum(1 for u in tenant.endusers.values() if u["custom"].get("power_users") is True)
    if audience != users:
        problems.append(f"{audience} end users in the audience, expected {users}")
    if problems:
        raise AssertionError("end-to-end run did not land as expected: " + "; ".join(problems))


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def batched(traffic: Traffic, rounds: int) -> Figure:
    calls = traffic.calls()
    ours, peer = [], []
    for _ in range(rounds):
        app = create_app(Config())
        destination = _destination(app)
        ours.append(len(calls) / _timed(lambda d=destination: _sent(d.send_many(calls))))
        _check_state(app, len(traffic.users), traffic)
        null = _destination(canned_app)
        peer.append(len(calls) / _timed(lambda d=null: _sent(d.send_many(calls))))
    return Figure(
        f"1a. end to end, batched (send_many), {len(traffic.users):,} users / "
        f"{len(calls):,} calls", "calls/s", ours, 10_000, True,
        peer=f"canned-200 WSGI app: {fmt(statistics.median(peer))} calls/s")


def one_by_one(traffic: Traffic, rounds: int) -> Figure:
    users = len(traffic.users)
    size = -(-users // rounds)
    app = create_app(Config())
    destination = _destination(app)
    null = _destination(canned_app)
    ours, peer = [], []
    for start in range(0, users, size):
        calls = traffic.calls(slice(start, start + size))

        def send_each(d, calls=calls):
            for call in calls:
                _sent(d.send(call))

        ours.append(len(calls) / _timed(lambda: send_each(destination)))
        peer.append(len(calls) / _timed(lambda: send_each(null)))
    _check_state(app, users, traffic)
    return Figure(
        f"1b. end to end, one request per call (send), {users:,} users / "
        f"{traffic.call_count:,} calls", "calls/s", ours, 1_500, True,
        peer=f"canned-200 WSGI app: {fmt(statistics.median(peer))} calls/s")


def _sent(result) -> None:
    if not result.ok or result.skipped:
        raise AssertionError(f"calls not sent: skipped {result.skipped}, "
                             f"failed {result.failed[:1]}")
