"""Transports: how a :class:`~translator.destination.Destination` reaches an HTTP server.

A transport has ``request(method, url, body_bytes, headers) -> Response`` and ``close()``.
Network-level failures raise :class:`TransportError` (the Destination retries those).

* :class:`HttpTransport` — real HTTP through one ``requests.Session`` (keep-alive).
* :class:`WsgiTransport` — calls a WSGI application in-process (PEP 3333), no sockets.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes, urlsplit

if TYPE_CHECKING:
    import requests


class TransportError(ConnectionError):
    """The request could not be completed (connection refused, timeout, broken app...)."""


@dataclass
class Response:
    """An HTTP response: ``status`` (int), ``headers`` (dict), ``content`` (bytes)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (raises ``ValueError`` when it is not JSON)."""
        return json.loads(self.content.decode("utf-8"))

    def header(self, name: str, default: str | None = None) -> str | None:
        """A header value looked up case-insensitively."""
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return default


class HttpTransport:
    """HTTP over one ``requests.Session`` (connection keep-alive across requests)."""

    def __init__(self, session: requests.Session | None = None, timeout: float = 30) -> None:
        import requests  # here, not at the top: the fake's Segment routes never need it

        self._owns_session = session is None
        self.session = session if session is not None else requests.Session()
        self.timeout = timeout

    def request(
        self, method: str, url: str, body_bytes: bytes | None, headers: Mapping[str, str]
    ) -> Response:
        import requests

        try:
            resp = self.session.request(
                method, url, data=body_bytes, headers=dict(headers), timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise TransportError(f"{method} {url}: {exc}") from exc
        return Response(resp.status_code, dict(resp.headers), resp.content)

    def close(self) -> None:
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> HttpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class WsgiTransport:
    """Call a WSGI application in-process, building the PEP 3333 environ by hand.

    ``PATH_INFO`` is the percent-decoded path (as WSGI requires); the raw path stays in
    ``REQUEST_URI``/``RAW_URI``.  An exception raised by the application becomes a 500
    response (as a real server would answer), so the Destination may retry it.
    """

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def build_environ(
        self, method: str, url: str, body_bytes: bytes | None, headers: Mapping[str, str]
    ) -> dict[str, Any]:
        parts = urlsplit(url)
        scheme = parts.scheme or "http"
        host = parts.hostname or "localhost"
        port = parts.port or (443 if scheme == "https" else 80)
        raw_path = parts.path or "/"
        body = body_bytes or b""
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method.upper(),
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
            "QUERY_STRING": parts.query,
            "REQUEST_URI": raw_path + (f"?{parts.query}" if parts.query else ""),
            "RAW_URI": raw_path + (f"?{parts.query}" if parts.query else ""),
            "SERVER_NAME": host,
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": parts.netloc or host,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scheme,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif key == "CONTENT_LENGTH":
                continue  # always computed from the body
            elif key == "HOST":
                environ["HTTP_HOST"] = value
            else:
                environ[f"HTTP_{key}"] = value
        return environ

    def request(
        self, method: str, url: str, body_bytes: bytes | None, headers: Mapping[str, str]
    ) -> Response:
        environ = self.build_environ(method, url, body_bytes, headers)
        captured: dict[str, Any] = {}
        written: list[bytes] = []

        def start_response(
            status: str, response_headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            if exc_info is not None and captured.get("sent"):
                raise exc_info[1].with_traceback(exc_info[2])
            captured["status"] = status
            captured["headers"] = response_headers
            return written.append

        try:
            result = self.app(environ, start_response)
            try:
                for chunk in result:
                    if chunk:
                        captured["sent"] = True
                        written.append(chunk)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception as exc:
            message = f"WSGI application error: {type(exc).__name__}: {exc}"
            return Response(500, {"Content-Type": "text/plain"}, message.encode("utf-8"))
        if "status" not in captured:
            return Response(500, {"Content-Type": "text/plain"}, b"start_response not called")
        status = int(str(captured["status"]).split(" ", 1)[0])
        merged: dict[str, str] = {}
        for name, value in captured["headers"]:
            merged[name] = f"{merged[name]}, {value}" if name in merged else value
        return Response(status, merged, b"".join(written))

    def close(self) -> None:
        """Nothing to release: the application belongs to the caller."""

    def __enter__(self) -> WsgiTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
