"""Serving the app on a socket: a threaded WSGI server that stops cleanly on a signal."""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading

from werkzeug.serving import WSGIRequestHandler, make_server


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


class _AccessLogHandler(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):
        code = getattr(code, "value", code)
        sys.stderr.write(f'{self.address_string()} - "{self.requestline}" {code} {size}\n')


class Server:
    """``Server(app, host, port)``: bound at once; ``serve_forever()`` or ``start()``/``stop()``."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, quiet: bool = True):
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        handler = _QuietHandler if quiet else _AccessLogHandler
        # Bind here so a busy port is an OSError we can word, not werkzeug's exit.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family, backlog=128)
        self._server = make_server(host, port, app, threaded=True, request_handler=handler,
                                   fd=self._socket.fileno())
        self._server.daemon_threads = True
        self.host = host
        self.port = self._server.socket.getsockname()[1]
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


def run_until_signal(server: Server) -> int:
    """Serve in the foreground until Ctrl-C or SIGTERM; returns the exit code (0)."""
    stop = threading.Event()

    def _on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    server.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0
