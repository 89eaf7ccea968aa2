"""Issue 9 §12 (what the HTTP layer answers itself is in the JSON error shape) and §13 (a
read timeout closes a connection that stalls), on both servers (issue 14: waitress, the
default, and werkzeug, still selectable); the default and its fallback. Raw sockets against a
live server."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time

import pytest
from conftest import exchange

from mock_planhat import Config, create_app
from mock_planhat.server import Server

API = b"Authorization: Bearer mock-api-token\r\n"
SERVERS = ["waitress", "werkzeug"]


@pytest.fixture(params=SERVERS)
def any_server(request):
    """A live server of each kind (default config)."""
    server = Server(create_app(Config()), "127.0.0.1", 0, server=request.param).start()
    assert server.name == request.param
    yield server
    server.stop()


def _parse(raw: bytes) -> tuple[int, dict, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, json.loads(body)


LAYER_CASES = {
    "bad_request_line": (b"GARBAGE\r\n\r\n", 400, "request line"),
    "bad_version": (b"GET /endusers HTTP/1.x\r\n\r\n", 400, "request line"),
    "uri_too_long": (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, "path"),
    "header_line_too_long": (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431,
                             "headers"),
    "too_many_headers": (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(120))
                         + b"\r\n", 431, "headers"),
    "http_2": (b"GET /endusers HTTP/2.0\r\n\r\n", 505, "HTTP version"),
    "content_length_twice": (b"PUT /endusers HTTP/1.1\r\n" + API + b"Content-Length: 2\r\n"
                             b"Content-Length: 3\r\n\r\n[]", 400, "Content-Length"),
    "content_length_negative": (b"PUT /endusers HTTP/1.1\r\n" + API +
                                b"Content-Length: -5\r\n\r\n[]", 400, "Content-Length"),
    "content_length_with_transfer_encoding": (
        b"PUT /endusers HTTP/1.1\r\n" + API + b"Content-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n0\r\n\r\n"
        b"GET /__admin/health HTTP/1.1\r\n\r\n", 400, "Content-Length"),
    "content_length_not_a_number": (b"PUT /endusers HTTP/1.1\r\n" + API +
                                    b"Content-Length: 2x\r\n\r\n[]", 400, "Content-Length"),
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_server_layer_errors_are_json(any_server, case):
    data, status, field = LAYER_CASES[case]
    got, headers, body = _parse(exchange(any_server, data))
    assert got == status
    assert headers["content-type"] == "application/json"
    assert set(body) == {"error", "message", "field"} and body["field"] == field
    assert body["message"]


@pytest.mark.parametrize("path", ["/__admin//health", "/endusers//x", "/companies/"])
def test_server_layer_double_slash_is_json_404_not_a_redirect(any_server, path):
    raw = exchange(any_server, b"GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n"
                    % (path.encode(), API))
    status, headers, body = _parse(raw)
    assert status == 404 and "location" not in headers
    assert headers["content-type"] == "application/json"
    assert body["field"] == "path" and path in body["message"]


def test_server_layer_double_slash_in_process(client):
    response = client.get("/__admin//health")
    assert response.status_code == 404 and response.get_json()["field"] == "path"


@pytest.fixture(params=SERVERS)
def quick_server(request):
    server = Server(create_app(Config()), "127.0.0.1", 0, read_timeout=0.5,
                    server=request.param).start()
    yield server
    server.stop()


def test_stalled_upload_read_timeout_headers(quick_server):
    """Headers begun and never finished: the connection is closed after the timeout."""
    started = time.monotonic()
    raw = exchange(quick_server, b"POST /endusers HTTP/1.1\r\nHost: x\r\n", timeout=10)
    assert time.monotonic() - started < 5
    assert raw == b""  # nothing was asked yet; closed


def test_stalled_upload_read_timeout_body(quick_server):
    """Headers sent, the body promised and stalled: 408 in the JSON shape, then closed."""
    started = time.monotonic()
    raw = exchange(quick_server, b"PUT /endusers HTTP/1.1\r\nHost: x\r\n" + API +
                    b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{\"a\":",
                    timeout=10)
    assert time.monotonic() - started < 5
    status, headers, body = _parse(raw)
    assert status == 408 and body["error"] == "request_timeout" and body["field"] == "body"
    # said once (werkzeug's answer carried it twice: the app's header and the server's)
    assert raw.partition(b"\r\n\r\n")[0].lower().count(b"\r\nconnection: close") == 1
    # the server is still there for everyone else
    raw = exchange(quick_server, b"GET /__admin/health HTTP/1.1\r\nHost: x\r\n"
                    b"Connection: close\r\n\r\n")
    assert _parse(raw)[0] == 200


def test_stalled_upload_many_stalled_clients_do_not_pin_the_server(quick_server):
    stalled = [socket.create_connection(("127.0.0.1", quick_server.port)) for _ in range(50)]
    try:
        for conn in stalled:
            conn.sendall(b"POST /endusers HTTP/1.1\r\nContent-Length: 10\r\n\r\n")
        time.sleep(1.5)
        for conn in stalled:  # every one was answered and closed by the server
            conn.settimeout(5)
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
            assert data.startswith(b"HTTP/1.1 4"), data[:80]
    finally:
        for conn in stalled:
            conn.close()


def test_stalled_upload_read_timeout_flag(tmp_path):
    """``--read-timeout`` reaches the server; ``--help`` lists it."""
    help_text = subprocess.run([sys.executable, "-m", "mock_planhat", "serve", "--help"],
                               capture_output=True, text=True, check=True).stdout
    assert "--read-timeout" in help_text
    proc = subprocess.Popen([sys.executable, "-m", "mock_planhat", "--port", "0", "--quiet",
                             "--read-timeout", "0.3"], stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split()[-1]
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"GET /endusers HTTP/1.1\r\n")
            started = time.monotonic()
            assert conn.recv(100) == b""
            assert time.monotonic() - started < 5
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    bad = subprocess.run([sys.executable, "-m", "mock_planhat", "--read-timeout", "soon"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--read-timeout" in bad.stderr


@pytest.fixture(params=SERVERS)
def small_server(request):
    server = Server(create_app(Config(max_body=1000)), "127.0.0.1", 0,
                    server=request.param).start()
    yield server
    server.stop()


def _chunks(body: bytes, size: int) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                    for i in range(0, len(body), size)) + b"0\r\n\r\n"


def _answer(server, data: bytes) -> bytes:
    """Send ``data``, read one answer (up to its Content-Length; the server may keep the
    connection open)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(data)
        out = b""
        while b"\r\n\r\n" not in out or len(out.partition(b"\r\n\r\n")[2]) < int(
                _parse_length(out)):
            chunk = conn.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def _parse_length(raw: bytes) -> int:
    head = raw.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
    return next((int(line.split(":", 1)[1]) for line in head.split("\r\n")
                 if line.startswith("content-length:")), 0)


