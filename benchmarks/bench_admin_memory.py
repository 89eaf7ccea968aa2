"""What a 100,000-end-user tenant's recording base and ``GET /__admin/state`` cost in memory
(not part of ``python -m benchmarks``; numbers in RESULTS.md's scale section).

``python -m benchmarks.bench_admin_memory`` runs each measure in a fresh child process:

* ``base-dict`` / ``base-json``: the recording's base as the old dict tree (``dump_tenant``'s
  lists, which hold the live records) or as compact JSON, zlib-compressed (now:
  ``recording._begin``): tracemalloc of the
  dump (kept, and peak while dumping), then RSS growth once every end user has been written
  again (the dict tree keeps the replaced records alive; the bytes do not);
* ``state-whole`` / ``state-streamed``: peak RSS (``ru_maxrss``) over the RSS before, of one
  ``GET /__admin/state`` answered as one whole text (``jsonify``, the old code) or streamed
  (now) and read chunk by chunk.
"""

from __future__ import annotations

import gc
import json
import os
import random
import resource
import subprocess
import sys
import tracemalloc

from .common import rss_kib
from .servers import ROOT

USERS = 100_000
MIB = 1024 * 1024


def _filled():
    from mock_planhat import Config, create_app
    from mock_planhat.app import fake_of
    from mock_planhat.matching import upsert_company, upsert_enduser

    from .bench_matching import user_row

    app = create_app(Config())
    tenant = fake_of(app).registry.default
    rng = random.Random(1)
    with tenant.lock:
        for c in range(200):
            upsert_company(tenant, {"externalId": f"co-{c}", "name": f"Company {c}"})
        for i in range(USERS):
            upsert_enduser(tenant, user_row(i, rng))
    gc.collect()
    return app, tenant, upsert_enduser


def child(kind: str) -> dict:
    app, tenant, upsert_enduser = _filled()
    out: dict = {"kind": kind, "users": len(tenant.endusers)}
    if kind.startswith("base-"):
        from mock_planhat.snapshot import dump_tenant

        before = rss_kib()
        tracemalloc.start()
        with tenant.lock:
            if kind == "base-dict":
                base = {"tenant": dump_tenant(tenant), "at": tenant.now_iso()}
            else:
                from mock_planhat.recording import _begin

                _begin(tenant)
                base = tenant.recording_base
        kept, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out.update(kept_mib=kept / MIB, peak_mib=peak / MIB)
        with tenant.lock:
            for i in range(USERS):
                upsert_enduser(tenant, {"externalId": f"u-{i}", "lastName": f"New{i}"})
        gc.collect()
        out["rss_growth_after_rewrite_mib"] = (rss_kib() - before) / 1024
        del base
    else:
        before = rss_kib()
        if kind == "state-whole":
            from flask import jsonify

            with app.test_request_context():
                with tenant.lock:
                    snap = tenant.snapshot()
                size = len(jsonify(snap).get_data())
        else:
            answer = app.test_client().get("/__admin/state", buffered=False)
            size = sum(len(chunk) for chunk in answer.response)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out.update(answer_mib=size / MIB, rss_before_mib=before / 1024,
                   peak_over_before_mib=(peak - before) / 1024)
    return out


def main() -> None:
    for kind in ("base-dict", "base-json", "state-whole", "state-streamed"):
        run = subprocess.run([sys.executable, "-m", "benchmarks.bench_admin_memory", kind],
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                             capture_output=True, text=True, check=True, timeout=900)
        print(run.stdout.strip(), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print(json.dumps(child(sys.argv[1])))
    else:
        main()
