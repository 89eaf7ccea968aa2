"""Concurrent writers over real sockets: exact counts, unique externalIds, no lost update.

8 threads × 500 mixed writes (bulk and single upserts, activities) with overlapping keys
against the live server; the same through Segment's ``/v1/batch``. Each thread writes its own
custom field on the shared end users, so a lost update shows as a missing or stale field.
"""

from __future__ import annotations

import base64
import threading
from collections import Counter

import requests

THREADS = 8
WRITES = 500
SHARED = 20  # end users every thread writes to
COMMON_NEW = 30  # keys every thread creates by upsert: each must exist once
OWN = 50  # keys only one thread writes
TOKEN = "mock-tenant-token"
API = {"Authorization": "Bearer mock-api-token"}
BASIC = {"Authorization": "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode()}


def _run_threads(target) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def run(t):
        try:
            start.wait(timeout=30)
            target(t)
        except BaseException as exc:  # noqa: B036 - reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a writer thread hung"
    assert not errors, errors[:3]


def _seed(url: str) -> None:
    response = requests.post(f"{url}/companies", json={
        "name": "Acme", "externalId": "acme", "domains": ["acme.com"]}, headers=API, timeout=10)
    assert response.status_code == 200, response.text
    rows = [{"externalId": f"s-{k}", "email": f"s{k}@acme.com"} for k in range(SHARED)]
    response = requests.put(f"{url}/endusers", json=rows, headers=API, timeout=10)
    assert response.status_code == 200 and response.json()["created"] == SHARED, response.text


def _state(url: str) -> dict:
    return requests.get(f"{url}/__admin/state", timeout=30).json()


def _check_people(state: dict, expected: set[str], field: str, last: dict) -> None:
    """One record per expected person (by email's local part), each thread's last write."""
    people = state["endusers"] + state["pending"]
    exts = Counter(p["externalId"] for p in people if p.get("externalId"))
    assert [e for e, n in exts.items() if n > 1] == [], "duplicate externalIds"
    emails = Counter(p["email"].strip().lower() for p in people if p.get("email"))
    assert [e for e, n in emails.items() if n > 1] == [], "one person created twice"
    assert sorted(e.partition("@")[0] for e in emails) == sorted(expected)
    assert len(state["endusers"]) == len(expected)
    assert state["pending"] == []
    by_ext = {p.get("externalId"): p for p in people}
    for (t, k), value in last.items():
        custom = by_ext[f"s-{k}"]["custom"]
        assert custom.get(f"{field}{t}") == value, (t, k, custom)


def test_concurrent_rest_writes(live_server):
    url = live_server.url
    _seed(url)
    last: dict[tuple[int, int], int] = {}
    activities = Counter()
    people: set[str] = {f"s{k}" for k in range(SHARED)}  # a key per person: email's local part
    lock = threading.Lock()

    def writer(t: int) -> None:
        session = requests.Session()
        mine: dict[tuple[int, int], int] = {}
        touched: set[str] = set()
        sent = 0
        for i in range(WRITES):
            k = (i * 7 + t) % SHARED
            op = i % 5
            if op == 0:  # bulk: a shared user, a common new key, an own key
                rows = [{"externalId": f"s-{k}", "custom": {f"t{t}": i}},
                        {"externalId": f"n-{i % COMMON_NEW}", "email": f"n{i % COMMON_NEW}@acme.com"},
                        {"externalId": f"o-{t}-{i % OWN}", "email": f"o{t}.{i % OWN}@acme.com",
                         "custom": {"i": i}}]
                response = session.put(f"{url}/endusers", json=rows, headers=API, timeout=30)
                assert response.status_code == 200, response.text
                mine[(t, k)] = i
                touched |= {f"n{i % COMMON_NEW}", f"o{t}.{i % OWN}"}
            elif op == 1:  # single upsert by key
                response = session.put(f"{url}/endusers/extid-s-{k}",
                                       json={"custom": {f"t{t}": i}}, headers=API, timeout=30)
                assert response.status_code == 200, response.text
                mine[(t, k)] = i
            elif op == 2:  # one activity
                response = session.post(f"{url}/analytics/{TOKEN}", json={
                    "externalId": f"s-{k}", "action": f"t{t}"}, timeout=30)
                assert response.status_code == 200 and response.json()["processed"] == 1
                sent += 1
            elif op == 3:  # bulk of common keys only, by email (case variants)
                rows = [{"email": f"N{(i + j) % COMMON_NEW}@ACME.com"} for j in range(3)]
                touched |= {f"n{(i + j) % COMMON_NEW}" for j in range(3)}
                response = session.put(f"{url}/endusers", json=rows, headers=API, timeout=30)
                assert response.status_code in (200, 206), response.text
                if response.status_code == 206:  # only before the key existed by externalId
                    errors = response.json()["createdErrors"]
                    assert all(e["reason"] == "ambiguous_email" for e in errors), errors
            else:  # activities in bulk
                response = session.post(f"{url}/analytics/bulk/{TOKEN}", json=[
                    {"externalId": f"s-{k}", "action": "bulk"},
                    {"email": f"s{(k + 1) % SHARED}@acme.com", "action": "bulk"}], timeout=30)
                assert response.status_code == 200 and response.json()["processed"] == 2
                sent += 2
        with lock:
            last.update(mine)
            activities[t] = sent
            people.update(touched)

    _run_threads(writer)
    state = _state(url)
    _check_people(state, people, "t", last)
    assert len(state["activities"]) == sum(activities.values())
    assert all(any(p.get("custom", {}).get(f"t{t}") is not None for p in state["endusers"])
               for t in range(THREADS))


def test_concurrent_segment_batches(live_server):
    url = live_server.url
    _seed(url)
    last: dict[tuple[int, int], int] = {}
    tracked = Counter()
    people: set[str] = {f"s{k}" for k in range(SHARED)}
    lock = threading.Lock()
    batches = WRITES // 5  # each batch carries five calls: 8 × 100 × 5 = 4,000 calls

    def writer(t: int) -> None:
        session = requests.Session()
        mine: dict[tuple[int, int], int] = {}
        touched: set[str] = set()
        sent = 0
        for i in range(batches):
            k = (i * 3 + t) % SHARED
            calls = [
                {"type": "identify", "userId": f"s-{k}", "traits": {f"seg{t}": i}},
                {"type": "identify", "userId": f"n-{i % COMMON_NEW}",
                 "traits": {"email": f"n{i % COMMON_NEW}@acme.com"}},
                {"type": "identify", "userId": f"o-{t}-{i % OWN}",
                 "traits": {"email": f"o{t}.{i % OWN}@acme.com"}},
                {"type": "track", "userId": f"s-{k}", "event": "Clicked"},
                {"type": "track", "userId": f"s-{(k + 1) % SHARED}", "event": "Viewed"},
            ]
            response = session.post(f"{url}/v1/batch", json={"batch": calls}, headers=BASIC,
                                     timeout=60)
            assert response.status_code == 200 and response.json() == {"success": True}
            mine[(t, k)] = i
            touched |= {f"n{i % COMMON_NEW}", f"o{t}.{i % OWN}"}
            sent += 2
        with lock:
            last.update(mine)
            tracked[t] = sent
            people.update(touched)

    _run_threads(writer)
    state = _state(url)
    assert state["report"] == [], state["report"][:3]
    _check_people(state, people, "seg", last)
    assert len(state["activities"]) == sum(tracked.values())
