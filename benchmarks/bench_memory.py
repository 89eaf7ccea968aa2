"""Figure 5: resident memory per end user with 100,000 end users stored.

Each measure runs in a fresh child process (``python -m benchmarks.bench_memory store|rows``):
RSS (VmRSS) once the app is created and the rows are built, then again after the rows are
written through ``matching.upsert_enduser`` under the tenant lock, the path every end-user
write takes. The peer child keeps only the same rows, as plain dicts in a list: what the
data itself weighs in Python.
"""

from __future__ import annotations

import gc
import json
import os
import random
import statistics
import subprocess
import sys

from .common import Figure, fmt, rss_kib
from .servers import ROOT

USERS = 100_000


def child(kind: str) -> dict:
    from mock_planhat import Config, create_app
    from mock_planhat.app import fake_of
    from mock_planhat.engine import upsert
    from mock_planhat.matching import upsert_enduser
    from mock_planhat.models import COMPANY

    from .bench_matching import user_row

    app = create_app(Config())
    tenant = fake_of(app).registry.default
    with tenant.lock:
        for c in range(200):
            upsert(tenant, COMPANY, {"externalId": f"co-{c}", "name": f"Company {c}"})
    rng = random.Random(1)
    gc.collect()
    before = rss_kib()
    # Rows are built after the baseline, one at a time, as parsed request bodies would be:
    # their strings then belong to whatever keeps them.
    if kind == "store":
        with tenant.lock:
            for i in range(USERS):
                if upsert_enduser(tenant, user_row(i, rng)).status != "created":
                    raise AssertionError("memory: a row was not created")
        kept = len(tenant.endusers)
    else:
        held = [user_row(i, rng) for i in range(USERS)]
        kept = len(held)
    gc.collect()
    grown = rss_kib() - before
    return {"bytes_per_user": grown * 1024 / kept}


def _run_child(kind: str) -> float:
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_memory", kind], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                         text=True, check=True, timeout=120)
    return json.loads(out.stdout)["bytes_per_user"]


def memory(rounds: int) -> Figure:
    ours, peer = [], []
    for _ in range(rounds):
        ours.append(_run_child("store") / 1024)
        peer.append(_run_child("rows") / 1024)
    return Figure(f"5. RSS growth per end user at {USERS:,} end users", "KiB", ours, 2.0, False,
                  peer=f"the rows alone as dicts: {fmt(statistics.median(peer))} KiB")


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1])))
