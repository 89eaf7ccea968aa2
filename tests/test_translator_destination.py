"""Destination: batching, ordering, retries and outcomes, against a tiny fake WSGI app."""

from __future__ import annotations

import json
import random
import threading
from collections import defaultdict, deque
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from translator import (
    Destination,
    HttpTransport,
    Settings,
    TransportError,
    WsgiTransport,
)

SETTINGS = Settings.from_dict(
    {
        "tenant_token": "tt",
        "api_token": "tok",
        "api_url": "http://planhat.test",
        "analytics_url": "http://analytics.planhat.test",
    }
)


class FakePlanhat:
    """A plain WSGI callable: records requests, answers scripted or default responses."""

    def __init__(self):
        self.requests: list[dict] = []
        self.scripts: dict[tuple[str, str], deque] = defaultdict(deque)
        self.closed = 0

    def script(self, method, path, *responses):
        """Queue (status, body[, headers]) answers for one route, used before the default."""
        self.scripts[(method, path)].extend(responses)

    def default(self, method, path, body):
        if method == "PUT" and path in ("/endusers", "/companies"):
            return 200, {"created": len(body), "createdErrors": [], "updatedErrors": []}, {}
        return 200, {"ok": True}, {}

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length)
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        body = json.loads(raw) if raw else None
        self.requests.append({"method": method, "path": path, "body": body, "environ": environ})
        queue = self.scripts.get((method, path))
        if queue:
            answer = queue.popleft()
            status, payload = answer[0], answer[1]
            headers = answer[2] if len(answer) > 2 else {}
        else:
            status, payload, headers = self.default(method, path, body)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        start_response(
            f"{status} X",
            [("Content-Type", "application/json"), *headers.items()],
        )
        app = self

        class Body(list):
            def close(self):
                app.closed += 1

        return Body([data])

    def routes(self):
        return [(r["method"], r["path"]) for r in self.requests]


class Sleeper:
    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds):
        self.calls.append(seconds)


@pytest.fixture
def app():
    return FakePlanhat()


@pytest.fixture
def sleeper():
    return Sleeper()


@pytest.fixture
def dest(app, sleeper):
    return Destination(SETTINGS, WsgiTransport(app), sleep=sleeper, random=random.Random(7))


def identify(user, **traits):
    return {"type": "identify", "userId": user, "traits": traits}


def track(user, event="Clicked", **props):
    return {"type": "track", "userId": user, "event": event, "properties": props}


# ----------------------------------------------------------------------------- send()


def test_send_identify_one_request(dest, app):
    result = dest.send(identify("u1", email="u1@x.io"))
    assert app.routes() == [("PUT", "/endusers")]
    assert app.requests[0]["body"] == [
        {"externalId": "u1", "email": "u1@x.io", "source": "Segment"}
    ]
    env = app.requests[0]["environ"]
    assert env["HTTP_AUTHORIZATION"] == "Bearer tok"
    assert env["CONTENT_TYPE"] == "application/json"
    assert (result.calls, result.requests, result.sent, result.failed) == (1, 1, 1, [])
    assert app.closed == 1


def test_send_track_uses_single_activity_endpoint(dest, app):
    result = dest.send(track("u1", plan="x"))
    assert app.routes() == [("POST", "/analytics/tt")]
    assert app.requests[0]["environ"]["HTTP_HOST"] == "analytics.planhat.test"
    assert "HTTP_AUTHORIZATION" not in app.requests[0]["environ"]
    assert result.sent == 1


def test_send_skip_makes_no_request(dest, app):
    result = dest.send({"type": "screen", "userId": "u"})
    assert app.requests == []
    assert result.skipped == {"unsupported_call": 1}
    assert result.skips[0][1].reason == "unsupported_call"
    assert (result.sent, result.requests) == (0, 0)


def test_send_invalid_call_never_raises(dest, app):
    bad = {"type": "track", "event": None}
    result = dest.send(bad)
    assert result.skipped == {"invalid_call": 1}
    assert result.skips == [(bad, result.skips[0][1])]
    assert result.skips[0][1].detail == "call.event: None is not of type 'string'"
    assert app.requests == []


def test_destination_accepts_a_settings_dict(app):
    d = Destination({"tenant_token": "t", "api_token": "k", "api_url": "http://x.test"},
                    WsgiTransport(app))
    d.send(identify("u"))
    assert app.requests[0]["environ"]["HTTP_HOST"] == "x.test"


# ----------------------------------------------------------------------------- batching


