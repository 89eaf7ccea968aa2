"""The HTTP peer: pytest-httpserver answering the benchmark's requests with a canned 200.

``python -m benchmarks.empty_server`` prints its URL, then serves until stdin closes. It keeps
no state and does no work (threaded; werkzeug's server underneath closes the connection
after each answer, as the fake's did before issue 14).
"""

from __future__ import annotations

from pytest_httpserver import HTTPServer

from .common import TENANT_TOKEN, serve_until_stdin_closes


def main() -> int:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.no_handler_status_code = 500
    server.expect_request(f"/analytics/{TENANT_TOKEN}", method="POST").respond_with_json(
        {"processed": 1, "notApplied": []})
    server.expect_request("/endusers", method="PUT").respond_with_json(
        {"created": 0, "createdErrors": [], "updated": 1})
    server.expect_request("/__admin/health", method="GET").respond_with_json({"status": "ok"})
    server.start()
    return serve_until_stdin_closes(server.url_for("/").rstrip("/"), server.stop)


if __name__ == "__main__":
    raise SystemExit(main())