def _put_endusers(head: bytes, body: bytes) -> bytes:
    return (b"PUT /endusers HTTP/1.1\r\nHost: x\r\n" + API +
            b"Content-Type: application/json\r\n" + head + b"\r\n" + body)


def test_body_limits_hold_for_sized_and_chunked_bodies(small_server):
    """max_body (1000 here) is the body's limit however it is sent: a chunked body over it is
    a 413 — also in 1-byte chunks, whose encoding is 6 times the body — and one at it is
    taken; a Content-Length over it is answered before any body is sent."""
    rows = json.dumps([{"externalId": f"u{i}", "email": f"u{i}@x.com"}
                       for i in range(40)]).encode()
    assert len(rows) > 1000
    for size in (1, 100, 4096):
        status, _, body = _parse(_answer(small_server, _put_endusers(
            b"Transfer-Encoding: chunked\r\n", _chunks(rows, size))))
        assert status == 413 and body["error"] == "request_entity_too_large", size
        assert body["field"] == "body" and "1000" in body["message"]
    fits = json.dumps([{"externalId": "u1", "email": "u1@x.com", "name": "x" * 900}]).encode()
    assert 900 < len(fits) <= 1000
    status, _, _ = _parse(exchange(small_server, _put_endusers(
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n", _chunks(fits, 7))))
    assert status in (200, 206)
    # no body follows: the answer comes without waiting for it (or for the read timeout)
    status, _, body = _parse(_answer(small_server, _put_endusers(b"Content-Length: 5000000\r\n",
                                                                 b"")))
    assert status == 413 and body["field"] == "body"
    if small_server.name == "waitress":  # (werkzeug's http.server sends 100 Continue first)
        # asking first (curl does, for bodies over 1 KB): the 413, not an invitation to send
        raw = _answer(small_server, _put_endusers(b"Content-Length: 5000000\r\n"
                                                  b"Expect: 100-continue\r\n", b""))
        assert raw.startswith(b"HTTP/1.1 413"), raw[:60]
    state = small_server.app.test_client().get("/__admin/state").get_data(as_text=True)
    assert '"u1"' in state and '"u39"' not in state  # the fitting body only


BODY_REFUSALS = {  # what the server refuses for its body -> (request, status, answer's error)
    "sized_413": (_put_endusers(b"Content-Length: 5000\r\n", b""), 413,
                  "request_entity_too_large"),
    "chunked_413": (_put_endusers(b"Transfer-Encoding: chunked\r\n", _chunks(b"[" + b" " * 2000
                                                                            + b"]", 500)),
                    413, "request_entity_too_large"),
    "broken_chunk": (_put_endusers(b"Transfer-Encoding: chunked\r\n", b"zz\r\n[]\r\n0\r\n\r\n"),
                     400, "invalid_body"),
    "stalled_sized": (_put_endusers(b"Content-Length: 50\r\n", b"[{"), 408, "request_timeout"),
    "stalled_chunked": (_put_endusers(b"Transfer-Encoding: chunked\r\n", b"9\r\n[{"), 408,
                        "request_timeout"),
    "tenant_in_path": (b"POST /analytics/mock-tenant-token HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: 5000\r\n\r\n", 413, "request_entity_too_large"),
}


@pytest.fixture(params=SERVERS)
def refusing_server(request):
    server = Server(create_app(Config(max_body=1000)), "127.0.0.1", 0, read_timeout=0.5,
                    server=request.param).start()
    yield server
    server.stop()


@pytest.mark.parametrize("case", sorted(BODY_REFUSALS))
def test_body_refusals_are_journaled_on_both_servers(refusing_server, case):
    """A request refused for its body (over the limit, sized or chunked; a broken chunk; a
    stalled body) is journaled like any answer, the same on both servers: method, path, its
    tenant (by the Authorization header or the path), the status, the JSON answer, no body.
    (On werkzeug the app read the body and answered; waitress refuses before the app reads.)"""
    data, status, error = BODY_REFUSALS[case]
    raw = exchange(refusing_server, data, timeout=10)
    got, headers, answer = _parse(raw)
    assert (got, answer["error"]) == (status, error), raw[:300]
    assert headers["connection"] == "close"
    entries = refusing_server.app.test_client().get("/__admin/requests").get_json()["requests"]
    assert len(entries) == 1, entries
    entry = entries[0]
    method, _, path = data.partition(b" HTTP/")[0].decode().partition(" ")
    assert (entry["method"], entry["path"], entry["tenant"], entry["status"], entry["body"]) \
        == (method, path, "mock-tenant-token", status, None)
    assert entry["response"]["body"] == answer
    assert entry["response"]["headers"]["Content-Type"] == "application/json"


def test_keep_alive_on_the_default_server(live_server):
    """One connection carries many requests (werkzeug's server closes after each)."""
    assert live_server.name == "waitress"
    conn = http.client.HTTPConnection("127.0.0.1", live_server.port, timeout=10)
    try:
        conn.request("GET", "/__admin/health")
        first = conn.getresponse()
        assert first.status == 200 and first.read()
        sock = conn.sock
        for i in range(5):
            conn.request("PUT", "/endusers", json.dumps([{"externalId": f"k{i}"}]),
                         {"Authorization": "Bearer mock-api-token",
                          "Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status in (200, 206) and json.loads(response.read())
            assert conn.sock is sock  # the same socket: not reopened
            assert response.getheader("Connection") is None
    finally:
        conn.close()


def _serve(*args, env=None):
    proc = subprocess.Popen([sys.executable, "-m", "mock_planhat", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    banner = [proc.stdout.readline() for _ in range(5)]
    return proc, banner


def _stop(proc) -> tuple[int, str, str]:
    proc.terminate()
    out, err = proc.communicate(timeout=10)
    return proc.returncode, out, err


@pytest.mark.parametrize("args, env, name", [
    ((), None, "waitress"),
    (("--server", "werkzeug"), None, "werkzeug"),
    ((), {"MOCK_PLANHAT_SERVER": "werkzeug"}, "werkzeug"),
    (("--server", "waitress"), {"MOCK_PLANHAT_SERVER": "werkzeug"}, "waitress"),
])
def test_server_flag_and_variable_choose_the_server_and_the_banner_says_which(args, env, name):
    proc, banner = _serve(*args, env=env)
    try:
        url = banner[0].split()[-1]
        assert banner[4].startswith(f"  server:       {name} "), banner
        raw = exchange(_Port(url), b"GET / HTTP/2.0\r\n\r\n")
        assert _parse(raw)[0] == 505
        assert requests_get(url + "/__admin/health") == 200
    finally:
        code, _, err = _stop(proc)
    assert code == 0 and "Traceback" not in err


class _Port:
    def __init__(self, url: str):
        self.port = int(url.rsplit(":", 1)[1])


def requests_get(url: str) -> int:
    import requests

    return requests.get(url, timeout=10).status_code


def test_without_waitress_the_fake_falls_back_to_werkzeug_and_says_so(tmp_path):
    """waitress missing (here: a module of that name that fails to import, first on the path):
    the default falls back to werkzeug, the banner says so, the server layer still answers
    JSON; asking for waitress by name is a clean error."""
    (tmp_path / "waitress").mkdir()
    (tmp_path / "waitress" / "__init__.py").write_text(
        "raise ImportError('no module named waitress (simulated)')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    proc, banner = _serve(env=env)
    try:
        url = banner[0].split()[-1]
        assert banner[4].startswith("  server:       werkzeug "), banner
        note = proc.stdout.readline()
        assert note.startswith("  note:") and "waitress" in note and "pip install" in note
        status, _, body = _parse(exchange(_Port(url), b"GARBAGE\r\n\r\n"))
        assert status == 400 and body["field"] == "request line"
        assert requests_get(url + "/__admin/health") == 200
    finally:
        code, _, err = _stop(proc)
    assert code == 0 and "Traceback" not in err
    named = subprocess.run([sys.executable, "-m", "mock_planhat", "--port", "0", "--server",
                            "waitress"], capture_output=True, text=True, timeout=30,
                           env={**os.environ, **env})
    assert named.returncode == 2 and "Traceback" not in named.stderr
    assert "waitress cannot be imported" in named.stderr and "--server werkzeug" in named.stderr