def test_batching_10000_calls_into_few_requests(dest, app):
    calls = [identify(f"u{i}", email=f"u{i}@x.io") for i in range(6000)]
    calls += [track(f"u{i}", n=i) for i in range(4000)]
    result = dest.send_many(calls)
    assert app.routes() == [
        ("PUT", "/endusers"),
        ("PUT", "/endusers"),
        ("POST", "/analytics/bulk/tt"),
    ]
    sizes = [len(r["body"]) for r in app.requests]
    assert sizes == [5000, 1000, 4000]
    assert all(size <= 5000 for size in sizes)
    ids = [row["externalId"] for r in app.requests[:2] for row in r["body"]]
    assert ids == [f"u{i}" for i in range(6000)]
    assert [a["info"]["n"] for a in app.requests[2]["body"]] == list(range(4000))
    assert (result.calls, result.sent, result.requests, result.failed) == (10000, 10000, 3, [])


def test_batch_size_is_capped_at_5000(app):
    d = Destination(SETTINGS, WsgiTransport(app), batch_size=100_000)
    d.send_many([identify(f"u{i}") for i in range(5001)])
    assert [len(r["body"]) for r in app.requests] == [5000, 1]


def test_ordering_attach_after_upserts_and_flush_before_alias(dest, app):
    calls = [
        identify("u1", email="u1@x.io"),
        track("u1"),
        {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"name": "G"}},
        {"type": "alias", "previousId": "u1", "userId": "u2"},
        identify("u3"),
        {"type": "group", "anonymousId": "a", "groupId": "g2", "traits": {"name": "G2"}},
        track("u3"),
    ]
    result = dest.send_many(calls)
    assert app.routes() == [
        ("PUT", "/companies"),
        ("PUT", "/endusers"),
        ("PUT", "/endusers/extid-u1"),  # attach, after the upserts it depends on
        ("POST", "/analytics/bulk/tt"),
        ("PUT", "/endusers/extid-u1"),  # alias
        ("PUT", "/companies"),
        ("PUT", "/endusers"),
        ("POST", "/analytics/bulk/tt"),
    ]
    bodies = [r["body"] for r in app.requests]
    assert bodies[0][0]["externalId"] == "g1"
    assert bodies[2] == {"companyId": "extid-g1"}
    assert bodies[4] == {"externalId": "u2"}
    assert bodies[5][0]["externalId"] == "g2"
    assert [row["externalId"] for row in bodies[6]] == ["u3"]
    assert result.sent == 7


def test_attaches_do_not_break_the_batches(dest, app):
    calls = []
    for i in range(300):
        calls += [identify(f"u{i}"), {"type": "group", "userId": f"u{i}", "groupId": "g",
                                        "traits": {"name": "G"}},
                  track(f"u{i}")]
    result = dest.send_many(calls)
    routes = app.routes()
    assert routes.count(("PUT", "/endusers")) == 1
    assert routes.count(("PUT", "/companies")) == 1
    assert routes.count(("POST", "/analytics/bulk/tt")) == 1
    assert len(routes) == 3 + 300 and result.sent == 900


def test_identify_after_a_queued_attach_of_the_same_user_is_sent_after_it(dest, app):
    calls = [identify("u1"), {"type": "group", "userId": "u1", "groupId": "g", "traits": {"name": "G"}},
             identify("u2"), identify("u1", email="later@x.io")]
    dest.send_many(calls)
    assert app.routes() == [("PUT", "/companies"), ("PUT", "/endusers"),
                            ("PUT", "/endusers/extid-u1"), ("PUT", "/endusers")]
    assert [row["externalId"] for row in app.requests[1]["body"]] == ["u1", "u2"]
    assert app.requests[3]["body"][0]["email"] == "later@x.io"


def test_skips_are_counted_in_send_many(dest, app):
    calls = [
        identify("u1"),
        {"type": "screen", "userId": "u"},
        {"type": "identify", "anonymousId": "a"},
        "garbage",
        {"type": "identify", "userId": "u", "integrations": {"Planhat": False}},
    ]
    result = dest.send_many(calls)
    assert result.sent == 1
    assert result.skipped == {
        "unsupported_call": 1,
        "no_identifier": 1,
        "invalid_call": 1,
        "filtered": 1,
    }
    assert [c for c, _ in result.skips] == calls[1:]
    assert app.routes() == [("PUT", "/endusers")]


# ----------------------------------------------------------------------------- retries


def test_429_honours_retry_after(dest, app, sleeper):
    app.script("PUT", "/endusers", (429, {"message": "slow down"}, {"Retry-After": "3"}))
    result = dest.send(identify("u1"))
    assert sleeper.calls == [3.0]
    assert result.requests == 2 and result.sent == 1 and result.failed == []


def test_retry_after_is_capped_at_backoff_max(app, sleeper):
    app.script("POST", "/analytics/tt", (429, {}, {"Retry-After": "120"}))
    d = Destination(SETTINGS, WsgiTransport(app), sleep=sleeper, backoff_max=4.0)
    assert d.send(track("u")).sent == 1
    assert sleeper.calls == [4.0]


