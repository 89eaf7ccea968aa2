"""Figure 3: over HTTP, keep-alive clients — the fake against an empty server and moto's.

Every server runs as a child process: the fake exactly as ``python -m mock_planhat`` serves
(waitress, the default server, whose loop busy-polls 300 us after a read), the same fake with
``--busy-poll 0`` (its loop sleeps at once: shown beside each figure), the same fake on
``--server werkzeug`` (the server before issue 14, measured in the same run as "before"),
pytest-httpserver answering the same requests
with a canned 200 (the empty server), and moto's server answering DynamoDB ``PutItem``. The
client is ``http.client`` with keep-alive, the cheapest Python client, so the figure is the
servers' (a werkzeug server closes the connection after each answer; the client reopens it).
Each round sends ``per_round`` requests to each server in turn, the order reversed every other
round; a figure is the median of the round-by-round ratios, since the shared box's load drifts
within seconds. The 4-client row runs 4 threads, each its own connection, at once.

``/v1/batch`` is driven by Segment's own Python SDK (``segment-analytics-python``): 500 calls
queued, then ``flush()``, which sends them as one batch; calls per second, fake on waitress
against the fake on werkzeug.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from urllib.parse import urlsplit

from .common import API_TOKEN, TENANT_TOKEN, Figure, fmt, ratio_rounds
from .servers import FAKE, FAKE_NO_BUSY_POLL, FAKE_WERKZEUG, MOTO, PEER, running

USERS = 500
# 3e: a batch is ~30 ms of the SDK's and the app's own work, against well under a millisecond
# of the server's, so the two servers read 1.0 within the rounds' noise (0.96-1.02 in five
# quiet-box runs); the target says "no slower than before" to that resolution
BATCH_TARGET = 0.95
THREADS = 4
BATCH = 500
AUTH = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
JSON = {"Content-Type": "application/json"}
TABLE = "bench"
AMZ = {"Content-Type": "application/x-amz-json-1.0",
       "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/"
                        "aws4_request, SignedHeaders=host;x-amz-date, Signature=0",
       "X-Amz-Date": "20260101T000000Z"}


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


def _put_item(i: int, n: int) -> bytes:
    return json.dumps({"TableName": TABLE, "Item": {
        "pk": {"S": f"http-{i}"}, "email": {"S": f"http.user{i}@example.com"},
        "name": {"S": f"Http User {i}"}, "plan": {"S": "pro"}, "n": {"N": str(n)}}}).encode()


class _Series:
    """``count`` requests of one kind: ``run(url)`` sends them on one keep-alive connection
    and returns requests per second; ``run_threads(url)`` the same from THREADS threads."""

    def __init__(self, method: str, path: str, headers: dict, bodies: list[bytes]):
        self.method, self.path, self.headers, self.bodies = method, path, headers, bodies

    def _send(self, url: str, bodies: list[bytes]) -> None:
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            for body in bodies:
                conn.request(self.method, self.path, body, self.headers)
                response = conn.getresponse()
                data = response.read()
                if response.status != 200:
                    raise AssertionError(f"{self.method} {url}{self.path}: {response.status} "
                                         f"{data[:200]!r}")
        finally:
            conn.close()

    def run(self, url: str) -> float:
        start = time.perf_counter()
        self._send(url, self.bodies)
        return len(self.bodies) / (time.perf_counter() - start)

    def run_threads(self, url: str) -> float:
        errors: list[BaseException] = []

        def work() -> None:
            try:
                self._send(url, self.bodies)
            except BaseException as exc:  # noqa: B036 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(THREADS)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return THREADS * len(self.bodies) / (time.perf_counter() - start)


def _request(url: str, method: str, path: str, body: bytes, headers: dict) -> bytes:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, path, body, headers)
        response = conn.getresponse()
        data = response.read()
        if response.status not in (200, 206):
            raise AssertionError(f"{method} {url}{path}: {response.status} {data[:300]!r}")
        return data
    finally:
        conn.close()


def _prepare_fake(url: str) -> None:
    _request(url, "PUT", "/companies", json.dumps(
        [{"externalId": "co-http", "name": "Http Co"}]).encode(), AUTH)
    for i in range(USERS):  # the end users the activities name
        _request(url, "PUT", "/endusers", _enduser(i, -1), AUTH)


def _prepare_moto(url: str) -> None:
    _request(url, "POST", "/", json.dumps({
        "TableName": TABLE, "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]}).encode(),
        {**AMZ, "X-Amz-Target": "DynamoDB_20120810.CreateTable"})


def _sdk_batches(url: str):
    """A Segment SDK client on ``url`` and a round: BATCH calls queued, flushed as one batch;
    returns calls per second."""
    from segment.analytics import Client

    errors: list = []
    client = Client(write_key=TENANT_TOKEN, host=url, upload_size=BATCH, upload_interval=2,
                    max_queue_size=10 * BATCH, max_retries=0, gzip=False,
                    on_error=lambda error, batch: errors.append(error))
    counter = iter(range(10 ** 9))

    def round_() -> float:
        start = time.perf_counter()
        for _ in range(BATCH // 2):
            n = next(counter)
            user = f"http-{n % USERS}"
            client.identify(user, {"email": f"http.user{n % USERS}@example.com", "n": n})
            client.track(user, "Feature Used", {"value": n})
        client.flush()
        if errors:
            raise AssertionError(f"/v1/batch on {url}: {errors[0]!r}")
        return BATCH / (time.perf_counter() - start)

    return client, round_


def over_http(rounds: int, per_round: int = 200) -> list[Figure]:
    analytics = _Series("POST", f"/analytics/{TENANT_TOKEN}", JSON,
                        [_activity(i % USERS) for i in range(per_round)])
    endusers = _Series("PUT", "/endusers", AUTH, [_enduser(i % USERS, i)
                                                  for i in range(per_round)])
    dynamo = _Series("POST", "/", {**AMZ, "X-Amz-Target": "DynamoDB_20120810.PutItem"},
                     [_put_item(i % USERS, i) for i in range(per_round)])
    with running(FAKE) as fake, running(FAKE_WERKZEUG) as before, running(PEER) as peer, \
            running(MOTO) as moto, running(FAKE_NO_BUSY_POLL) as asleep:
        for url in (fake, before, asleep):
            _prepare_fake(url)
        _prepare_moto(moto)
        sdk_after, batch_after = _sdk_batches(fake)
        sdk_before, batch_before = _sdk_batches(before)
        measures = {  # name -> (what it runs)
            "fake_a": lambda: analytics.run(fake), "before_a": lambda: analytics.run(before),
            "peer_a": lambda: analytics.run(peer),
            "fake_e": lambda: endusers.run(fake), "before_e": lambda: endusers.run(before),
            "peer_e": lambda: endusers.run(peer), "moto": lambda: dynamo.run(moto),
            "fake_t": lambda: endusers.run_threads(fake),
            "before_t": lambda: endusers.run_threads(before),
            "peer_t": lambda: endusers.run_threads(peer),
            "asleep_a": lambda: analytics.run(asleep), "asleep_e": lambda: endusers.run(asleep),
            "asleep_t": lambda: endusers.run_threads(asleep),
            "batch_after": batch_after, "batch_before": batch_before,
        }
        for run in measures.values():  # warm every server and connection once
            run()
        rates: dict[str, list[float]] = {name: [] for name in measures}
        for round_no in range(rounds):
            order = list(measures.items())
            for name, run in (order if round_no % 2 == 0 else order[::-1]):
                rates[name].append(run())
        sdk_after.shutdown()
        sdk_before.shutdown()
        states = [json.loads(_request(url, "GET", "/__admin/state", b"", {}))
                  for url in (fake, before, asleep)]
    sdk_tracks = (BATCH // 2, BATCH // 2, 0)  # the SDK's tracks add activity rows
    for state, tracks in zip(states, sdk_tracks, strict=True):
        _check(state, (rounds + 1) * (per_round + tracks))
    return _figures(rates)


def _figures(rates: dict[str, list[float]]) -> list[Figure]:
    def med(name: str) -> str:
        return fmt(statistics.median(rates[name]))

    def ratio(ours: str, theirs: str) -> str:
        return fmt(statistics.median(ratio_rounds(rates[ours], rates[theirs])))

    def peer_text(key: str, what: str = "req/s") -> str:
        return (f"fake {med('fake_' + key)} {what}, pytest-httpserver {med('peer_' + key)}; "
                f"--busy-poll 0: {med('asleep_' + key)} {what}, "
                f"{ratio('asleep_' + key, 'peer_' + key)} ×; "
                f"before (the fake on werkzeug): {med('before_' + key)} {what}, "
                f"{ratio('before_' + key, 'peer_' + key)} ×")

    return [
        Figure("3a. HTTP keep-alive: POST /analytics/{token}, fake ÷ empty server", "×",
               ratio_rounds(rates["fake_a"], rates["peer_a"]), 1.8, True,
               peer=peer_text("a")),
        Figure("3b. HTTP keep-alive: PUT /endusers (one row), fake ÷ empty server", "×",
               ratio_rounds(rates["fake_e"], rates["peer_e"]), 1.8, True,
               peer=peer_text("e")),
        Figure(f"3c. HTTP keep-alive, {THREADS} client threads: PUT /endusers, fake ÷ empty "
               "server", "×", ratio_rounds(rates["fake_t"], rates["peer_t"]), 2.0, True,
               peer=peer_text("t")),
        Figure("3d. HTTP keep-alive: fake PUT /endusers ÷ moto server DynamoDB PutItem", "×",
               ratio_rounds(rates["fake_e"], rates["moto"]), 3.0, True,
               peer=f"fake {med('fake_e')} req/s, moto {med('moto')} req/s; before "
                    f"{ratio('before_e', 'moto')} ×"),
        Figure(f"3e. /v1/batch of {BATCH} calls from segment-analytics-python, "
               "fake ÷ the fake on werkzeug (before)", "×",
               ratio_rounds(rates["batch_after"], rates["batch_before"]), BATCH_TARGET, True,
               peer=f"{med('batch_after')} calls/s; before {med('batch_before')} calls/s"),
    ]


def _check(state: dict, activities: int) -> None:
    if len(state["endusers"]) != USERS or len(state["activities"]) != activities \
            or state["report"]:
        raise AssertionError(f"HTTP run did not land: {len(state['endusers'])} end users, "
                             f"{len(state['activities'])} activities, report "
                             f"{state['reportCounts']}")
