"""Serving the app on a socket: a production-grade WSGI server that stops cleanly on a signal.

Two servers can serve the app: **waitress** (the default: HTTP/1.1 keep-alive, one I/O loop
and a pool of threads, pure Python so it installs everywhere) and **werkzeug**'s development
server (``--server werkzeug``; one thread per connection, no keep-alive). When waitress cannot
be imported the fake falls back to werkzeug and says so (``Server.note``, the start-up banner).

Both keep exactly one state (one process, the app's tenants) and answer what the HTTP layer
answers before the app sees a request — a request line that does not parse (400), a request
line over 64 KB (414), a header line over 64 KB or over 100 headers (431), an HTTP version other
than 1.x (505), a ``Content-Length`` that is not one number (400), a body over ``max_body``,
sized or chunked (413) — in the fake's JSON error shape, like every other error. A read timeout
(``read_timeout`` seconds without a byte from the client, while it sends its headers or its
body, or idles on a keep-alive connection) closes the connection, with a 408 when the headers
were read and the body stalled, so a client that stalls cannot hold the server.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import threading
import time
from http import HTTPStatus

from werkzeug.serving import WSGIRequestHandler

from .config import DEFAULT_MAX_BODY, DEFAULT_READ_TIMEOUT, SERVERS

DEFAULT_SERVER = SERVERS[0]
THREADS = 16  # waitress's request threads: a fault rule's delay (up to 30 s) holds one
MAX_LINE = 65536  # bytes of the request line, and of one header line
MAX_HEADERS = 100

# a request with both lengths: the servers behind a proxy may each take another one of them
# (request smuggling), so it is refused rather than read by Transfer-Encoding
_BOTH_LENGTHS = ("Content-Length and Transfer-Encoding both given: which body length is meant "
                 "cannot be told; send one")

# status -> (error code, the field the message is about), for the answers of the HTTP layer
_LAYER_ERRORS = {
    400: ("bad_request", "request line"),
    408: ("request_timeout", "body"),
    413: ("request_entity_too_large", "body"),
    414: ("uri_too_long", "path"),
    431: ("request_header_fields_too_large", "headers"),
    501: ("not_implemented", "Transfer-Encoding"),
    505: ("http_version_not_supported", "HTTP version"),
}


def layer_error_fields(status: int, message: str | None = None, field: str | None = None,
                       error: str | None = None) -> dict:
    """An answer of the HTTP layer as the fake's error: ``{"error", "message", "field"}``,
    the message prefixed by its field as the app's are."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    default_error, default_field = _LAYER_ERRORS.get(
        status, (phrase.lower().replace(" ", "_").replace("-", "_"), None))
    field = field or default_field
    text = message or phrase
    if field and not text.startswith(f"{field}:"):
        text = f"{field}: {text}"
    return {"error": error or default_error, "message": text, "field": field}


def layer_error(status: int, message: str | None = None, field: str | None = None,
                error: str | None = None) -> bytes:
    """The JSON body of an answer of the HTTP layer (``layer_error_fields``)."""
    return (json.dumps(layer_error_fields(status, message, field, error)) + "\n").encode()


def pick_server(name: str | None = None) -> tuple[str, str | None]:
    """The server to run and, when it is not the one asked for, why: ``name`` None means the
    default (waitress, else werkzeug with a note). Asked for by name and missing: ValueError."""
    if name not in (None, *SERVERS):
        raise ValueError(f"server: {name!r} is not one of {', '.join(SERVERS)}")
    if name == "werkzeug":
        return name, None
    try:
        import waitress  # noqa: F401
    except ImportError as exc:
        if name == "waitress":
            raise ValueError(f"server: waitress cannot be imported ({exc}); install it "
                             "(pip install waitress) or use --server werkzeug") from None
        return "werkzeug", (f"waitress cannot be imported ({exc}), so werkzeug's development "
                            "server serves (slower: no keep-alive); pip install waitress")
    return "waitress", None


class _JsonErrorHandler(WSGIRequestHandler):
    """Werkzeug's handler, with http.server's HTML error page replaced by the JSON shape."""

    def run_wsgi(self):
        # Content-Length given twice with different values, or not a number: which body
        # length is meant cannot be told (a request-smuggling shape), so refuse it.
        lengths = {v.strip() for v in self.headers.get_all("Content-Length") or ()}
        if len(lengths) > 1 or any(not v.isdigit() for v in lengths):
            self.send_error(400, f"{', '.join(sorted(lengths))!r} is not one body length",
                            field="Content-Length")
            return
        if lengths and "Transfer-Encoding" in self.headers:
            self.send_error(400, _BOTH_LENGTHS, field="Content-Length")
            return
        super().run_wsgi()

    def send_error(self, code, message=None, explain=None, field=None):
        short, _long = self.responses.get(code, ("Error", ""))
        body = layer_error(code, message or short, field)
        if self.request_version == "HTTP/0.9":  # unparsed: answer with a status line anyway
            self.request_version = "HTTP/1.1"
        self.close_connection = True
        self.send_response(code, short)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_error(self, format, *args):
        pass  # send_error's answer is logged as the access line


