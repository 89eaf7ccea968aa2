"""Figure 2: the matching rule stays flat — an end-user upsert with 100,000 end users stored
against one with 100 stored, measured alternately in the same process.

Each round times the same mix on both tenants through ``matching.upsert_enduser`` under the
tenant lock (the path every end-user write takes): half updates of stored end users found by
``externalId``, a quarter updates found by email alone, a quarter new end users (deleted again
after the round, untimed, so the sizes stay put).
"""

from __future__ import annotations

import random
import statistics
import time

from mock_planhat.engine import upsert
from mock_planhat.matching import upsert_enduser
from mock_planhat.models import COMPANY
from mock_planhat.store import Tenant

from .common import Figure, fmt

SMALL, LARGE = 100, 100_000
COMPANIES = 200


def user_row(i: int, rng: random.Random, prefix: str = "u") -> dict:
    return {
        "externalId": f"{prefix}-{i}", "email": f"{prefix}.first{i}.last{i}@example{i % 97}.com",
        "firstName": f"First{i}", "lastName": f"Last{i}",
        "companyId": f"extid-co-{rng.randrange(COMPANIES)}", "source": "Segment",
        "custom": {"plan": rng.choice(("free", "pro", "enterprise")),
                   "logins": rng.randint(0, 500)},
    }


def filled_tenant(size: int, seed: int = 7) -> Tenant:
    rng = random.Random(seed)
    tenant = Tenant("tt", "at")
    with tenant.lock:
        for c in range(COMPANIES):
            upsert(tenant, COMPANY, {"externalId": f"co-{c}", "name": f"Company {c}"})
        for i in range(size):
            outcome = upsert_enduser(tenant, user_row(i, rng))
            if outcome.status != "created":
                raise AssertionError(f"filling: row {i} {outcome.status} {outcome.reason}")
    return tenant


def _workload(size: int, round_no: int, per_round: int) -> list[dict]:
    rng = random.Random(round_no)
    rows = []
    for n in range(per_round):
        i = rng.randrange(size)
        if n % 4 < 2:
            rows.append({"externalId": f"u-{i}", "custom": {"logins": 1000 * round_no + n}})
        elif n % 4 == 2:
            rows.append({"email": f" U.FIRST{i}.last{i}@example{i % 97}.com",
                         "custom": {"seen": 1000 * round_no + n}})
        else:
            rows.append(user_row(n, rng, prefix=f"new{round_no}"))
    return rows


def _time_upserts(tenant: Tenant, rows: list[dict]) -> float:
    """Seconds spent upserting ``rows``; new end users are removed afterwards (not timed)."""
    with tenant.lock:
        start = time.perf_counter()
        outcomes = [upsert_enduser(tenant, row) for row in rows]
        elapsed = time.perf_counter() - start
        for outcome in outcomes:
            if outcome.status not in ("created", "updated"):
                raise AssertionError(f"upsert: {outcome.status} {outcome.reason} "
                                     f"{outcome.message}")
            if outcome.status == "created":
                tenant.delete_person(outcome.record["_id"])
    return elapsed


def flat_matching(rounds: int, per_round: int = 4_000, chunk: int = 200) -> Figure:
    """Per round, the two tenants take turns chunk by chunk, so a burst of load on the shared
    machine lands on both sides alike."""
    small, large = filled_tenant(SMALL), filled_tenant(LARGE)
    ratios, small_times, large_times = [], [], []
    for round_no in range(rounds):
        spent = {SMALL: 0.0, LARGE: 0.0}
        work = {size: _workload(size, round_no, per_round) for size in (SMALL, LARGE)}
        for n, begin in enumerate(range(0, per_round, chunk)):
            pair = ((small, SMALL), (large, LARGE))
            for tenant, size in pair if n % 2 else pair[::-1]:
                spent[size] += _time_upserts(tenant, work[size][begin:begin + chunk])
        small_times.append(spent[SMALL] / per_round)
        large_times.append(spent[LARGE] / per_round)
        ratios.append(spent[LARGE] / spent[SMALL])
    return Figure(
        "2. upsert time, 100,000 end users stored ÷ 100 stored", "×", ratios, 1.3, False,
        peer=f"{fmt(statistics.median(small_times) * 1e6)} µs with {SMALL:,}, "
             f"{fmt(statistics.median(large_times) * 1e6)} µs with {LARGE:,}")
