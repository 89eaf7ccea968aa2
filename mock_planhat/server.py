"""Serving the app on a socket: a threaded WSGI server that stops cleanly on a signal.

What the HTTP layer answers before the app sees a request — a request line that does not
parse (400), a request line over 64 KB (414), a header line over 64 KB or over 100 headers
(431), an HTTP version other than 1.x (505), a ``Content-Length`` that is not one number
(400) — is answered here in the fake's JSON error shape,
like every other error. A read timeout (``read_timeout`` seconds without a byte from the
client, while it sends its headers or its body, or idles on a keep-alive connection) closes
the connection, so a client that stalls cannot hold a thread for ever.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import threading
import time

from werkzeug.serving import WSGIRequestHandler, make_server

from .config import DEFAULT_READ_TIMEOUT

# status -> (error code, the field the message is about), for the answers of the HTTP layer
_LAYER_ERRORS = {
    400: ("bad_request", "request line"),
    408: ("request_timeout", "body"),
    414: ("uri_too_long", "path"),
    431: ("request_header_fields_too_large", "headers"),
    505: ("http_version_not_supported", "HTTP version"),
}


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
        super().run_wsgi()

    def send_error(self, code, message=None, explain=None, field=None):
        short, _long = self.responses.get(code, ("Error", ""))
        error, default_field = _LAYER_ERRORS.get(code, (short.lower().replace(" ", "_"), None))
        field = field or default_field
        text = f"{field}: {message or short}" if field else (message or short)
        body = (json.dumps({"error": error, "message": text, "field": field}) + "\n").encode()
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


class Server:
    """``Server(app, host, port)``: bound at once; ``serve_forever()`` or ``start()``/``stop()``.

    ``read_timeout``: seconds a connection may go without sending a byte (None: no limit)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, quiet: bool = True,
                 read_timeout: float | None = DEFAULT_READ_TIMEOUT):
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        base = _QuietHandler if quiet else _AccessLogHandler
        # A class per server: make_server sets attributes on it (protocol_version).
        handler = type("Handler", (base,), {"timeout": read_timeout})
        # Bind here so a busy port is an OSError we can word, not werkzeug's exit.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family, backlog=128)
        self._server = make_server(host, port, app, threaded=True, request_handler=handler,
                                   fd=self._socket.fileno())
        self._server.daemon_threads = True
        self.host = host
        self.port = self._server.socket.getsockname()[1]
        self.read_timeout = read_timeout
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<Server {self.url}>"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def start(self) -> Server:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True,
                                        name=f"mock-planhat:{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._socket.close()
        if self._thread is not None:
            self._thread.join(timeout=5)


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
