"""The default server: waitress, with the fake's rules for what the HTTP layer answers itself.

waitress reads each request (headers and body) in one I/O loop and hands complete requests to
a pool of threads, so a client that stalls holds no thread. What is changed here, in its own
extension points (the channel's parser, error task and task classes, and the server's
maintenance pass):

* every answer of the HTTP layer is the fake's JSON error (``server.layer_error``), where
  waitress writes plain text;
* the limits of the werkzeug server stay: a request line or a header line over 64 KB (414,
  431), over 100 header lines (431), an HTTP version other than 1.0/1.1 (505), a body over
  ``max_body`` — by its ``Content-Length`` before it is read, or chunked as it arrives (413);
* the read timeout is waitress's channel timeout, checked often enough for short timeouts,
  and a body that stalls after its headers gets the 408 the werkzeug server gives;
* a refusal about the body (413, a broken or unsupported transfer coding, the 408) is
  answered by the fake's app (``errors.REFUSED_BODY``), as on werkzeug, where the app read the
  body and answered these itself: so the journal keeps them like every other answer;
* an access line per request unless quiet;
* a small write the app says is quick (``Fake.quick``: no admin path, no Segment route, no
  fault rule with a delay) is answered in the I/O loop's own thread, right after it is read,
  and its answer sent at once in one ``send``: no hand-over to a pool thread and back (two
  thread switches and a trigger pull), which cost as much as the app's own work. The app's
  bookkeeping that the answer does not need (the journal entry, the decisions, a recording's
  item) runs after the answer is sent (``journal.AFTER_ANSWER``), still before the loop reads
  the next request. Everything else (reads, admin, large or chunked bodies, delays) goes to
  the pool as before;
* with ``busy_poll`` (the CLI's ``--busy-poll``), the loop keeps polling for that long after
  a read that completed a request before it sleeps (``_TcpServer.run``).

Imported only when the server starts (``Server``), never by ``create_app``.
"""

from __future__ import annotations

import copy
import io
import logging
import select
import sys
import threading
import time
from http import HTTPStatus

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher, WSGITask
from waitress.utilities import (
    BadRequest,
    Error,
    RequestEntityTooLarge,
    RequestHeaderFieldsTooLarge,
)

from .errors import READ_TIMEOUT_MESSAGE, REFUSED_BODY, WHOLE_BODY
from .journal import AFTER_ANSWER
from .server import (
    _BOTH_LENGTHS,
    MAX_HEADERS,
    MAX_LINE,
    THREADS,
    _version,
    layer_error,
    layer_error_fields,
)

IDENT = "mock-planhat"
RECV_BYTES = 64 * 1024
NO_TIMEOUT = 10 ** 9  # seconds: "no read timeout" for waitress, which needs a number
INLINE_BODY = 16 * 1024  # the largest body of a request answered in the I/O loop's thread
INLINE_METHODS = ("POST", "PUT")  # writes: their answers are small (a read's may be large)
_NEVER = 1 << 62  # bytes: a waitress threshold that is never reached
_log_errors = logging.getLogger("mock_planhat")