def test_503_then_success_is_delivered_exactly_once(dest, app, sleeper):
    app.script("PUT", "/endusers", (503, {"error": "busy"}))
    result = dest.send_many([identify("u1"), identify("u2")])
    assert app.routes() == [("PUT", "/endusers"), ("PUT", "/endusers")]
    assert result.sent == 2 and result.requests == 2 and result.failed == []
    assert len(sleeper.calls) == 1
    assert 0 <= sleeper.calls[0] <= 0.2  # full jitter under backoff_base * 2**0


def test_gives_up_after_max_retries(app, sleeper):
    d = Destination(
        SETTINGS,
        WsgiTransport(app),
        max_retries=3,
        backoff_base=1.0,
        backoff_max=3.0,
        sleep=sleeper,
        random=random.Random(1),
    )
    app.script("PUT", "/endusers", *[(500, {"error": "boom"})] * 10)
    call = identify("u1")
    result = d.send(call)
    assert len(app.requests) == 4 and result.requests == 4
    assert len(sleeper.calls) == 3
    for attempt, delay in enumerate(sleeper.calls):
        assert 0 <= delay <= min(3.0, 1.0 * 2**attempt)
    assert result.sent == 0 and result.failed_calls == 1
    [failure] = result.failed
    assert failure["call"] is call
    assert failure["status"] == 500
    assert json.loads(failure["body"]) == {"error": "boom"}
    assert failure["request"].path == "/endusers"


def test_400_is_not_retried(dest, app, sleeper):
    app.script("PUT", "/companies", (400, {"message": "name required"}))
    call = {"type": "group", "groupId": "g", "traits": {"name": "G"}}
    result = dest.send(call)
    assert len(app.requests) == 1 and sleeper.calls == []
    assert result.failed[0]["status"] == 400
    assert result.failed[0]["call"] is call
    assert "name required" in result.failed[0]["body"]


def test_failed_bulk_lists_all_its_calls_and_rows(dest, app):
    app.script("PUT", "/endusers", (401, {"message": "bad token"}))
    calls = [identify("u1"), identify("u2"), track("u1")]
    result = dest.send_many(calls)
    [failure] = result.failed
    assert failure["call"] is None
    assert failure["calls"] == calls[:2]
    assert [row["externalId"] for row in failure["rows"]] == ["u1", "u2"]
    assert result.sent == 1 and result.failed_calls == 2


def test_connection_errors_are_retried_then_reported(sleeper):
    class Down:
        attempts = 0

        def request(self, method, url, body, headers):
            self.attempts += 1
            raise TransportError("connection refused")

    transport = Down()
    d = Destination(SETTINGS, transport, max_retries=2, sleep=sleeper)
    result = d.send(track("u"))
    assert transport.attempts == 3 and result.requests == 3
    assert result.failed[0]["status"] is None
    assert "connection refused" in result.failed[0]["error"]


def test_broken_app_becomes_500_and_is_retried(sleeper):
    state = {"n": 0}
    good = FakePlanhat()

    def flaky(environ, start_response):
        state["n"] += 1
        if state["n"] == 1:
            raise RuntimeError("kaboom")
        return good(environ, start_response)

    d = Destination(SETTINGS, WsgiTransport(flaky), sleep=sleeper)
    assert d.send(identify("u")).sent == 1
    assert state["n"] == 2


# ----------------------------------------------------------------------------- outcomes


def test_206_row_errors_are_skips_by_reason(dest, app):
    app.script(
        "PUT",
        "/endusers",
        (
            206,
            {
                "created": 1,
                "createdErrors": [{"index": 1, "reason": "no_company"}],
                "updated": 0,
                "updatedErrors": [{"index": 2, "reason": "ambiguous_email"}],
            },
        ),
    )
    calls = [identify("u0"), identify("u1"), identify("u2"), identify("u3")]
    result = dest.send_many(calls)
    assert result.skipped == {"no_company": 1, "ambiguous_email": 1}
    assert [(c["userId"], s.reason) for c, s in result.skips] == [
        ("u1", "no_company"),
        ("u2", "ambiguous_email"),
    ]
    assert result.sent == 2 and result.failed == []


def test_206_row_index_is_relative_to_its_chunk(app):
    d = Destination(SETTINGS, WsgiTransport(app), batch_size=2)
    app.script("PUT", "/endusers", (200, {"createdErrors": []}))
    app.script("PUT", "/endusers", (206, {"createdErrors": [{"index": 0, "reason": "no_company"}]}))
    result = d.send_many([identify(f"u{i}") for i in range(4)])
    assert [c["userId"] for c, _ in result.skips] == ["u2"]


