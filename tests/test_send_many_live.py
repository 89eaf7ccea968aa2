"""10,000 mixed Segment calls through ``Destination.send_many`` over HTTP to the live fake."""

from __future__ import annotations

import time

import requests

from translator import Destination, HttpTransport, Settings

TENANT = "mock-tenant-token"
API_TOKEN = "mock-api-token"
USERS = 2_000
COMPANIES = 100


def calls_for(i: int) -> list[dict]:
    """Five calls of user i: group (anonymous, so no attach request), identify, track, page,
    track."""
    user, group = f"user-{i}", f"g{i % COMPANIES}"
    stamp = f"2024-05-01T10:{i % 60:02d}:00.000Z"
    return [
        {"type": "group", "anonymousId": f"anon-{i}", "groupId": group,
         "traits": {"name": f"Company {group}", "employees": i % 500}},
        {"type": "identify", "userId": user, "anonymousId": f"anon-{i}",
         "traits": {"email": f"{user}@example.com", "firstName": "User", "lastName": str(i),
                    "company": {"id": group}, "score": i}},
        {"type": "track", "userId": user, "event": "Logged In", "timestamp": stamp,
         "properties": {"n": i}},
        {"type": "page", "userId": user, "name": "Dashboard", "category": None,
         "properties": {"path": "/dashboard"}},
        {"type": "track", "userId": user, "event": "Report Viewed", "timestamp": stamp},
    ]


def test_ten_thousand_calls_in_a_few_bulk_requests(live_server):
    calls = [call for i in range(USERS) for call in calls_for(i)]
    assert len(calls) == 10_000
    settings = Settings.from_dict({"tenant_token": TENANT, "api_token": API_TOKEN,
                                   "api_url": live_server.url,
                                   "analytics_url": live_server.url})
    started = time.perf_counter()
    with HttpTransport() as transport:
        result = Destination(settings, transport).send_many(calls)
    seconds = time.perf_counter() - started
    print(f"\nsend_many: {len(calls)} calls, {result.requests} requests, {seconds:.2f} s")

    assert result.failed == [] and result.skipped == {}
    assert result.sent == 10_000
    assert result.requests < 30

    journal = requests.get(f"{live_server.url}/__admin/requests", timeout=30).json()
    assert journal["total"] == result.requests  # what the fake saw is what was sent

    data = requests.get(f"{live_server.url}/__admin/state", timeout=60).json()
    assert len(data["companies"]) == COMPANIES
    assert len(data["endusers"]) == USERS and data["pending"] == []
    assert data["report"] == []
    by_id = {c["_id"]: c for c in data["companies"]}
    assert all(by_id[u["companyId"]]["externalId"] == f"g{int(u['lastName']) % COMPANIES}"
               for u in data["endusers"])
    actions = {}
    for activity in data["activities"]:
        actions[activity["action"]] = actions.get(activity["action"], 0) + 1
    assert actions == {"Logged In": USERS, "Viewed Dashboard Page": USERS,
                       "Report Viewed": USERS}