class _LayerError(Error):
    """An answer of the HTTP layer decided here: status, message, field."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.code, self.reason = status, HTTPStatus(status).phrase
        self.field = field


# waitress's 400 messages -> the field they are about (first match; else the request line)
_BAD_REQUEST_FIELDS = (("content-length", "Content-Length"), ("chunk", "Transfer-Encoding"),
                       ("header", "headers"))


def _describe(request, max_body: int, max_header: int) -> tuple[int, str | None, str,
                                                                  str | None]:
    """(status, error code or None for the status's own, message, field) of a request that
    waitress or this module refused."""
    error = request.error
    if isinstance(error, _LayerError):
        return error.code, None, error.body, error.field
    if isinstance(error, RequestEntityTooLarge):
        return 413, None, f"over the limit of {max_body} bytes", "body"
    if isinstance(error, RequestHeaderFieldsTooLarge):
        return 431, None, f"the request line and headers are over {max_header} bytes", "headers"
    if isinstance(error, BadRequest):
        text = str(error.body)
        field = next((f for word, f in _BAD_REQUEST_FIELDS if word in text.lower()),
                     "request line")
        if field == "Content-Length":
            value = request.headers.get("CONTENT_LENGTH", "")
            return 400, None, f"{value!r} is not one body length", field
        if field == "Transfer-Encoding":  # a broken chunk: as the app words a broken body
            return 400, "invalid_body", (f"the chunked body is malformed ({text})"), field
        return 400, None, text, field
    if error.code == 501:
        return 501, None, f"{error.body} (only chunked)", "Transfer-Encoding"
    return error.code, None, str(error.body), None


class _Parser(HTTPRequestParser):
    """waitress's parser, with the werkzeug server's limits (see the module's docstring)."""

    max_body = 0  # set per server
    layer_error = None

    def parse_header(self, header_plus):
        super().parse_header(header_plus)
        self.layer_error = self._check(header_plus)

    def _check(self, header_plus: bytes) -> _LayerError | None:
        if len(self.first_line) > MAX_LINE:
            return _LayerError(414, f"the request line is over {MAX_LINE} bytes", "path")
        lines = header_plus.count(b"\r\n")  # as many as split() gives after the first line
        if lines > MAX_HEADERS:
            return _LayerError(431, f"{lines} header lines; at most {MAX_HEADERS}", "headers")
        if len(header_plus) > MAX_LINE and any(
                len(line) > MAX_LINE for line in header_plus.split(b"\r\n")[1:]):
            return _LayerError(431, f"a header line is over {MAX_LINE} bytes", "headers")
        if not self.version:
            return _LayerError(400, "no HTTP version (HTTP/0.9 is not supported)")
        if self.version not in ("1.0", "1.1"):
            return _LayerError(505, f"HTTP/{self.version} is not supported; send HTTP/1.1")
        if self.chunked and "CONTENT_LENGTH" in self.headers:
            return _LayerError(400, _BOTH_LENGTHS, "Content-Length")
        if not self.chunked and self.content_length > self.max_body:
            return _LayerError(413, f"over the limit of {self.max_body} bytes", "body")
        return None

    @staticmethod
    def _chunked_lines_error(receiver) -> BadRequest | None:
        """waitress keeps a chunk-size line (with its extensions) and the trailer until their
        line ends come, without a bound (and joins them anew for every read): each is held to
        the header line's limit."""
        if len(receiver.control_line) > MAX_LINE:
            return BadRequest(f"a chunk-size line is over {MAX_LINE} bytes")
        if len(receiver.trailer) > MAX_LINE:
            return BadRequest(f"the trailer after the last chunk is over {MAX_LINE} bytes")
        return None

    def received(self, data):
        consumed = super().received(data)
        if self.error is None and not self.completed and self.body_rcv is None \
                and b"\n\n" in self.header_plus:
            # lines ended by a bare LF: waitress looks for CRLF CRLF only, and waited for
            # more headers until the read timeout
            self.parse_header(b"GET / HTTP/1.0\r\n")
            self.error, self.completed = _LayerError(
                400, "a header line ends with a bare LF; end each line with CRLF",
                "headers"), True
        if self.error is None:
            if self.layer_error is not None:
                self.error, self.completed = self.layer_error, True
            elif self.chunked and self.body_rcv is not None \
                    and len(self.body_rcv) + self.body_rcv.chunk_remainder > self.max_body:
                # waitress counts the chunked encoding's own bytes; the limit is the body's,
                # with the chunk being read counted whole: a chunk size over the limit is
                # refused at once, not after its bytes came (or the read timeout)
                self.error, self.completed = RequestEntityTooLarge("chunked body"), True
            elif self.chunked and self.body_rcv is not None and not self.completed:
                self.error = self._chunked_lines_error(self.body_rcv)
                if self.error is not None:
                    self.completed = True
        if self.error is not None:
            # refused already: no "100 Continue" invites a body that will not be read (the
            # channel would send one, and reopen the request for the body)
            self.expect_continue = False
        return consumed


def _log(task, status: str | int) -> None:
    line = task.request.first_line.decode("latin-1") if getattr(task.request, "first_line",
                                                                  None) else "-"
    code = str(status).split(" ", 1)[0]
    sys.stderr.write(f'{task.channel.addr[0]} - "{line}" {code} '
                     f'{task.content_bytes_written or "-"}\n')


class _JsonErrorTask(ErrorTask):
    """waitress's error answer, in the fake's JSON error shape."""

    def execute(self):
        server = self.channel.server
        status, error, message, field = _describe(self.request, server.max_body,
                                                  self.channel.adj.max_request_header_size)
        body = layer_error(status, message, field, error)
        self.status = f"{status} {HTTPStatus(status).phrase}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _LoggedErrorTask(_JsonErrorTask):
    def finish(self):
        super().finish()
        _log(self, self.status)


class _Task(WSGITask):
    """waitress's WSGI task. Its environ carries a small body as bytes, and, answered in the
    loop's thread, the list of the app's work for after the answer is sent."""

    def get_environment(self):
        environ = super().get_environment()
        later = self.channel.after_answer
        if later is not None:
            environ[AFTER_ANSWER] = later
        request = self.request
        if not request.chunked and 0 < request.content_length <= INLINE_BODY:
            # a small body is in memory already: handed over as bytes (errors.WHOLE_BODY)
            data = environ[WHOLE_BODY] = environ["wsgi.input"].read()
            environ["wsgi.input"] = io.BytesIO(data)
        return environ

    def write(self, data):
        super().write(data)
        channel = self.channel
        if channel.after_answer is not None and self.content_length is not None \
                and self.content_bytes_written >= self.content_length:
            # answered in the loop's thread, the whole answer is written (corked): sent now,
            # so what is left of the request's own work runs while the client reads it
            channel.send_now()


class _LoggedTask(_Task):
    def finish(self):
        super().finish()
        _log(self, self.status)


# what a refusal is about, when the app gives it (see _RefusedBodyTask)
_BODY_FIELDS = ("body", "Transfer-Encoding")


class _RefusedBodyTask(WSGITask):
    """A request refused for its body, answered by the app with the answer the server decided
    (``errors.REFUSED_BODY``), without the body, and the connection closed after it (the rest
    of the body is not read)."""

    answer: dict = {}
    quiet = True

    def get_environment(self):
        environ = super().get_environment()
        environ[REFUSED_BODY] = self.answer
        environ["wsgi.input"] = io.BytesIO()
        environ.pop("CONTENT_LENGTH", None)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return environ

    def execute(self):
        self.set_close_on_finish()
        super().execute()

    def finish(self):
        super().finish()
        if not self.quiet:
            _log(self, self.status)


def _error_task(channel, request):
    """The task that answers a refused request: the app's, for a refusal about the body (the
    fake's app only), else the JSON error written here."""
    server = channel.server
    if server.app_answers:
        status, error, message, field = _describe(request, server.max_body,
                                                  channel.adj.max_request_header_size)
        if field in _BODY_FIELDS:
            task = _RefusedBodyTask(channel, request)
            task.answer = {"status": status, **layer_error_fields(status, message, field,
                                                                  error)}
            task.quiet = server.quiet
            return task
    return (_JsonErrorTask if server.quiet else _LoggedErrorTask)(channel, request)


def _waiting(sock) -> bool:
    """Whether a connection waits on the listening socket to be accepted."""
    if hasattr(select, "poll"):  # select() cannot watch a descriptor past 1024
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])