def test_alias_conflict_and_unknown_user(dest, app):
    app.script("PUT", "/endusers/extid-a", (409, {"message": "externalId taken"}))
    app.script("PUT", "/endusers/extid-b", (404, {"message": "not found"}))
    result = dest.send_many(
        [
            {"type": "alias", "previousId": "a", "userId": "x"},
            {"type": "alias", "previousId": "b", "userId": "y"},
            {"type": "alias", "previousId": "c", "userId": "z"},
        ]
    )
    assert result.skipped == {"alias_conflict": 1, "unknown_user": 1}
    assert result.sent == 1 and result.failed == [] and result.requests == 3


def test_attach_404_is_an_unknown_user_skip(dest, app):
    """A group for a user who does not exist yet: not an error, not silently sent either."""
    app.script("PUT", "/endusers/extid-u9", (404, {"message": "no such end user"}))
    call = {"type": "group", "userId": "u9", "groupId": "g", "traits": {"name": "G"}}
    result = dest.send(call)
    assert app.routes() == [("PUT", "/companies"), ("PUT", "/endusers/extid-u9")]
    assert result.sent == 0 and result.failed == [] and result.skipped == {"unknown_user": 1}
    ((skipped_call, skip),) = result.skips
    assert skipped_call == call
    assert "/endusers/extid-u9" in skip.detail and "extid-g" in skip.detail


def test_attach_not_sent_when_company_upsert_failed(dest, app):
    app.script("PUT", "/companies", (403, {"permissionErrors": ["x"]}))
    result = dest.send({"type": "group", "userId": "u9", "groupId": "g", "traits": {"name": "G"}})
    assert app.routes() == [("PUT", "/companies")]
    assert result.failed_calls == 1


# ----------------------------------------------------------------------------- transports


def test_wsgi_environ_is_pep3333():
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        seen["body"] = environ["wsgi.input"].read()
        start_response("201 Created", [("X-A", "1"), ("X-A", "2")])
        return [b"he", b"llo"]

    resp = WsgiTransport(app).request(
        "post",
        "https://h.example:8443/a%20b/c?x=1&y=2",
        b'{"k":1}',
        {"Content-Type": "application/json", "X-Trace-Id": "t1"},
    )
    assert (resp.status, resp.content, resp.headers["X-A"]) == (201, b"hello", "1, 2")
    assert resp.header("x-a") == "1, 2"
    assert seen["REQUEST_METHOD"] == "POST"
    assert seen["PATH_INFO"] == "/a b/c"
    assert seen["QUERY_STRING"] == "x=1&y=2"
    assert (seen["SERVER_NAME"], seen["SERVER_PORT"]) == ("h.example", "8443")
    assert seen["HTTP_HOST"] == "h.example:8443"
    assert seen["wsgi.url_scheme"] == "https"
    assert seen["CONTENT_TYPE"] == "application/json"
    assert seen["CONTENT_LENGTH"] == "7"
    assert seen["HTTP_X_TRACE_ID"] == "t1"
    assert seen["REMOTE_ADDR"] == "127.0.0.1"
    assert seen["wsgi.multithread"] is True and seen["wsgi.version"] == (1, 0)
    assert seen["body"] == b'{"k":1}'


def test_http_transport_against_a_real_server(app):
    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        settings = Settings.from_dict(
            {
                "tenant_token": "tt",
                "api_token": "tok",
                "api_url": f"http://127.0.0.1:{port}",
                "analytics_url": f"http://127.0.0.1:{port}",
            }
        )
        with Destination(settings, HttpTransport(timeout=5)) as d:
            result = d.send_many([identify("u1"), track("u1")])
        assert result.sent == 2
        assert app.routes() == [("PUT", "/endusers"), ("POST", "/analytics/bulk/tt")]
    finally:
        server.shutdown()
        server.server_close()


def test_context_manager_closes_only_owned_transport():
    class Counting:
        closed = 0

        def request(self, *a):  # pragma: no cover - not called
            raise AssertionError

        def close(self):
            self.closed += 1

    given = Counting()
    with Destination(SETTINGS, given):
        pass
    assert given.closed == 0
    closed = []
    with Destination(SETTINGS) as d:
        assert isinstance(d.transport, HttpTransport)
        d.transport.session.close = lambda: closed.append(True)
    assert closed == [True]


def test_responses_record_final_attempts(dest, app):
    app.script("PUT", "/endusers", (502, {"e": 1}))
    result = dest.send_many([identify("u1"), track("u1")])
    assert [(req.path, resp.status) for req, resp in result.responses] == [
        ("/endusers", 200),
        ("/analytics/bulk/tt", 200),
    ]
    assert result.responses[0][1].json()["created"] == 1
    assert result.ok and result.requests == 3
