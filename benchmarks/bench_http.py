"""Figure 3: over HTTP, one keep-alive client — the fake against an empty server.

Both servers run as child processes: the fake exactly as ``python -m mock_planhat`` serves,
the peer is pytest-httpserver answering the same requests with a canned 200. One
``requests.Session`` sends rounds of identical requests to each, alternately; the figure is
the fake's rate over the peer's, round by round. Rounds are short (100 requests, ~0.4 s) and
many (28): the load of this shared box drifts within seconds, and a ratio taken over two
adjacent short turns is less moved by that drift than one over two 1.5 s turns.
"""

from __future__ import annotations

import json
import statistics
import time

import requests

from .common import API_TOKEN, TENANT_TOKEN, Figure, fmt, ratio_rounds
from .servers import FAKE, PEER, running

USERS = 500
AUTH = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
JSON = {"Content-Type": "application/json"}


def _enduser(i: int, n: int) -> bytes:
    return json.dumps([{
        "externalId": f"http-{i}", "email": f"http.user{i}@example.com",
        "name": f"Http User {i}", "companyId": "extid-co-http", "source": "Segment",
        "custom": {"plan": "pro", "n": n},
    }]).encode()


def _activity(i: int) -> bytes:
    return json.dumps({"action": "Feature Used", "externalId": f"http-{i}",
                       "companyExternalId": "co-http", "weight": 1,
                       "info": {"plan": "pro", "value": i}}).encode()


def _series(session: requests.Session, base: str, count: int):
    analytics = f"{base}/analytics/{TENANT_TOKEN}"
    endusers = f"{base}/endusers"
    bodies_a = [_activity(i % USERS) for i in range(count)]
    bodies_e = [_enduser(i % USERS, i) for i in range(count)]

    def post_analytics() -> float:
        start = time.perf_counter()
        for body in bodies_a:
            r = session.post(analytics, data=body, headers=JSON)
            if r.status_code != 200:
                raise AssertionError(f"POST {analytics}: {r.status_code} {r.text[:200]}")
        return count / (time.perf_counter() - start)

    def put_endusers() -> float:
        start = time.perf_counter()
        for body in bodies_e:
            r = session.put(endusers, data=body, headers=AUTH)
            if r.status_code != 200:
                raise AssertionError(f"PUT {endusers}: {r.status_code} {r.text[:200]}")
        return count / (time.perf_counter() - start)

    return post_analytics, put_endusers


def _prepare_fake(session: requests.Session, base: str) -> None:
    r = session.put(f"{base}/companies", headers=AUTH,
                    json=[{"externalId": "co-http", "name": "Http Co"}])
    r.raise_for_status()
    for i in range(USERS):  # the end users the activities name; warms the connection too
        session.put(f"{base}/endusers", data=_enduser(i, -1), headers=AUTH).raise_for_status()


def over_http(rounds: int, per_round: int = 100) -> list[Figure]:
    with running(FAKE) as fake_url, running(PEER) as peer_url, requests.Session() as session:
        _prepare_fake(session, fake_url)
        fake_a, fake_e = _series(session, fake_url, per_round)
        peer_a, peer_e = _series(session, peer_url, per_round)
        peer_a(), peer_e()  # warm the peer's connection too
        rates = {"fake_a": [], "peer_a": [], "fake_e": [], "peer_e": []}
        for round_no in range(rounds):
            order = [("fake_a", fake_a), ("peer_a", peer_a), ("fake_e", fake_e),
                     ("peer_e", peer_e)]
            if round_no % 2:
                order = [order[1], order[0], order[3], order[2]]
            for key, run in order:
                rates[key].append(run())
        state = session.get(f"{fake_url}/__admin/state").json()
    _check(state, rounds * per_round)

    def peer_text(fake: str, peer: str) -> str:
        return (f"fake {fmt(statistics.median(rates[fake]))} req/s, pytest-httpserver "
                f"{fmt(statistics.median(rates[peer]))} req/s")

    return [
        Figure("3a. HTTP keep-alive: POST /analytics/{token}, fake ÷ empty server", "×",
               ratio_rounds(rates["fake_a"], rates["peer_a"]), 0.8, True,
               peer=peer_text("fake_a", "peer_a")),
        Figure("3b. HTTP keep-alive: PUT /endusers (one row), fake ÷ empty server", "×",
               ratio_rounds(rates["fake_e"], rates["peer_e"]), 0.8, True,
               peer=peer_text("fake_e", "peer_e")),
    ]


def _check(state: dict, activities: int) -> None:
    if len(state["endusers"]) != USERS or len(state["activities"]) != activities \
            or state["report"]:
        raise AssertionError(f"HTTP run did not land: {len(state['endusers'])} end users, "
                             f"{len(state['activities'])} activities, report "
                             f"{state['reportCounts']}")
