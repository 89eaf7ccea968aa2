"""Soak: 60 s of mixed load from 4 clients against a live server on loopback; and the byte
bounds: 40 x 30 MB posts for an unknown tenant and a flood of 4,000 x 65 KB requests to a 404
path keep the server (its own process, default flags) under 300 MB of RSS.

No request may fail (every answer is the one its request expects), and the process's RSS
after the warm-up and at the end must stay within a small margin: the journal, the report and
the recording are bounded, and the load writes a bounded key space. Runs only with
``MOCK_PLANHAT_SOAK=1`` (``tox -e soak``); ``MOCK_PLANHAT_SOAK_SECONDS`` changes the length
(default 60).
"""

from __future__ import annotations

import base64
import gc
import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest
import requests

from mock_planhat import Config, create_app
from mock_planhat.server import Server

pytestmark = pytest.mark.skipif(os.environ.get("MOCK_PLANHAT_SOAK") != "1",
                                reason="soak test: set MOCK_PLANHAT_SOAK=1 (tox -e soak)")

SECONDS = float(os.environ.get("MOCK_PLANHAT_SOAK_SECONDS", "60"))
WARM_UP = min(20.0, SECONDS / 3)
CLIENTS = 4
MAX_REQUESTS = 2_000_000  # per client: a bound besides the clock
KEYS = 200
TOKEN = "mock-tenant-token"
API = {"Authorization": "Bearer mock-api-token"}
BASIC = {"Authorization": "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode()}
JOURNAL, REPORT = 1_000, 300  # small: both are full well before the warm-up ends
RECORDING = 256 * 1024  # bytes: full well before the warm-up ends too
RSS_MARGIN = 0.15  # the end may be at most 15% (and at least 16 MB allowed) above warm-up


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")  # pragma: no cover


@pytest.fixture
def server():
    # Small journal, report and recording, so that all are full well before the warm-up ends
    # (the recording's default 64 MB filled for the whole run: RSS grew with the request count,
    # ~9 of the 16 MB allowed at ~950 requests a second)
    app = create_app(Config(journal_size=JOURNAL, report_size=REPORT,
                            recording_bytes=RECORDING))
    live = Server(app, "127.0.0.1", 0).start()
    yield live
    live.stop()


def _requests(url: str, c: int, i: int, segment: bool):
    """The i-th request of client c: (method, url, kwargs, expected statuses)."""
    k = (i * 7 + c) % KEYS
    op = i % 10
    if op == 0:
        rows = [{"externalId": f"k-{(k + j) % KEYS}", "email": f"k{(k + j) % KEYS}@acme.com",
                 "custom": {f"c{c}": i}} for j in range(5)]
        return "PUT", f"{url}/endusers", {"json": rows, "headers": API}, (200,)
    if op == 1:
        return "PUT", f"{url}/endusers/extid-k-{k}", {
            "json": {"custom": {f"c{c}": i}}, "headers": API}, (200, 404)
    if op == 2:
        return "GET", f"{url}/endusers?limit=50&offset={k}&sort=-email", {"headers": API}, (200,)
    if op == 3:
        return "GET", f"{url}/endusers/extid-k-{k}", {"headers": API}, (200, 404)
    if op == 4:  # a data sink: unknown user → report entry (bounded)
        return "POST", f"{url}/analytics/{TOKEN}", {
            "json": {"externalId": f"nobody-{i}", "action": "x"}}, (200,)
    if op == 5:  # bad input: 4xx with a JSON body
        return "POST", f"{url}/endusers", {"data": b"{", "headers": {
            **API, "Content-Type": "application/json"}}, (400,)
    if op == 6:
        return "PUT", f"{url}/companies", {"json": [
            {"externalId": f"co-{k % 20}", "name": f"Co {k % 20}",
             "domains": [f"co{k % 20}.com"]}], "headers": API}, (200,)
    if op == 7:
        return "GET", f"{url}/leancompanies", {"headers": API}, (200,)
    if op == 8 and segment:
        calls = [{"type": "identify", "userId": f"k-{k}",
                  "traits": {"email": f"k{k}@acme.com", f"seg{c}": i}},
                 {"type": "track", "userId": f"nobody-{i}", "event": "e"}]
        return "POST", f"{url}/v1/batch", {"json": {"batch": calls}, "headers": BASIC}, (200,)
    return "GET", f"{url}/nowhere/{i}", {"headers": API}, (404,)


def test_soak(server):
    url = server.url
    requests.post(f"{url}/companies", json={"name": "Acme", "externalId": "acme",
                                            "domains": ["acme.com"]}, headers=API, timeout=10)
    segment = "/v1/batch" in requests.get(f"{url}/__admin/openapi.json", timeout=10).json()[
        "paths"]
    stop = threading.Event()
    failures: list[str] = []
    counts = [0] * CLIENTS
    deadline = time.monotonic() + SECONDS

    def client(c: int) -> None:
        session = requests.Session()
        for i in range(MAX_REQUESTS):
            if stop.is_set() or time.monotonic() > deadline:
                return
            method, target, kwargs, expected = _requests(url, c, i, segment)
            try:
                response = session.request(method, target, timeout=30, **kwargs)
                ok = response.status_code in expected and \
                    response.headers.get("Content-Type", "").startswith("application/json")
                if not ok:
                    failures.append(f"{method} {target} → {response.status_code} "
                                    f"{response.text[:200]}")
            except requests.RequestException as exc:
                failures.append(f"{method} {target}: {exc!r}")
            counts[c] += 1
            if failures:
                stop.set()
                return

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(WARM_UP)
    gc.collect()
    warm = rss_kib()
    warm_count = sum(counts)
    for thread in threads:
        thread.join(timeout=SECONDS + 60)
    assert not any(t.is_alive() for t in threads), "a client hung"
    gc.collect()
    end = rss_kib()
    total = sum(counts)
    print(f"\nsoak: {total} requests in {SECONDS:.0f} s ({total / SECONDS:.0f}/s), "
          f"RSS {warm} KiB after {warm_count} (warm-up) → {end} KiB at the end")
    assert not failures, failures[:5]
    assert total > warm_count > 0
    journal = requests.get(f"{url}/__admin/requests", timeout=10).json()
    assert len(journal["requests"]) == JOURNAL and journal["total"] >= total
    report = requests.get(f"{url}/__admin/report", timeout=10).json()
    assert len(report["entries"]) <= REPORT * 2  # the tenant's and the unknown-tenant deque
    allowed = max(warm * RSS_MARGIN, 16 * 1024)
    assert end - warm <= allowed, f"RSS grew {end - warm} KiB (allowed {allowed:.0f})"


# ----- byte bounds: what clients send cannot grow the server past RSS_BOUND ------------------
RSS_BOUND_MB = 300  # the README's bound, with the default flags
BIG_POSTS, BIG_BYTES = 40, 30 * 1024 * 1024
FLOOD_POSTS, FLOOD_BYTES = 4_000, 65 * 1024


@pytest.fixture
def server_process():
    """The fake as users start it (default bounds), in its own process: its RSS is its own."""
    process = subprocess.Popen([sys.executable, "-m", "mock_planhat", "--port", "0", "--quiet"],
                               stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        match = re.search(r"http://\S+", line)
        assert match, f"the server did not start: {line!r}"
        yield process, match.group(0)
    finally:
        process.terminate()
        process.wait(timeout=10)


def process_memory_mb(pid: int) -> dict[str, int]:
    """``VmRSS`` (now) and ``VmHWM`` (the peak) of a process, in MB."""
    found = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                found[line.split(":")[0]] = int(line.split()[1]) // 1024
    return found


def test_soak_byte_bounds_hold_under_unknown_tenant_posts_and_a_404_flood(server_process):
    process, url = server_process
    row = json.dumps({"externalId": "x" * 20, "action": "Signed in",
                      "info": {"plan": "pro", "note": "y" * 560}}).encode()
    body = b"[" + b",".join([row] * (BIG_BYTES // (len(row) + 1))) + b"]"
    assert len(body) > BIG_BYTES - 1024
    session = requests.Session()
    headers = {"Content-Type": "application/json"}
    for i in range(BIG_POSTS):
        response = session.post(f"{url}/analytics/bulk/unknown-{i}", data=body,
                                headers=headers, timeout=120)
        assert response.status_code == 200, response.text[:300]
    after_posts = process_memory_mb(process.pid)
    flood = b"x" * FLOOD_BYTES
    for i in range(FLOOD_POSTS):
        assert session.post(f"{url}/nowhere/{i}", data=flood, timeout=30).status_code == 404
    after_flood = process_memory_mb(process.pid)
    report = session.get(f"{url}/__admin/report", timeout=60).json()
    journal = session.get(f"{url}/__admin/requests", timeout=60).json()
    assert session.get(f"{url}/__admin/state", timeout=60).status_code == 200
    end = process_memory_mb(process.pid)
    print(f"\nbyte bounds: after {BIG_POSTS} x 30 MB {after_posts}, after the flood "
          f"{after_flood}, after the admin reads {end} (MB)")
    # What was kept says it was cut, and counts what it dropped.
    assert report["counts"] == {"unknown_tenant": BIG_POSTS}
    assert all(e["payload"]["truncated"] for e in report["entries"])
    assert journal["total"] >= BIG_POSTS + FLOOD_POSTS and journal["dropped"] > 0
    assert journal["bytes"] <= journal["maxBytes"]
    assert journal["requests"][-1]["body"]["truncated"] is True
    assert end["VmHWM"] < RSS_BOUND_MB, f"RSS peaked at {end['VmHWM']} MB"
    assert end["VmRSS"] < RSS_BOUND_MB
