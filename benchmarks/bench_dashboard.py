"""Figure 6: the dashboard at scale — every page of a tenant with 100,000 end users (at 1,000
companies, 1,000 of them pending) and 500,000 activities, through Flask's test client.

The measure is the slowest page's median time (each page asked ``rounds`` times); the target
is 200 ms a page. The peer is ``GET /__admin/health`` on the same app: what Flask and the
admin rule cost alone.
"""

from __future__ import annotations

import statistics
import time

from mock_planhat import Config, create_app
from mock_planhat.app import fake_of
from mock_planhat.engine import upsert
from mock_planhat.matching import record_activity, upsert_enduser
from mock_planhat.models import COMPANY

from .common import TENANT_TOKEN, Figure, fmt

UI = f"/__admin/ui/t/{TENANT_TOKEN}"


def _fill(app, users: int, activities: int, companies: int) -> tuple[str, str]:
    """Write the records straight through the matching rule (the HTTP path is figure 1's)."""
    tenant = fake_of(app).registry.default
    with tenant.lock:
        for c in range(companies):
            upsert(tenant, COMPANY, {"name": f"Company {c}", "externalId": f"c{c}",
                                    "domains": [f"c{c}.example"]})
        for u in range(users):
            row = {"externalId": f"u{u}", "email": f"user{u}@c{u % companies}.example",
                   "firstName": f"First{u}", "lastName": f"Last{u}"}
            if u < users // 100:
                row["email"] = f"user{u}@nowhere.example"  # held: no company has the domain
            upsert_enduser(tenant, row)
        for a in range(activities):
            record_activity(tenant, {"externalId": f"u{(a * 7919) % users}",
                                     "action": f"Action {a % 20}"})
        person = tenant.person_by_external_id("u5000")["_id"]
        pending = next(iter(tenant.pending))
    return person, pending


def dashboard(rounds: int, users: int = 100_000, activities: int = 500_000) -> Figure:
    app = create_app(Config())
    person, pending = _fill(app, users, activities, max(users // 100, 1))
    client = app.test_client()
    # some journal entries to page through
    for i in range(200):
        client.get(f"/endusers/extid-u{i}", headers={"Authorization": "Bearer mock-api-token"})
    pages = ["/", f"{UI}/endusers", f"{UI}/endusers?sort=-name&offset=50000",
             f"{UI}/endusers?q=user9999", f"{UI}/companies?sort=name", f"{UI}/pending",
             f"{UI}/person/{person}", f"{UI}/person/{pending}", f"{UI}/funnel",
             "/__admin/ui/journal", "/__admin/ui/journal?path=/endusers/*&status=2xx",
             "/__admin/ui/faults", "/__admin/explain?externalId=u5000"]
    times: dict[str, list[float]] = {p: [] for p in pages}
    health = []
    for _ in range(rounds):
        for page in pages:
            begin = time.perf_counter()
            response = client.get(page)
            times[page].append(time.perf_counter() - begin)
            if response.status_code != 200:
                raise AssertionError(f"{page}: {response.status_code}")
        begin = time.perf_counter()
        client.get("/__admin/health")
        health.append(time.perf_counter() - begin)
    medians = {p: statistics.median(t) * 1000 for p, t in times.items()}
    slowest = max(medians, key=medians.get)
    figure = Figure(f"6. dashboard: slowest page, {users:,} end users / {activities:,} "
                    "activities", "ms", [max(t) * 1000 for t in zip(*times.values(),
                                                                     strict=True)],
                    200, False, peer=f"GET /__admin/health {fmt(statistics.median(health) * 1000)}"
                                     " ms")
    figure.notes = [f"{p}: {fmt(ms)} ms" for p, ms in sorted(medians.items(),
                                                              key=lambda i: -i[1])]
    figure.notes.insert(0, f"slowest: {slowest}")
    return figure


if __name__ == "__main__":
    result = dashboard(rounds=3)
    print(result.name, result.measured_text(), result.spread, result.peer)
    print("\n".join(result.notes))