class _Channel(HTTPChannel):
    """waitress's channel, answering a quick request in the I/O loop's own thread (see the
    module's docstring). ``_Dispatcher`` decides; the answer is given here once the read that
    completed the request returns (the channel's request lock is held during the read)."""

    reading = False  # in handle_read: a request completed now may be answered here
    answer_here = False  # the request waiting to be answered after the read
    after_answer = None  # while answering here: the app's work for after the answer is sent
    hand_over = False  # a pipelined request queued while answering here, for the pool

    def handle_read(self):
        self.reading = True
        try:
            super().handle_read()
        finally:
            self.reading = False
        if self.answer_here or self.requests:
            # a request came whole (read only with none pending): the busy poll's window
            # opens. Not on every read: a request trickling in a byte at a time kept the loop
            # spinning as long as its client liked
            self.server.requests_read += 1
        if self.answer_here:
            self.answer_here = False
            self._answer()

    def _answer(self):
        later: list = []
        adj, self.adj = self.adj, self.server.corked
        self.after_answer = later
        try:
            self.service()
        finally:
            self.adj, self.after_answer = adj, None
        self.send_now()  # what the task did not send (an answer without a length)
        for work in later:
            try:
                work()
            except Exception:  # a bug of ours: the answer is sent; say it, keep serving
                _log_errors.exception("the bookkeeping after an answer failed")
        if self.hand_over:
            # the next pipelined request, handed to the pool only now: a pool thread that took
            # it at once could run while this channel still had the corked adjustments and
            # the list above (its own bookkeeping appended there, after the loop ran it: lost)
            self.hand_over = False
            ThreadedTaskDispatcher.add_task(self.server.task_dispatcher, self)

    def send_now(self):
        """Send what is written (the status line, headers and body in one send, where waitress
        sends them apart). A pipelined request may already be in a pool thread, writing under
        this lock."""
        if self.total_outbufs_len:
            with self.outbuf_lock:
                self._flush_exception(self._flush_some)


