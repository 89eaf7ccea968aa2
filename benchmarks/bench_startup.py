"""Figure 4: start-up — ``python -m mock_planhat`` to its first 200 on ``/__admin/health``.

The peer is pytest-httpserver (the empty server of figure 3) started the same way and timed
to its first 200, alternately; the floor is a bare ``python -c pass``.
"""

from __future__ import annotations

import http.client
import statistics
import subprocess
import sys
import time
from urllib.parse import urlsplit

from .common import Figure, fmt
from .servers import FAKE, PEER, start, stop

POLL_LIMIT = 2_000  # x 2 ms: give up after ~4 s


def _first_200(url: str) -> None:
    parts = urlsplit(url)
    for _ in range(POLL_LIMIT):
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
            conn.request("GET", "/__admin/health")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.002)
    raise AssertionError(f"{url}: no 200 on /__admin/health")


def _time_to_200(command: list[str]) -> float:
    begin = time.perf_counter()
    child, url = start(command)
    try:
        _first_200(url)
        return time.perf_counter() - begin
    finally:
        stop(child)


def _bare_python() -> float:
    begin = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - begin


def startup(rounds: int) -> Figure:
    ours, peer, floor = [], [], []
    for _ in range(rounds):
        ours.append(_time_to_200(FAKE))
        peer.append(_time_to_200(PEER))
        floor.append(_bare_python())
    return Figure("4. start-up: python -m mock_planhat to first 200", "s", ours, 0.8, False,
                  peer=f"pytest-httpserver {fmt(statistics.median(peer))} s; "
                       f"bare python {fmt(statistics.median(floor))} s")