class _QuietHandler(_JsonErrorHandler):
    def log_request(self, *args, **kwargs):
        pass


class _AccessLogHandler(_JsonErrorHandler):
    def log_request(self, code="-", size="-"):
        code = getattr(code, "value", code)
        sys.stderr.write(f'{self.address_string()} - "{self.requestline}" {code} {size}\n')


class _WerkzeugServer:
    """werkzeug's threaded server on a bound socket, with the JSON error handler."""

    def __init__(self, app, sock: socket.socket, quiet: bool, read_timeout: float | None,
                 max_body: int, busy_poll: float = 0.0) -> None:
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        base = _QuietHandler if quiet else _AccessLogHandler
        # A class per server: make_server sets attributes on it (protocol_version).
        handler = type("Handler", (base,), {"timeout": read_timeout})
        host, port = sock.getsockname()[:2]
        self._server = make_server(host, port, app, threaded=True, request_handler=handler,
                                   fd=sock.fileno())
        self._server.daemon_threads = True
        self.description = f"werkzeug {_version('werkzeug')} (development server, no keep-alive)"

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def shutdown(self, running: bool) -> None:
        if running:
            self._server.shutdown()
        self._server.server_close()


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


class Server:
    """``Server(app, host, port)``: bound at once; ``serve_forever()`` or ``start()``/``stop()``.

    ``read_timeout``: seconds a connection may go without sending a byte (None: no limit).
    ``server``: ``"waitress"`` or ``"werkzeug"`` (None: the default, waitress, falling back to
    werkzeug when waitress cannot be imported; ``note`` then says why). ``max_body``: the
    largest body the HTTP layer reads (default: the app's ``MAX_CONTENT_LENGTH``).
    ``busy_poll``: seconds waitress's I/O loop keeps polling without sleeping after a request
    (``WaitressServer``; for a server alone in its process, as the CLI's)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, quiet: bool = True,
                 read_timeout: float | None = DEFAULT_READ_TIMEOUT, server: str | None = None,
                 max_body: int | None = None, busy_poll: float = 0.0):
        self.name, self.note = pick_server(server)
        self.app = app
        if max_body is None:
            max_body = getattr(app, "config", {}).get("MAX_CONTENT_LENGTH") or DEFAULT_MAX_BODY
        # Bind here so a busy port is an OSError we can word, not the server's own exit.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family, backlog=1024)
        try:
            if self.name == "waitress":
                from .waitress_server import WaitressServer as backend
            else:
                backend = _WerkzeugServer
            self._server = backend(app, self._socket, quiet, read_timeout, max_body,
                                   busy_poll)
        except BaseException:
            self._socket.close()
            raise
        self.host = host
        self.port = self._socket.getsockname()[1]
        self.read_timeout = read_timeout
        self.description = self._server.description
        self._thread: threading.Thread | None = None
        self._stopped = False

    def __repr__(self) -> str:
        return f"<Server {self.url}>"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def start(self) -> Server:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True,
                                        name=f"mock-planhat:{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close the connections and wait (up to 5 s) for the requests being
        answered: once this returns, no request changes the state (a save sees all of it)."""
        if self._stopped:
            return
        self._stopped = True
        running = self._thread is not None and self._thread.is_alive()
        self._server.shutdown(running)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._socket.close()


def catch_signals() -> threading.Event:
    """An event that Ctrl-C and SIGTERM set from now on (install before announcing the server:
    a signal sent right after the announcement must stop it cleanly, saving its state)."""
    stop = threading.Event()

    def _on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    return stop


def run_until_signal(server: Server, save=None, every: float | None = None,
                     stop: threading.Event | None = None) -> int:
    """Serve in the foreground until Ctrl-C or SIGTERM; returns the exit code (0).
    ``save()``, when given, runs every ``every`` seconds and once after the server stopped."""
    stop = stop or catch_signals()
    server.start()
    next_save = time.monotonic() + every if save and every else None
    try:
        while True:
            wait = 0.5 if next_save is None else max(0.0, min(0.5, next_save - time.monotonic()))
            if stop.wait(wait):
                break
            if next_save is not None and time.monotonic() >= next_save:
                _save(save)
                next_save = time.monotonic() + every
    finally:
        server.stop()
    if save is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the save
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return 0 if _save(save) else 1
    return 0


def _save(save) -> bool:
    try:
        save()
    except OSError as exc:
        sys.stderr.write(f"mock-planhat: error: cannot save the state: {exc}\n")
        return False
    return True