class _Dispatcher(ThreadedTaskDispatcher):
    """waitress's pool of threads; a quick request completed by the loop's read is left for
    the channel to answer there instead."""

    def add_task(self, channel):
        if threading.get_ident() == channel.server.loop_thread:
            if channel.reading and channel.server.quick(channel.requests[0]):
                channel.answer_here = True
                return
            if channel.after_answer is not None:  # see _Channel._answer
                channel.hand_over = True
                return
        # a pool thread that finished a request, with the next one pipelined: for the pool,
        # even while the loop reads this channel (its `reading` is the loop's, not this
        # thread's: an answer left for the loop then would be given by nobody)
        super().add_task(channel)


class _TcpServer(TcpWSGIServer):
    max_body = 0  # set per server
    quiet = True
    app_answers = False  # the fake's app: it gives the refusals about the body
    fake = None  # the fake's app's Fake: it says which requests are quick
    corked = None  # the adjustments a request answered in the loop's thread is written with
    loop_thread = None  # the I/O loop's thread's ident

    def quick(self, request) -> bool:
        """Whether a complete request is answered in the I/O loop's thread."""
        return (self.fake is not None and request.error is None
                and request.command in INLINE_METHODS and not request.chunked
                and request.content_length <= INLINE_BODY
                and self.fake.quick(request.path))

    def pull_trigger(self):
        """Wake the I/O loop; from the loop's own thread (an answer given there) there is
        nothing to wake: it looks at every connection again when the answer is done."""
        if threading.get_ident() != self.loop_thread:
            super().pull_trigger()

    busy_poll = 0.0  # seconds the loop keeps polling without sleeping after a request
    requests_read = 0  # the reads that completed a request

    def run(self):
        """waitress's I/O loop; with ``busy_poll``, after each read that completed a request
        it polls without sleeping for that long before it sleeps in poll() again (see
        ``WaitressServer``)."""
        self.loop_thread = threading.get_ident()
        if not self.busy_poll:
            super().run()
            return
        # as waitress's loop: poll() where there is one (not on Windows), else select()
        poll = wasyncore.poll2 if hasattr(select, "poll") else wasyncore.poll
        sockets, timeout = self._map, self.adj.asyncore_loop_timeout
        window, until, seen = self.busy_poll, 0.0, 0
        pool = self.task_dispatcher
        try:
            while sockets:
                # not while a pool thread answers: polling would take the GIL from it (it
                # pulls the trigger when its answer is ready)
                busy = not pool.active_count and time.perf_counter() < until
                poll(0.0 if busy else timeout, sockets)
                if self.requests_read != seen:
                    seen = self.requests_read
                    until = time.perf_counter() + window
        except (SystemExit, KeyboardInterrupt):  # as waitress's own run()
            self.task_dispatcher.shutdown()

    def readable(self):
        """At the connection limit waitress stops accepting until a connection closes: idle
        ones (kept alive, or opened and silent) held every newcomer off for up to the read
        timeout, and for good by a client that keeps them alive. There, when a newcomer
        waits, the connection idle longest that has no request being answered is closed to
        make room."""
        if self.accepting and len(self._map) >= self.adj.connection_limit \
                and _waiting(self.socket):
            channels = list(self.active_channels.values())
            idle = [channel for channel in channels
                    if not channel.requests and not channel.total_outbufs_len]
            # closed by the loop when it writes (closing it here, while the loop gathers
            # what to poll, would let the newcomer reuse its descriptor and take its events)
            if idle and not any(channel.will_close for channel in channels):
                min(idle, key=lambda channel: channel.last_activity).will_close = True
        return super().readable()

    def maintenance(self, now):
        """waitress closes a channel idle past the channel timeout; a request whose headers
        came and whose body stalled gets the 408 first (as a stalled sized or chunked body
        does on the werkzeug server). A client that takes none of its answers for as long
        is cut off too: its thread waits for the answers to drain (past waitress's high
        watermark), and a few such clients would hold every thread for as long as they
        stay connected."""
        cutoff = now - self.adj.channel_timeout
        for channel in list(self.active_channels.values()):
            if channel.last_activity >= cutoff:
                continue
            if channel.requests:
                # a thread waits for the client to take its answers: close, which frees it
                if channel.total_outbufs_len > channel.adj.outbuf_high_watermark:
                    channel.will_close = True
                continue
            partial = channel.request
            if partial is not None and partial.headers_finished and not partial.completed:
                # answered as a refused request (_error_task): the app gives the 408
                partial.error = _LayerError(408, READ_TIMEOUT_MESSAGE, "body")
                partial.completed = True
                with channel.requests_lock:
                    channel.request = None
                    channel.requests.append(partial)
                self.add_task(channel)
            else:
                channel.will_close = True


