"""The default server (waitress) answers a small write in its I/O loop's own thread, sends the
answer at once and keeps the journal entry and the decisions after it; its loop may keep
polling briefly after a read (``--busy-poll``). What a client must still see, over HTTP."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest

from mock_planhat import Config, create_app
from mock_planhat.server import Server

AUTH = {"Authorization": "Bearer mock-api-token", "Content-Type": "application/json"}


@pytest.fixture(params=[0.0, 0.0003], ids=["sleeping-loop", "busy-poll"])
def server(request):
    server = Server(create_app(Config()), "127.0.0.1", 0, busy_poll=request.param).start()
    assert server.name == "waitress"
    yield server
    server.stop()


def _connection(server) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)


def _call(conn, method: str, path: str, body=None) -> tuple[int, dict]:
    conn.request(method, path, json.dumps(body) if body is not None else None, AUTH)
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"null")


def test_each_answer_is_journaled_with_its_decisions_before_the_next_request(server):
    """The journal entry and the decisions of an answer sent first are there for the very
    next request, on another connection."""
    writer, reader = _connection(server), _connection(server)
    assert _call(writer, "PUT", "/companies", [{"externalId": "co", "name": "Co"}])[0] == 200
    for i in range(30):
        status, _ = _call(writer, "PUT", "/endusers", [
            {"externalId": f"u{i}", "email": f"u{i}@co.example", "companyId": "extid-co"}])
        assert status == 200
        status, page = _call(reader, "GET", "/__admin/requests?path=/endusers")
        assert status == 200
        last = page["requests"][-1]
        assert last["body"][0]["externalId"] == f"u{i}"
        assert [d["outcome"] for d in last["decisions"]] == ["created"]
        status, story = _call(reader, "GET", f"/__admin/explain?externalId=u{i}")
        assert status == 200 and story["history"], story
    assert len(_call(reader, "GET", "/__admin/requests?path=/endusers")[1]["requests"]) == 30


def test_pipelined_writes_are_answered_in_order(server):
    """Requests sent in one go on a kept-alive connection get their answers in order."""
    requests = b""
    for i in range(5):
        body = json.dumps([{"externalId": f"c{i}", "name": f"Co {i}"}]).encode()
        requests += (b"PUT /companies HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                     b"mock-api-token\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(requests)
        stream = sock.makefile("rb")
        for i in range(5):
            status = int(stream.readline().split()[1])
            length = 0
            while (line := stream.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            answer = json.loads(stream.read(length))
            assert status == 200, answer
            assert answer["insertsKeys"][0]["externalId"] == f"c{i}"


def test_a_fault_rules_delay_holds_only_its_own_request(server):
    """A fault rule that waits: its request is answered by a pool thread, so the wait does
    not hold the loop (nor other connections' writes) for its length."""
    admin = _connection(server)
    assert _call(admin, "POST", "/__admin/faults",
                 {"method": "PUT", "path": "/companies", "delay": 2, "count": 1})[0] == 201
    delayed: dict = {}

    def slow_write():
        start = time.monotonic()
        delayed["status"] = _call(_connection(server), "PUT", "/companies",
                                  [{"externalId": "slow", "name": "Slow"}])[0]
        delayed["took"] = time.monotonic() - start

    thread = threading.Thread(target=slow_write)
    thread.start()
    time.sleep(0.3)  # the slow write is waiting on its rule
    start = time.monotonic()
    status, _ = _call(_connection(server), "PUT", "/endusers",
                      [{"externalId": "quick", "email": "q@quick.example"}])
    took = time.monotonic() - start
    thread.join(10)
    assert status == 206 and took < 1.0, took  # 206: held without a company
    assert delayed == {"status": 200, "took": pytest.approx(2, abs=0.9)}


def test_busy_poll_spends_no_cpu_once_requests_stop():
    """The loop polls without sleeping only for its window after a read: an idle server
    (here with a 20 ms window, long past) uses no CPU."""
    server = Server(create_app(Config()), "127.0.0.1", 0, busy_poll=0.02).start()
    try:
        conn = _connection(server)
        for _ in range(20):
            assert _call(conn, "GET", "/companies")[0] == 200
        time.sleep(0.1)  # the window is over
        cpu = time.process_time()
        time.sleep(0.5)
        spent = time.process_time() - cpu
    finally:
        server.stop()
    assert spent < 0.1, f"{spent:.3f} s of CPU in 0.5 s idle"
    assert "busy poll 20000 µs" in server.description


def test_busy_poll_where_there_is_no_poll(monkeypatch):
    """Where ``select.poll`` does not exist (Windows), the busy-polling loop uses select(), as
    waitress's own loop does."""
    import select

    monkeypatch.delattr(select, "poll")
    server = Server(create_app(Config()), "127.0.0.1", 0, busy_poll=0.0003).start()
    try:
        conn = _connection(server)
        for i in range(5):
            assert _call(conn, "PUT", "/companies", [{"externalId": f"w{i}", "name": "W"}])[0] \
                == 200
        assert len(_call(conn, "GET", "/companies")[1]) == 5
    finally:
        server.stop()


def test_busy_poll_is_not_kept_up_by_a_request_trickling_in():
    """The window opens after a request is read, not after every read: a client sending a
    request's headers a byte at a time (a read each) kept the loop spinning for as long as
    it liked, a whole core for a few bytes a second (here a 100 ms window, a byte every
    10 ms for 2 s)."""
    server = Server(create_app(Config()), "127.0.0.1", 0, busy_poll=0.1).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.sendall(b"GET /__admin/health HTTP/1.1\r\nHost: x\r\nX-Pad: ")
            cpu = time.process_time()
            for _ in range(200):
                conn.sendall(b"a")
                time.sleep(0.01)
            spent = time.process_time() - cpu
            conn.sendall(b"\r\n\r\n")
            assert conn.recv(65536).startswith(b"HTTP/1.1 200 ")
    finally:
        server.stop()
    assert spent < 0.5, f"{spent:.3f} s of CPU in 2 s of a trickling request"


def test_the_journal_lists_entries_in_the_order_requests_were_taken_under_mixed_load(server):
    """Writes answered in the loop keep their entry after the answer while pool threads keep
    theirs at once: the journal still lists entries by id, and loses none."""
    def quick_writes(n: int) -> None:
        conn = _connection(server)
        for i in range(150):
            assert _call(conn, "PUT", "/companies", [{"externalId": f"q{n}-{i}", "name": "Q"}])[0] \
                == 200

    def pool_requests() -> None:  # DELETEs are answered by pool threads
        conn = _connection(server)
        for i in range(150):
            assert _call(conn, "DELETE", f"/companies/extid-none{i}")[0] == 404

    threads = [threading.Thread(target=quick_writes, args=(n,)) for n in range(2)]
    threads += [threading.Thread(target=pool_requests) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    status, page = _call(_connection(server), "GET", "/__admin/requests?limit=1000")
    ids = [entry["id"] for entry in page["requests"]]
    assert status == 200 and len(ids) == 600
    assert ids == sorted(ids)
