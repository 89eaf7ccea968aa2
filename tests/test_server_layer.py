"""Issue 9 §12 (what the HTTP layer answers itself is in the JSON error shape) and §13 (a
read timeout closes a connection that stalls). Raw sockets against a live server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest
from conftest import exchange

from mock_planhat import Config, create_app
from mock_planhat.server import Server

API = b"Authorization: Bearer mock-api-token\r\n"


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
    "content_length_not_a_number": (b"PUT /endusers HTTP/1.1\r\n" + API +
                                    b"Content-Length: 2x\r\n\r\n[]", 400, "Content-Length"),
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_server_layer_errors_are_json(live_server, case):
    data, status, field = LAYER_CASES[case]
    got, headers, body = _parse(exchange(live_server, data))
    assert got == status
    assert headers["content-type"] == "application/json"
    assert set(body) == {"error", "message", "field"} and body["field"] == field
    assert body["message"]


@pytest.mark.parametrize("path", ["/__admin//health", "/endusers//x", "/companies/"])
def test_server_layer_double_slash_is_json_404_not_a_redirect(live_server, path):
    raw = exchange(live_server, b"GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n"
                    % (path.encode(), API))
    status, headers, body = _parse(raw)
    assert status == 404 and "location" not in headers
    assert headers["content-type"] == "application/json"
    assert body["field"] == "path" and path in body["message"]


def test_server_layer_double_slash_in_process(client):
    response = client.get("/__admin//health")
    assert response.status_code == 404 and response.get_json()["field"] == "path"


@pytest.fixture
def quick_server():
    server = Server(create_app(Config()), "127.0.0.1", 0, read_timeout=0.5).start()
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