_M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 1  # the threads take turns under the GIL anyway


def limit_malloc_arenas() -> None:
    """Keep glibc's malloc to one arena. Each of the pool's long-lived threads would get an
    arena of its own, and a large body (30 MB parses into ~150 MB of objects) leaves its
    arena holding memory that ``release_memory`` does not hand back: sequential large
    requests on different threads grew the RSS arena by arena (40 x 30 MB posts peaked at
    780 MB; 270 MB with two arenas, 194 MB with one, as on werkzeug). A no-op where there is
    no glibc."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, ARENAS)
    except (OSError, AttributeError):
        pass


def _corked(adj: Adjustments) -> Adjustments:
    """The adjustments an answer given in the loop's thread is written with: kept until the
    channel sends it (waitress would send each write at once), and never waited on (the loop
    cannot wait for itself to send)."""
    corked = copy.copy(adj)
    corked.send_bytes = corked.outbuf_high_watermark = _NEVER
    return corked


class WaitressServer:
    """A waitress server on a bound socket: ``serve_forever()`` in one thread,
    ``shutdown(running)`` from another. ``busy_poll``: seconds its I/O loop keeps polling
    without sleeping after reading each request (0: it sleeps in poll() at once, as waitress
    does). A client's next request on a kept-alive connection usually comes sooner than that, and is
    then read without the wake-up of a sleeping thread (on this project's box, a VM, ~8 % of a
    one-client round trip). It spends up to that much CPU after each request, none while idle;
    for a server alone in its process (the CLI), where the loop takes the GIL from nobody."""

    def __init__(self, app, sock, quiet: bool, read_timeout: float | None,
                 max_body: int, busy_poll: float = 0.0) -> None:
        logging.getLogger("waitress").setLevel(logging.ERROR)
        limit_malloc_arenas()  # before the pool's threads start
        timeout = read_timeout if read_timeout else NO_TIMEOUT
        adj = Adjustments(
            sockets=[sock], threads=THREADS, ident=IDENT, connection_limit=1000,
            # the body as it arrives, including a chunked encoding's own bytes (a chunk size
            # line per chunk): the body's own limit is max_body, checked by _Parser
            max_request_body_size=8 * max_body + 65536,
            # bytes asked of each recv(): Python allocates that much per call, and 256 KB cost
            # ~30 us a call against ~5 us for 64 KB (which also reads a 30 MB body faster)
            recv_bytes=RECV_BYTES, expose_tracebacks=False,
            # poll(), not select(): select() fails on a descriptor past 1024 (a process with
            # many files open, or many connections), and the I/O loop with it
            asyncore_use_poll=True,
            # X-Forwarded-* reach the app as sent, as on werkzeug (the fake reads none of them;
            # waitress would wrap the app to delete them on every request)
            clear_untrusted_proxy_headers=False)
        # Adjustments holds these as whole seconds; a read timeout may be a fraction
        adj.channel_timeout = timeout
        adj.cleanup_interval = min(1.0, timeout / 4)
        adj.asyncore_loop_timeout = min(1.0, timeout / 4)
        parser = type("Parser", (_Parser,), {"max_body": max_body})
        channel = type("Channel", (_Channel,), {
            "parser_class": parser,
            "task_class": _Task if quiet else _LoggedTask,
            "error_task_class": staticmethod(_error_task)})
        server_class = type("Server", (_TcpServer,), {
            "channel_class": channel, "max_body": max_body, "quiet": quiet,
            "app_answers": "mock_planhat" in getattr(app, "extensions", {}),
            "fake": getattr(app, "extensions", {}).get("mock_planhat"),
            # written whole, sent by the channel at once (see _Channel._answer)
            "corked": _corked(adj), "busy_poll": busy_poll})
        dispatcher = _Dispatcher()
        dispatcher.set_thread_count(THREADS)
        self._map: dict = {}
        self._dispatcher = dispatcher
        self._server = server_class(
            app, self._map, True, sock, dispatcher=dispatcher, adj=adj, bind_socket=False,
            sockinfo=(sock.family, sock.type, sock.proto, sock.getsockname()))
        poll = f", busy poll {round(busy_poll * 1e6)} µs" if busy_poll else ""
        self.description = f"waitress {_version('waitress')} ({THREADS} threads, keep-alive{poll})"

    def serve_forever(self) -> None:
        self._server.run()  # until its map is empty (shutdown)

    def shutdown(self, running: bool) -> None:
        """Stop accepting, wait for the threads to finish the requests they are answering,
        then close every connection (each step in the I/O loop's own thread when it runs)."""
        def close_listener():  # the listening socket only: the trigger stays open
            wasyncore.dispatcher.close(self._server)

        def close_all():
            wasyncore.close_all(self._map)

        self._in_loop(running, close_listener)
        # a thread finishing its request pulls the trigger to hand the answer to the loop:
        # close the trigger (with every connection) only once the threads are done
        self._dispatcher.shutdown(cancel_pending=True, timeout=5)
        self._in_loop(running, close_all)

    def _in_loop(self, running: bool, thunk) -> None:
        """Run ``thunk`` in the I/O loop's thread, or here when the loop does not run or its
        trigger is already closed (waitress's own close runs ``close_all`` from the caller's
        thread too)."""
        trigger = self._server.trigger
        if running and not trigger._closed:
            try:
                trigger.pull_trigger(thunk)
                return
            except OSError:  # closed between the check and the write
                with trigger.lock:
                    if thunk in trigger.thunks:
                        trigger.thunks.remove(thunk)
        thunk()
