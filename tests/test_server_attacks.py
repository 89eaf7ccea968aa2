"""The default server (waitress) as a hostile client attacks it: raw sockets against a live
server. Each test names the attack; what the server must do is in its docstring."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest
from conftest import exchange

from mock_planhat import Config, create_app
from mock_planhat.server import Server

API = b"Authorization: Bearer mock-api-token\r\n"
HEALTH = b"GET /__admin/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@pytest.fixture
def server():
    """The default server with a short read timeout."""
    server = Server(create_app(Config()), "127.0.0.1", 0, read_timeout=0.5).start()
    assert server.name == "waitress"
    yield server
    server.stop()


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def _put(server, rows) -> None:
    body = json.dumps(rows).encode()
    raw = exchange(server, b"PUT /companies HTTP/1.1\r\nHost: x\r\n" + API +
                   b"Content-Type: application/json\r\nConnection: close\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(body), body), timeout=30)
    assert _status(raw) == 200, raw[:300]


def test_attack_client_that_never_reads_its_answers_is_cut_off(server):
    """Pipelined requests for large answers, none of them read: past waitress's high
    watermark the thread answering waits for the client, so a few such clients would hold
    every thread. After the read timeout without taking a byte the connection is closed
    (the thread freed), not kept for as long as the client likes."""
    blob = {f"k{k}": "x" * 60_000 for k in range(50)}
    _put(server, [{"externalId": f"big{i}", "name": f"Big {i}", "custom": blob}
                  for i in range(7)])  # GET /__admin/state: ~21 MB
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(b"GET /__admin/state HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
        time.sleep(3)  # the read timeout is 0.5 s
        answers, out = 0, b""
        while chunk := conn.recv(1 << 20):  # a socket timeout here: never closed
            out += chunk
        answers = out.count(b"HTTP/1.1 200 ")
    assert 1 <= answers < 3
    assert _status(exchange(server, HEALTH)) == 200


@pytest.fixture
def small_server():
    """The default server with a body limit of 1000 bytes and a short read timeout."""
    server = Server(create_app(Config(max_body=1000)), "127.0.0.1", 0, read_timeout=0.5).start()
    yield server
    server.stop()


CHUNKED = (b"PUT /endusers HTTP/1.1\r\nHost: x\r\n" + API +
           b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")


@pytest.mark.parametrize("size", [b"3e9", b"f" * 100])
def test_attack_chunk_size_over_the_limit_is_refused_at_once(small_server, size):
    """A chunk that says it is larger than the body's limit is a 413 when its size line
    comes, not a wait for bytes that will be refused (or a 408 once the client stalls)."""
    raw = exchange(small_server, CHUNKED + size + b"\r\n[]")
    assert _status(raw) == 413
    body = json.loads(raw.partition(b"\r\n\r\n")[2])
    assert body["error"] == "request_entity_too_large" and body["field"] == "body"


@pytest.mark.parametrize("head", [b"", b"2;ext=", b"0\r\nX-Trailer: "],
                         ids=["size_line", "chunk_extension", "trailer"])
def test_attack_endless_chunk_size_line_or_trailer_is_refused(server, head):
    """A chunk-size line (or its extension, or a trailer) that never ends was kept whole,
    however long: it is held to the header line's limit (64 KB), a 400 about the chunked
    body, the connection closed."""
    raw = exchange(server, CHUNKED + head + b"1" * 65_600)
    assert _status(raw) == 400
    body = json.loads(raw.partition(b"\r\n\r\n")[2])
    assert body["error"] == "invalid_body" and body["field"] == "Transfer-Encoding"
    assert "65536 bytes" in body["message"]


CONNECTION_LIMIT = 1000  # waitress's, as the server sets it


def _allow_open_files(count: int) -> None:
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(count, hard), hard))



def test_attack_server_with_file_descriptors_past_1024(tmp_path):
    """A process holding over 1024 open files (a big test suite, the fake in-process): the
    server's sockets get descriptors select() cannot watch; waitress's loop died on the first
    of them (ValueError) and the server answered nothing. It polls instead."""
    _allow_open_files(3 * CONNECTION_LIMIT)
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        server = Server(create_app(Config()), "127.0.0.1", 0, read_timeout=0.5).start()
        try:
            assert _status(exchange(server, HEALTH, timeout=10)) == 200
        finally:
            server.stop()
    finally:
        for fd in held:
            os.close(fd)


def test_attack_idle_connections_past_the_limit_do_not_lock_newcomers_out():
    """The connection limit's worth of idle connections, and more: a newcomer is answered at
    once (the connection idle longest is closed to make room), where waitress stopped
    accepting until one closed by itself."""
    _allow_open_files(3 * CONNECTION_LIMIT)  # both ends of each connection, and spare
    server = Server(create_app(Config()), "127.0.0.1", 0).start()  # read timeout: 30 s
    idle = []
    try:
        for _ in range(CONNECTION_LIMIT + 20):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        # a keep-alive connection that was used, then idles
        idle[-1].sendall(b"GET /__admin/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(idle[-1].recv(65536)) == 200
        for _ in range(3):
            assert _status(exchange(server, HEALTH, timeout=10)) == 200
        assert idle[0].recv(100) == b""  # the one idle longest was closed
    finally:
        for conn in idle:
            conn.close()
        server.stop()


def test_attack_bare_lf_line_ends_are_a_400_not_a_hang():
    """Lines ended by a bare LF (RFC 9112 asks for CRLF): waitress looked for CRLF CRLF only
    and kept waiting until the read timeout (30 s), answering nothing. A 400 naming the
    headers, at once. (werkzeug's server accepts such lines.)"""
    server = Server(create_app(Config()), "127.0.0.1", 0).start()  # read timeout: 30 s
    try:
        raw = exchange(server, b"GET /__admin/health HTTP/1.1\nHost: x\n\n", timeout=10)
    finally:
        server.stop()
    assert _status(raw) == 400
    body = json.loads(raw.partition(b"\r\n\r\n")[2])
    assert body["field"] == "headers" and "bare LF" in body["message"]


def test_attack_at_the_connection_limit_idle_connections_stay_while_nobody_waits():
    """At the limit, an idle connection is closed only to let a newcomer in: traffic on the
    open connections (each request is a turn of the I/O loop) closes none of them."""
    _allow_open_files(3 * CONNECTION_LIMIT)
    server = Server(create_app(Config()), "127.0.0.1", 0).start()  # read timeout: 30 s
    conns = []
    try:
        for _ in range(CONNECTION_LIMIT - 2):  # with the listener and the trigger: the limit
            conns.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        busy = conns[-1]
        for _ in range(30):
            busy.sendall(b"GET /__admin/health HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while not answer.endswith(b"}\n"):
                answer += busy.recv(65536)
            assert _status(answer) == 200
        conns[0].settimeout(0.5)
        with pytest.raises(socket.timeout):  # still open: b"" would mean closed
            conns[0].recv(100)
    finally:
        for conn in conns:
            conn.close()
        server.stop()


def test_attack_segment_batch_retried_by_a_fault_rule_holds_no_other_connection():
    """A small Segment batch while a fault rule (status only, so writes stay quick) answers
    503 to the end users' paths: the translator retries each in-process request with a sleep
    (up to 5 times), seconds for the batch. Answered in the I/O loop's thread, every other
    connection waited for it; it is a pool thread's wait, the health check answered
    meanwhile."""
    server = Server(create_app(Config()), "127.0.0.1", 0).start()
    try:
        rule = json.dumps({"path": "/endusers*", "status": 503, "count": 1_000_000}).encode()
        assert _status(exchange(server, b"POST /__admin/faults HTTP/1.1\r\nHost: x\r\n"
                                b"Content-Type: application/json\r\nConnection: close\r\n"
                                b"Content-Length: %d\r\n\r\n%s" % (len(rule), rule))) == 201
        calls = [{"type": "group", "userId": f"u{i}", "groupId": f"g{i}",
                  "traits": {"name": f"G{i}"}} for i in range(60)]  # an attach each: ~4 s
        body = json.dumps({"batch": calls}).encode()
        batch: dict = {}

        def send_batch():
            batch["raw"] = exchange(server, b"POST /v1/batch HTTP/1.1\r\nHost: x\r\n"
                                    b"Authorization: Basic bW9jay10ZW5hbnQtdG9rZW46\r\n"
                                    b"Content-Type: application/json\r\nConnection: close\r\n"
                                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body),
                                    timeout=60)

        thread = threading.Thread(target=send_batch)
        thread.start()
        time.sleep(0.3)  # the batch is being applied
        assert _status(exchange(server, HEALTH, timeout=60)) == 200
        retrying = thread.is_alive()
        thread.join(60)
    finally:
        server.stop()
    assert retrying, "the health check waited for the Segment batch's retries"
    assert _status(batch["raw"]) == 200
